//! The orders module: places orders from the caller's cart under an `Idempotency-Key`
//! ([`Orders`] implements `OrdersService`), and orchestrates the checkout saga: it consumes
//! inventory's and payments' outcomes and publishes the next command, each step one local
//! transaction with its inbox record and outbox event; a sweeper cancels orders past their
//! deadline.

mod config;
mod rows;
mod saga;
mod service;

pub use config::OrdersConfig;
pub use saga::{CONSUMER, SUBSCRIBES};
pub use service::Orders;
