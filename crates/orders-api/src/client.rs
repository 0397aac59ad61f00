use std::sync::Arc;

use async_trait::async_trait;
use kernel::{Cursor, IdempotencyKey, Limit, OrderId, Page, RequestContext};
use payments_api::PaymentToken;
use tracing::Instrument as _;

use crate::{Order, OrdersError};

/// The answer to placing an order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Placed {
    /// The order as it was accepted (`pending`); a replay returns the first answer again.
    pub order: Order,
    /// True when this key was seen before with the same request: nothing new was created.
    pub replayed: bool,
}

/// What the orders module does, whatever its placement. Every method acts for the caller:
/// another user's order is `OrderNotFound`.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait OrdersService: Send + Sync + 'static {
    /// Places an order from the caller's cart, priced by catalog now, and starts the
    /// checkout saga. Per user, one key is one order: the same key with the same token
    /// replays the first answer; with another token it is `IdempotencyKeyReused`.
    async fn place(
        &self,
        ctx: &RequestContext,
        key: IdempotencyKey,
        payment_token: PaymentToken,
    ) -> Result<Placed, OrdersError>;
    /// The caller's orders, newest first.
    async fn list(
        &self,
        ctx: &RequestContext,
        limit: Limit,
        after: Option<Cursor>,
    ) -> Result<Page<Order>, OrdersError>;
    async fn get(&self, ctx: &RequestContext, id: OrderId) -> Result<Order, OrdersError>;
}

/// The handle through which everything else talks to orders.
#[derive(Clone)]
pub struct OrdersClient(Arc<dyn OrdersService>);

impl std::fmt::Debug for OrdersClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OrdersClient")
    }
}

impl OrdersClient {
    /// An in-process implementation (the monolith's placement).
    pub fn local(service: impl OrdersService) -> Self {
        OrdersClient(Arc::new(service))
    }

    /// Any implementation, e.g. a remote transport.
    pub fn from_arc(service: Arc<dyn OrdersService>) -> Self {
        OrdersClient(service)
    }

    /// The implementation behind the handle, for a wrapper that opens no span of its own
    /// (the handle's methods each open one).
    pub fn into_service(self) -> Arc<dyn OrdersService> {
        self.0
    }

    /// A mockall mock, for tests that script the answers.
    #[cfg(feature = "mock")]
    pub fn mock(mock: MockOrdersService) -> Self {
        OrdersClient(Arc::new(mock))
    }

    pub async fn place(
        &self,
        ctx: &RequestContext,
        key: IdempotencyKey,
        payment_token: PaymentToken,
    ) -> Result<Placed, OrdersError> {
        self.0.place(ctx, key, payment_token).instrument(tracing::info_span!("orders.place")).await
    }

    pub async fn list(
        &self,
        ctx: &RequestContext,
        limit: Limit,
        after: Option<Cursor>,
    ) -> Result<Page<Order>, OrdersError> {
        self.0.list(ctx, limit, after).instrument(tracing::info_span!("orders.list")).await
    }

    pub async fn get(&self, ctx: &RequestContext, id: OrderId) -> Result<Order, OrdersError> {
        self.0.get(ctx, id).instrument(tracing::info_span!("orders.get")).await
    }
}
