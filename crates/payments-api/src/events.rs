//! Events payments publishes (see the event catalogue in ARCHITECTURE.md).

use kernel::Event;
use kernel::{Money, OrderId, PaymentId, UserId};
use serde::{Deserialize, Serialize};

use crate::DeclineReason;

/// The money for an order was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentCaptured {
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub user_id: UserId,
    pub amount: Money,
}

/// The card was declined, or the request came after the order's deadline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentDeclined {
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub user_id: UserId,
    pub amount: Money,
    pub reason: DeclineReason,
}

/// A captured payment was given back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub user_id: UserId,
    pub amount: Money,
}

impl Event for PaymentCaptured {
    const TYPE: &'static str = "payments.payment_captured";
}
impl Event for PaymentDeclined {
    const TYPE: &'static str = "payments.payment_declined";
}
impl Event for PaymentRefunded {
    const TYPE: &'static str = "payments.payment_refunded";
}
