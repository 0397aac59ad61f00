//! The identity contract, declared once: the [`IdentityService`] trait, the [`IdentityClient`] handle,
//! the remote client [`IdentityRemote`] and the [`internal_routes`] that serve it.

use kernel::{Email, RequestContext, UserId};

use crate::{AccessToken, IdentityError, Jwks, KeyRotation, NewUser, Password, User};

rpc::contract! {
    module: "identity",
    client: IdentityClient,
    remote: IdentityRemote,
    /// What the identity module does, whatever its placement.
    #[cfg_attr(feature = "mock", mockall::automock)]
    pub trait IdentityService {
        async fn register(&self, ctx: &RequestContext, user: NewUser) -> Result<User, IdentityError>;
        #[idempotent]
        async fn login(
            &self,
            ctx: &RequestContext,
            email: Email,
            password: Password,
        ) -> Result<AccessToken, IdentityError>;
        /// The user `id`; a customer may only read themself.
        #[idempotent]
        async fn user(&self, ctx: &RequestContext, id: UserId) -> Result<User, IdentityError>;
        /// The public keys that verify access tokens.
        #[idempotent]
        async fn jwks(&self, ctx: &RequestContext) -> Result<Jwks, IdentityError>;
        /// Makes a new key sign access tokens (admin). The old one is still published, and
        /// verifies the tokens it signed, until they have expired plus a grace.
        async fn rotate_signing_key(&self, ctx: &RequestContext) -> Result<KeyRotation, IdentityError>;
    }
}
