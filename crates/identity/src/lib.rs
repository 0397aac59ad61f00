//! The identity module: owns users, their argon2id password hashes and the signing key of
//! access tokens. It implements [`identity_api::IdentityService`]; nothing outside talks to
//! it except through that contract.
//!
//! It does not read files or the environment: the composition root hands it its database,
//! its [`KeyStore`] (where its token signing keys live) and its [`IdentityConfig`].

mod email_forms;
mod key_ring;
mod keys;
mod password;
mod service;
mod throttle;

pub use key_ring::{KeyRing, KeyStore, MemoryKeys, RetiredKey};
pub use keys::SigningKey;
pub use service::{AdminBootstrap, Identity, IdentityConfig, generate_password};
