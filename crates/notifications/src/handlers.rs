//! What notifications does with the events it consumes: one message per event, to the
//! user it concerns (or to every admin), written once whatever is redelivered.

use std::sync::Arc;

use async_trait::async_trait;
use bus::{Envelope, HandleError, Handler, Subscription};
use identity_api::events::RegistrationAttempted;
use kernel::{Money, NotificationId, OrderId, UserId};
use notifications_api::NotificationKind;
use orders_api::CancelReason;
use orders_api::events::{DailySalesSummary, OrderCancelled, OrderConfirmed};
use payments_api::events::PaymentRefunded;

use crate::Notifications;
use crate::service::ADMINS;

/// The name this module consumes events under (its durable consumer and inbox).
pub const CONSUMER: &str = "notifications";
bus::subscribes! {
    /// The events it handles, decoded.
    pub enum Consumed { OrderConfirmed, OrderCancelled, PaymentRefunded, DailySalesSummary, RegistrationAttempted }
}
/// The events it handles.
pub const SUBSCRIBES: &[&str] = Consumed::TYPES;

impl Notifications {
    /// What notifications consumes.
    pub fn subscription(self: &Arc<Self>) -> Subscription {
        Subscription::new(CONSUMER, SUBSCRIBES.to_vec(), self.clone() as Arc<dyn Handler>)
    }
}

fn dollars(m: Money) -> String {
    format!("{}.{:02} {}", m.amount / 100, (m.amount % 100).abs(), m.currency.as_str())
}

/// What to tell whom about an event.
struct Message {
    recipient: Recipient,
    kind: NotificationKind,
    order: Option<OrderId>,
    subject: String,
    body: String,
}

enum Recipient {
    User(UserId),
    Admins,
}

impl Recipient {
    fn key(&self) -> String {
        match self {
            Recipient::User(id) => id.to_string(),
            Recipient::Admins => ADMINS.to_owned(),
        }
    }
}

fn message(event: &Envelope) -> Result<Message, HandleError> {
    Ok(match Consumed::decode(event)? {
        Consumed::OrderConfirmed(e) => {
            let n: u32 = e.lines.iter().map(|l| l.quantity.get()).sum();
            Message {
                recipient: Recipient::User(e.user_id),
                kind: NotificationKind::OrderConfirmed,
                order: Some(e.order_id),
                subject: "Your order is confirmed".into(),
                body: format!(
                    "Order {} is paid ({}) and {n} item(s) are on their way.",
                    e.order_id,
                    dollars(e.total)
                ),
            }
        }
        Consumed::OrderCancelled(e) => {
            let why = match e.reason {
                CancelReason::OutOfStock => "some items are out of stock",
                CancelReason::PaymentDeclined => "the card was declined",
                CancelReason::DeadlineExceeded => "it could not be completed in time",
            };
            Message {
                recipient: Recipient::User(e.user_id),
                kind: NotificationKind::OrderCancelled,
                order: Some(e.order_id),
                subject: "Your order was cancelled".into(),
                body: format!(
                    "Order {} was cancelled because {why}. Nothing was charged.",
                    e.order_id
                ),
            }
        }
        Consumed::PaymentRefunded(e) => Message {
            recipient: Recipient::User(e.user_id),
            kind: NotificationKind::PaymentRefunded,
            order: Some(e.order_id),
            subject: "Your payment was refunded".into(),
            body: format!("{} for order {} was refunded.", dollars(e.amount), e.order_id),
        },
        Consumed::RegistrationAttempted(e) => Message {
            recipient: Recipient::User(e.user_id),
            kind: NotificationKind::RegistrationAttempted,
            order: None,
            subject: "Someone tried to register with your email".into(),
            body: "An account was requested with your email address. You already have \
                       one: nothing changed. If it was you, log in instead."
                .into(),
        },
        Consumed::DailySalesSummary(e) => {
            let revenue = if e.revenue.is_empty() {
                "nothing".to_owned()
            } else {
                e.revenue.iter().map(|m| dollars(*m)).collect::<Vec<_>>().join(" + ")
            };
            Message {
                recipient: Recipient::Admins,
                kind: NotificationKind::DailySalesSummary,
                order: None,
                subject: format!("Sales on {}", e.day),
                body: format!(
                    "On {} (UTC), {} order(s) were confirmed: {} unit(s) sold for {revenue}. {} order(s) were cancelled.",
                    e.day, e.orders_confirmed, e.units_sold, e.orders_cancelled
                ),
            }
        }
    })
}

#[async_trait]
impl Handler for Notifications {
    async fn handle(&self, event: &Envelope) -> Result<(), HandleError> {
        let m = message(event)?;
        let written = bus::inbox::once(&self.db, CONSUMER, event, async |tx| {
            sqlx::query(
                "INSERT INTO notifications (id, user_id, kind, order_id, subject, body, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(NotificationId::new().to_string())
            .bind(m.recipient.key())
            .bind(m.kind.as_str())
            .bind(m.order.map(|o| o.to_string()))
            .bind(&m.subject)
            .bind(&m.body)
            .bind(kernel::now_ms())
            .execute(&mut **tx)
            .await?;
            Ok(())
        })
        .await?;
        if written {
            tracing::info!(
                recipient = m.recipient.key(),
                kind = m.kind.as_str(),
                "notification written"
            );
        }
        Ok(())
    }
}
