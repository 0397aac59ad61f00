//! The identity module's contract: [`IdentityService`] (register, login, who am I, JWKS),
//! its wire types, its error, its events, the [`IdentityClient`] handle every caller uses,
//! the public HTTP adapter ([`http::router`]) and the access-token verifier the gateway uses
//! ([`token::TokenVerifier`]).
//!
//! Callers never learn where identity runs: they hold an `IdentityClient`, built local today
//! and remote later, without a change on their side.

mod client;
mod error;
pub mod events;
pub mod http;
pub mod remote;
#[cfg(feature = "testsuite")]
pub mod testsuite;
pub mod token;
mod types;

#[cfg(feature = "mock")]
pub use client::MockIdentityService;
pub use client::{IdentityClient, IdentityService};
pub use error::IdentityError;
pub use remote::IdentityRemote;
pub use types::{AccessToken, Jwks, LoginRequest, NewUser, Password, RegisterRequest, User};
