//! The payments module: consumes `orders.payment_requested` and charges the order's card
//! once, whatever is redelivered, through the simulated card provider ([`CardProvider`]);
//! publishes `payments.payment_captured` or `payments.payment_declined`; refunds on
//! `orders.refund_requested`.

mod handlers;
mod provider;
mod rows;
mod service;

pub use handlers::{CONSUMER, SUBSCRIBES};
pub use provider::{CardProvider, Charge, ChargeOutcome};
pub use service::Payments;
