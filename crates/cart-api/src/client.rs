use std::sync::Arc;

use async_trait::async_trait;
use kernel::{ProductId, RequestContext, UserId};
use tracing::Instrument as _;

use crate::{Cart, CartError, CartQuantity};

/// What the cart module does, whatever its placement. `user` must be the caller (or the
/// caller an admin, as checkout's system context is).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait CartService: Send + Sync + 'static {
    async fn get(&self, ctx: &RequestContext, user: UserId) -> Result<Cart, CartError>;
    async fn set_item(
        &self,
        ctx: &RequestContext,
        user: UserId,
        product: ProductId,
        quantity: CartQuantity,
    ) -> Result<Cart, CartError>;
    async fn remove_item(
        &self,
        ctx: &RequestContext,
        user: UserId,
        product: ProductId,
    ) -> Result<Cart, CartError>;
    async fn clear(&self, ctx: &RequestContext, user: UserId) -> Result<(), CartError>;
}

/// The handle through which everything else talks to cart.
#[derive(Clone)]
pub struct CartClient(Arc<dyn CartService>);

impl std::fmt::Debug for CartClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CartClient")
    }
}

impl CartClient {
    /// An in-process implementation (the monolith's placement).
    pub fn local(service: impl CartService) -> Self {
        CartClient(Arc::new(service))
    }

    /// Any implementation, e.g. a remote transport.
    pub fn from_arc(service: Arc<dyn CartService>) -> Self {
        CartClient(service)
    }

    /// The implementation behind the handle, for a wrapper that opens no span of its own
    /// (the handle's methods each open one).
    pub fn into_service(self) -> Arc<dyn CartService> {
        self.0
    }

    /// A mockall mock, for tests that script the answers.
    #[cfg(feature = "mock")]
    pub fn mock(mock: MockCartService) -> Self {
        CartClient(Arc::new(mock))
    }

    pub async fn get(&self, ctx: &RequestContext, user: UserId) -> Result<Cart, CartError> {
        self.0.get(ctx, user).instrument(tracing::info_span!("cart.get")).await
    }

    pub async fn set_item(
        &self,
        ctx: &RequestContext,
        user: UserId,
        product: ProductId,
        quantity: CartQuantity,
    ) -> Result<Cart, CartError> {
        self.0
            .set_item(ctx, user, product, quantity)
            .instrument(tracing::info_span!("cart.set_item"))
            .await
    }

    pub async fn remove_item(
        &self,
        ctx: &RequestContext,
        user: UserId,
        product: ProductId,
    ) -> Result<Cart, CartError> {
        self.0
            .remove_item(ctx, user, product)
            .instrument(tracing::info_span!("cart.remove_item"))
            .await
    }

    pub async fn clear(&self, ctx: &RequestContext, user: UserId) -> Result<(), CartError> {
        self.0.clear(ctx, user).instrument(tracing::info_span!("cart.clear")).await
    }
}
