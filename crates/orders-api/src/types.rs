use kernel::{Money, OrderId, ProductId};
use serde::{Deserialize, Serialize};

/// `POST /api/v1/orders` body; the items come from the caller's cart.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    /// `tok_visa` (succeeds) or `tok_chargeDeclined` (declined): the simulated provider's
    /// test tokens.
    pub payment_token: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Accepted; the saga is reserving stock and charging the card.
    Pending,
    /// Paid; the stock is sold.
    Confirmed,
    /// Not going to happen; see `cancel_reason`. Any held stock is released.
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        Some(match s {
            "pending" => OrderStatus::Pending,
            "confirmed" => OrderStatus::Confirmed,
            "cancelled" => OrderStatus::Cancelled,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// Some line could not be reserved.
    OutOfStock,
    /// The card was declined.
    PaymentDeclined,
    /// The saga did not finish within its deadline.
    DeadlineExceeded,
}

impl CancelReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CancelReason::OutOfStock => "out_of_stock",
            CancelReason::PaymentDeclined => "payment_declined",
            CancelReason::DeadlineExceeded => "deadline_exceeded",
        }
    }

    pub fn parse(s: &str) -> Option<CancelReason> {
        Some(match s {
            "out_of_stock" => CancelReason::OutOfStock,
            "payment_declined" => CancelReason::PaymentDeclined,
            "deadline_exceeded" => CancelReason::DeadlineExceeded,
            _ => return None,
        })
    }
}

/// One line of an order, priced when the order was placed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderItem {
    pub product_id: ProductId,
    pub name: String,
    pub quantity: u32,
    pub unit_price: Money,
    pub line_total: Money,
}

/// A step of the order's life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// The order's status after this step.
    pub status: OrderStatus,
    /// What happened: `placed`, `stock_reserved`, `payment_captured`, `stock_rejected`,
    /// `payment_declined`, `deadline_exceeded`, `refund_requested`.
    pub step: String,
    /// RFC 3339.
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Order {
    pub id: OrderId,
    pub status: OrderStatus,
    pub items: Vec<OrderItem>,
    pub total: Money,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<CancelReason>,
    pub history: Vec<HistoryEntry>,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
}

/// `GET /api/v1/orders` answer: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderPage {
    pub items: Vec<Order>,
    /// `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/orders` query.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrderListParams {
    /// Page size, parsed as a [`kernel::Limit`] (whose bounds the schema shows).
    #[param(value_type = Option<kernel::Limit>, inline)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<kernel::OrderCursor>, inline)]
    pub cursor: Option<String>,
}

/// The answer to placing an order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Placed {
    /// The order as it was accepted (`pending`); a replay returns the first answer again.
    pub order: Order,
    /// True when this key was seen before with the same request: nothing new was created.
    pub replayed: bool,
}
