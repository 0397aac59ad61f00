//! The notifications module: on `orders.order_confirmed`, `orders.order_cancelled` and
//! `payments.payment_refunded` it writes one notification for the user (the inbox makes a
//! redelivered event a no-op), and implements `NotificationsService` to list them.

mod handlers;
mod service;

pub use handlers::{CONSUMER, SUBSCRIBES};
pub use service::Notifications;
