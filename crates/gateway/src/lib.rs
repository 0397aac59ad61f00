//! The public edge of the shop. Whatever the topology, every public request passes here:
//!
//! request id → tracing span → CORS → body limit → authentication (JWT) and rate limit →
//! the module routes; and on the way out every error is put into the one JSON error shape.
//!
//! The gateway knows the identity contract (to fetch the JWKS and verify tokens) and
//! nothing of any module's implementation: it is handed the merged module routes.
//! Role checks happen in the modules, from the verified [`kernel::Principal`] this crate
//! puts in each request's extensions.

mod auth;
mod config;
mod doc;
mod edge;
mod health;
mod limit;
mod meters;
mod server;

pub use auth::Authenticator;
pub use config::{GatewayConfig, RateQuota};
pub use edge::{ACCESS_LOG, build};
pub use health::{Probe, ops_router};
pub use meters::describe_metrics;
pub use server::serve;
