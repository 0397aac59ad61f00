//! The orders module: places orders from the caller's cart under an `Idempotency-Key`
//! ([`Orders`] implements `OrdersService`), and orchestrates the checkout saga: it consumes
//! inventory's and payments' outcomes and publishes the next command, each step one local
//! transaction with its inbox record and outbox event; a sweeper cancels orders past their
//! deadline, and a daily job sends each day's sales summary.

mod config;
mod handlers;
mod jobs;
mod rows;
mod service;
mod summary;

pub use config::OrdersConfig;
pub use handlers::{CONSUMER, SUBSCRIBES, describe_metrics};
pub use jobs::{DAILY_SALES_SUMMARY, EXPIRE_STALE_ORDERS, JOBS};
pub use service::Orders;
pub use summary::SUMMARY_CHECK_EVERY;
