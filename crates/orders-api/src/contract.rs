//! The orders contract, declared once: the [`OrdersService`] trait, the [`OrdersClient`] handle,
//! the remote client [`OrdersRemote`] and the [`internal_routes`] that serve it.

use kernel::{IdempotencyKey, Limit, OrderId, Page, RequestContext};
use payments_api::PaymentToken;

use crate::{Order, OrdersError, Placed};

rpc::contract! {
    module: "orders",
    client: OrdersClient,
    remote: OrdersRemote,
    /// What the orders module does, whatever its placement. Every method acts for the caller:
    /// another user's order is `OrderNotFound`.
    #[cfg_attr(feature = "mock", mockall::automock)]
    pub trait OrdersService {
        /// Places an order from the caller's cart, priced by catalog now, and starts the
        /// checkout saga. Per user, one key is one order: the same key with the same token
        /// replays the first answer; with another token it is `IdempotencyKeyReused`.
        #[idempotent]
        async fn place(
            &self,
            ctx: &RequestContext,
            key: IdempotencyKey,
            payment_token: PaymentToken,
        ) -> Result<Placed, OrdersError>;
        /// The caller's orders, newest first.
        #[idempotent]
        async fn list(
            &self,
            ctx: &RequestContext,
            limit: Limit,
            after: Option<OrderId>,
        ) -> Result<Page<Order, OrderId>, OrdersError>;
        #[idempotent]
        async fn get(&self, ctx: &RequestContext, id: OrderId) -> Result<Order, OrdersError>;
    }
}
