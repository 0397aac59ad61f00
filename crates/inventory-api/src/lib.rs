//! The inventory module's contract: [`InventoryService`] (stock levels, admin set-stock, and
//! the reservation life cycle checkout drives: reserve all lines or none, then commit or
//! release, each idempotent per order), its wire types, error and events, the
//! [`InventoryClient`] handle and the public HTTP adapter ([`http::router`]).
//!
//! With the `testsuite` feature, [`testsuite::run`] checks any implementation against the
//! contract's rules.

mod contract;
mod error;
pub mod events;
pub mod http;
#[cfg(feature = "testsuite")]
pub mod testsuite;
mod types;

#[cfg(feature = "mock")]
pub use contract::MockInventoryService;
pub use contract::{InventoryClient, InventoryRemote, InventoryService, internal_routes};
pub use error::InventoryError;
pub use types::{
    Reservation, ReservationLine, ReservationStatus, SetStockRequest, StockCount, StockLevel,
};
