//! The orders module's contract: [`OrdersService`] (place an order from the caller's cart
//! under an `Idempotency-Key`, list and get the caller's orders), the order wire types, the
//! error, the events of the checkout saga that orders orchestrates, the [`OrdersClient`]
//! handle and the public HTTP adapter ([`http::router`]).

mod contract;
mod error;
pub mod events;
pub mod http;
#[cfg(feature = "testsuite")]
pub mod testsuite;
mod types;

#[cfg(feature = "mock")]
pub use contract::MockOrdersService;
pub use contract::{OrdersClient, OrdersRemote, OrdersService, internal_routes};
pub use error::OrdersError;
pub use types::{
    CancelReason, HistoryEntry, Order, OrderItem, OrderListParams, OrderPage, OrderStatus,
    PlaceOrderRequest, Placed,
};
