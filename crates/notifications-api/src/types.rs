use kernel::{NotificationId, OrderId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    OrderConfirmed,
    OrderCancelled,
    PaymentRefunded,
    /// For admins: what a day sold.
    DailySalesSummary,
    /// Someone tried to register an account with this user's email address.
    RegistrationAttempted,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::OrderConfirmed => "order_confirmed",
            NotificationKind::OrderCancelled => "order_cancelled",
            NotificationKind::PaymentRefunded => "payment_refunded",
            NotificationKind::DailySalesSummary => "daily_sales_summary",
            NotificationKind::RegistrationAttempted => "registration_attempted",
        }
    }

    pub fn parse(s: &str) -> Option<NotificationKind> {
        Some(match s {
            "order_confirmed" => NotificationKind::OrderConfirmed,
            "order_cancelled" => NotificationKind::OrderCancelled,
            "payment_refunded" => NotificationKind::PaymentRefunded,
            "daily_sales_summary" => NotificationKind::DailySalesSummary,
            "registration_attempted" => NotificationKind::RegistrationAttempted,
            _ => return None,
        })
    }
}

/// A message written for a user (what an email sender would pick up).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: NotificationId,
    pub kind: NotificationKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
    pub subject: String,
    pub body: String,
    /// RFC 3339.
    pub created_at: String,
}

/// `GET /api/v1/notifications` answer: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    /// `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/notifications` query.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NotificationParams {
    /// Page size, parsed as a [`kernel::Limit`] (whose bounds the schema shows).
    #[param(value_type = Option<kernel::Limit>, inline)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<kernel::NotificationCursor>, inline)]
    pub cursor: Option<String>,
}
