//! The payments module's contract: [`PaymentsService`] (a user's payments), the
//! [`PaymentToken`] the simulated card provider accepts, the payment wire types, error and
//! events, the [`PaymentsClient`] handle and the public HTTP adapter ([`http::router`]).
//!
//! Charging is driven by events (`orders.payment_requested`), idempotent per order: a charge
//! is never made twice, whatever is redelivered.

mod contract;
mod error;
pub mod events;
pub mod http;
#[cfg(feature = "testsuite")]
pub mod testsuite;
mod types;

#[cfg(feature = "mock")]
pub use contract::MockPaymentsService;
pub use contract::{PaymentsClient, PaymentsRemote, PaymentsService, internal_routes};
pub use error::PaymentsError;
pub use types::{
    DeclineReason, Payment, PaymentPage, PaymentQuery, PaymentStatus, PaymentToken, PaymentsParams,
};
