use kernel::{Limit, Money, OrderId, PaymentId};
use serde::{Deserialize, Serialize};

/// A card token, as a payment form would hand it over (a card number never enters the
/// system). The simulated provider follows Stripe's test tokens, and only those are valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum PaymentToken {
    /// A card that is always charged.
    #[serde(rename = "tok_visa")]
    Visa,
    /// A card that is always declined.
    #[serde(rename = "tok_chargeDeclined")]
    ChargeDeclined,
}

impl PaymentToken {
    pub const ACCEPTED: [&'static str; 2] = ["tok_visa", "tok_chargeDeclined"];

    pub fn parse(s: &str) -> Option<PaymentToken> {
        match s {
            "tok_visa" => Some(PaymentToken::Visa),
            "tok_chargeDeclined" => Some(PaymentToken::ChargeDeclined),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentToken::Visa => "tok_visa",
            PaymentToken::ChargeDeclined => "tok_chargeDeclined",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// The money was taken.
    Captured,
    /// The card was declined, or the request came too late; nothing was taken.
    Declined,
    /// Taken, then given back (the order was cancelled meanwhile).
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Captured => "captured",
            PaymentStatus::Declined => "declined",
            PaymentStatus::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<PaymentStatus> {
        Some(match s {
            "captured" => PaymentStatus::Captured,
            "declined" => PaymentStatus::Declined,
            "refunded" => PaymentStatus::Refunded,
            _ => return None,
        })
    }
}

/// Why a payment was declined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    /// The card provider declined the charge.
    CardDeclined,
    /// The request arrived after the order's deadline; the card was not charged.
    Expired,
}

impl DeclineReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeclineReason::CardDeclined => "card_declined",
            DeclineReason::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<DeclineReason> {
        match s {
            "card_declined" => Some(DeclineReason::CardDeclined),
            "expired" => Some(DeclineReason::Expired),
            _ => None,
        }
    }
}

/// The payment of one order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Payment {
    pub id: PaymentId,
    pub order_id: OrderId,
    pub status: PaymentStatus,
    pub amount: Money,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_reason: Option<DeclineReason>,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
}

/// `GET /api/v1/payments` answer: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentPage {
    pub items: Vec<Payment>,
    /// `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/payments` query.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PaymentsParams {
    /// Only the payment of this order (404 if the caller has none for it).
    #[param(format = Uuid)]
    pub order_id: Option<String>,
    /// Page size, parsed as a [`kernel::Limit`] (whose bounds the schema shows).
    #[param(value_type = Option<kernel::Limit>, inline)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<kernel::PaymentCursor>, inline)]
    pub cursor: Option<String>,
}

/// Which of the caller's payments to list, parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PaymentQuery {
    /// Only this order's payment.
    pub order: Option<OrderId>,
    pub limit: Limit,
    /// The last payment of the previous page.
    pub after: Option<PaymentId>,
}

impl PaymentQuery {
    /// The payment of one order.
    pub fn of_order(order: OrderId) -> PaymentQuery {
        PaymentQuery { order: Some(order), ..PaymentQuery::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_test_tokens_parse() {
        assert_eq!(PaymentToken::parse("tok_visa"), Some(PaymentToken::Visa));
        assert_eq!(PaymentToken::parse("tok_chargeDeclined"), Some(PaymentToken::ChargeDeclined));
        for bad in ["", "tok_mastercard", "TOK_VISA", "4242424242424242"] {
            assert_eq!(PaymentToken::parse(bad), None, "{bad}");
        }
        let json = serde_json::to_string(&PaymentToken::ChargeDeclined).unwrap();
        assert_eq!(json, "\"tok_chargeDeclined\"");
    }
}
