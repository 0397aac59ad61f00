//! The identity module's contract: [`IdentityService`] (register, login, who am I, JWKS),
//! its wire types, its error, its events, the [`IdentityClient`] handle every caller uses,
//! the public HTTP adapter ([`http::router`]) and the access-token verifier the gateway uses
//! ([`token::TokenVerifier`]).
//!
//! Callers never learn where identity runs: they hold an `IdentityClient`, built local today
//! and remote later, without a change on their side.

mod contract;
mod error;
pub mod events;
pub mod http;
#[cfg(feature = "testsuite")]
pub mod testsuite;
pub mod token;
mod types;

#[cfg(feature = "mock")]
pub use contract::MockIdentityService;
pub use contract::{IdentityClient, IdentityRemote, IdentityService, internal_routes};
pub use error::IdentityError;
pub use types::{
    AccessToken, Jwks, KeyRotation, LoginRequest, NewUser, Password, RegisterRequest, User,
};
