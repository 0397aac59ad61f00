//! The cart module's contract: [`CartService`] (one cart per user: read, set a line's
//! quantity, remove a line, clear), its wire types and error, the [`CartClient`] handle and
//! the public HTTP adapter ([`http::router`]). The caller's user id always comes from the
//! verified request context, never from a path or a body.

mod contract;
mod error;
pub mod http;
#[cfg(feature = "testsuite")]
pub mod testsuite;
mod types;

#[cfg(feature = "mock")]
pub use contract::MockCartService;
pub use contract::{CartClient, CartRemote, CartService, internal_routes};
pub use error::CartError;
pub use types::{Cart, CartLine, CartQuantity, SetQuantityRequest};
