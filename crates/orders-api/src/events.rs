//! Events orders publishes: the checkout saga's commands and outcomes (see the event
//! catalogue and the saga's states in ARCHITECTURE.md).

use kernel::Event;
use kernel::{Money, OrderId, ProductId, Quantity, UserId};
use payments_api::PaymentToken;
use serde::{Deserialize, Serialize};

use crate::CancelReason;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: ProductId,
    pub quantity: Quantity,
}

/// An order was accepted; inventory reserves its lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderPlaced {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub lines: Vec<OrderLine>,
    pub total: Money,
}

/// Stock is held; payments charges the card, unless the request has expired by then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentRequested {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub amount: Money,
    pub payment_token: PaymentToken,
    /// Epoch milliseconds: the order's saga deadline. A charge after it is not made.
    pub expires_at: i64,
}

/// The order is paid: inventory sells the held stock, cart removes the ordered lines,
/// notifications tells the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderConfirmed {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub lines: Vec<OrderLine>,
    pub total: Money,
    /// Epoch milliseconds when the order was placed: cart keeps lines set after it.
    pub placed_at: i64,
}

/// The order will not happen: inventory releases anything held, notifications tells the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub reason: CancelReason,
}

/// A capture arrived for an order already cancelled (its deadline passed meanwhile):
/// payments gives the money back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefundRequested {
    pub order_id: OrderId,
    pub user_id: UserId,
}

/// What one UTC day sold, sent once per day after it ends; notifications tells the admins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailySalesSummary {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    /// Orders confirmed that day, and the units and revenue (per currency) they hold.
    pub orders_confirmed: u64,
    pub units_sold: u64,
    pub revenue: Vec<Money>,
    /// Orders cancelled that day.
    pub orders_cancelled: u64,
}

impl Event for OrderPlaced {
    const TYPE: &'static str = "orders.order_placed";
}
impl Event for PaymentRequested {
    const TYPE: &'static str = "orders.payment_requested";
}
impl Event for OrderConfirmed {
    const TYPE: &'static str = "orders.order_confirmed";
}
impl Event for OrderCancelled {
    const TYPE: &'static str = "orders.order_cancelled";
}
impl Event for RefundRequested {
    const TYPE: &'static str = "orders.refund_requested";
}
impl Event for DailySalesSummary {
    const TYPE: &'static str = "orders.daily_sales_summary";
}
