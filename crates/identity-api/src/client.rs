use std::sync::Arc;

use async_trait::async_trait;
use kernel::{Email, RequestContext, UserId};
use tracing::Instrument as _;

use crate::{AccessToken, IdentityError, Jwks, NewUser, Password, User};

/// What the identity module does, whatever its placement.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait IdentityService: Send + Sync + 'static {
    async fn register(&self, ctx: &RequestContext, user: NewUser) -> Result<User, IdentityError>;
    async fn login(
        &self,
        ctx: &RequestContext,
        email: Email,
        password: Password,
    ) -> Result<AccessToken, IdentityError>;
    /// The user `id`; a customer may only read themself.
    async fn user(&self, ctx: &RequestContext, id: UserId) -> Result<User, IdentityError>;
    /// The public keys that verify access tokens.
    async fn jwks(&self, ctx: &RequestContext) -> Result<Jwks, IdentityError>;
}

/// The handle through which everything else talks to identity.
#[derive(Clone)]
pub struct IdentityClient(Arc<dyn IdentityService>);

impl std::fmt::Debug for IdentityClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityClient")
    }
}

impl IdentityClient {
    /// An in-process implementation (the monolith's placement).
    pub fn local(service: impl IdentityService) -> Self {
        IdentityClient(Arc::new(service))
    }

    /// Any implementation, e.g. a remote transport.
    pub fn from_arc(service: Arc<dyn IdentityService>) -> Self {
        IdentityClient(service)
    }

    /// The implementation behind the handle, for a wrapper that opens no span of its own
    /// (the handle's methods each open one).
    pub fn into_service(self) -> Arc<dyn IdentityService> {
        self.0
    }

    /// A mockall mock, for tests that script the answers.
    #[cfg(feature = "mock")]
    pub fn mock(mock: MockIdentityService) -> Self {
        IdentityClient(Arc::new(mock))
    }

    pub async fn register(
        &self,
        ctx: &RequestContext,
        user: NewUser,
    ) -> Result<User, IdentityError> {
        self.0.register(ctx, user).instrument(tracing::info_span!("identity.register")).await
    }

    pub async fn login(
        &self,
        ctx: &RequestContext,
        email: Email,
        password: Password,
    ) -> Result<AccessToken, IdentityError> {
        self.0.login(ctx, email, password).instrument(tracing::info_span!("identity.login")).await
    }

    pub async fn user(&self, ctx: &RequestContext, id: UserId) -> Result<User, IdentityError> {
        self.0.user(ctx, id).instrument(tracing::info_span!("identity.user")).await
    }

    pub async fn jwks(&self, ctx: &RequestContext) -> Result<Jwks, IdentityError> {
        self.0.jwks(ctx).instrument(tracing::info_span!("identity.jwks")).await
    }
}
