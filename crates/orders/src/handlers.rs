//! The checkout saga, orchestrated here. Each step is one transaction of the orders
//! database: the inbox record of the event that caused it, the guarded status change
//! ([`rows::advance`]) and the next event in the outbox. A step that finds the order
//! elsewhere than it expects does nothing, so late, repeated and racing events are harmless.
//!
//! ```text
//! pending/placed ──stock_reserved──▶ pending/payment_requested ──payment_captured──▶ confirmed
//!       │                                     │
//!       ├─stock_rejected──▶ cancelled (out_of_stock)
//!       │                                     ├─payment_declined──▶ cancelled (payment_declined)
//!       └───────── deadline passed ───────────┴──────────────────▶ cancelled (deadline_exceeded)
//! cancelled + payment_captured (arrived after the deadline) ──▶ refund_requested
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use bus::{Envelope, HandleError, Handler, Subscription, TraceContext};
use inventory_api::events::{StockRejected, StockReserved};
use kernel::OrderId;
use orders_api::events::{OrderCancelled, OrderConfirmed, PaymentRequested, RefundRequested};
use orders_api::{CancelReason, OrderStatus};
use payments_api::DeclineReason;
use payments_api::events::{PaymentCaptured, PaymentDeclined};
use sqlx::Row as _;
use store::Tx;

use crate::Orders;
use crate::config::ms;
use crate::rows::{self, DONE, OrderRow, PAYMENT_REQUESTED, PLACED};
use crate::service::order_lines;

/// The name this module consumes events under (its durable consumer and inbox).
pub const CONSUMER: &str = "orders";
bus::subscribes! {
    /// The events it handles, decoded.
    pub enum Consumed { StockReserved, StockRejected, PaymentCaptured, PaymentDeclined }
}
/// The events it handles.
pub const SUBSCRIBES: &[&str] = Consumed::TYPES;

impl Orders {
    /// What orders consumes: the outcomes of the steps it asked for.
    pub fn subscription(self: &Arc<Self>) -> Subscription {
        Subscription::new(CONSUMER, SUBSCRIBES.to_vec(), self.clone() as Arc<dyn Handler>)
    }

    /// Cancels `order` with `reason` if it is still pending, publishing `order_cancelled`.
    async fn cancel(
        &self,
        tx: &mut Tx,
        order: OrderId,
        reason: CancelReason,
        trace: TraceContext,
    ) -> Result<Option<OrderRow>, sqlx::Error> {
        let to = (OrderStatus::Cancelled, DONE);
        let Some(row) = rows::advance(
            tx,
            order,
            &[PLACED, PAYMENT_REQUESTED],
            to,
            Some(reason),
            reason.as_str(),
        )
        .await?
        else {
            return Ok(None);
        };
        let event = OrderCancelled { order_id: order, user_id: row.user_id, reason };
        self.outbox.add(tx, &event, trace).await?;
        tracing::info!(order_id = %order, reason = reason.as_str(), "order cancelled");
        Ok(Some(row))
    }

    async fn step(&self, tx: &mut Tx, event: &Envelope) -> Result<(), HandleError> {
        let trace = event.trace.child();
        match Consumed::decode(event)? {
            Consumed::StockReserved(e) => {
                let to = (OrderStatus::Pending, PAYMENT_REQUESTED);
                let Some(row) =
                    rows::advance(tx, e.order_id, &[PLACED], to, None, "stock_reserved").await?
                else {
                    return out_of_step(event, e.order_id);
                };
                let request = PaymentRequested {
                    order_id: row.id,
                    user_id: row.user_id,
                    amount: row.total,
                    payment_token: row.payment_token,
                    expires_at: row.deadline_at,
                };
                self.outbox.add(tx, &request, trace).await?;
            }
            Consumed::StockRejected(e) => {
                if self.cancel(tx, e.order_id, CancelReason::OutOfStock, trace).await?.is_none() {
                    return out_of_step(event, e.order_id);
                }
            }
            Consumed::PaymentCaptured(e) => {
                // Only the charge that was asked for confirms an order: the order's own
                // total, in its currency, from its user.
                let order = self.order_for(tx, e.order_id, e.user_id, event).await?;
                if e.amount != order.total {
                    return Err(HandleError::reject(format!(
                        "a capture of {} {} does not pay order {} of {} {}",
                        e.amount.amount,
                        e.amount.currency.as_str(),
                        e.order_id,
                        order.total.amount,
                        order.total.currency.as_str()
                    )));
                }
                let to = (OrderStatus::Confirmed, DONE);
                let confirmed = rows::advance(
                    tx,
                    e.order_id,
                    &[PAYMENT_REQUESTED],
                    to,
                    None,
                    "payment_captured",
                )
                .await?;
                match confirmed {
                    Some(row) => {
                        let lines = order_lines(tx, row.id).await?;
                        let event = OrderConfirmed {
                            order_id: row.id,
                            user_id: row.user_id,
                            lines,
                            total: row.total,
                            placed_at: row.created_at,
                        };
                        self.outbox.add(tx, &event, trace).await?;
                        tracing::info!(order_id = %row.id, "order confirmed");
                    }
                    None => self.refund_if_cancelled(tx, e.order_id, trace).await?,
                }
            }
            Consumed::PaymentDeclined(e) => {
                self.order_for(tx, e.order_id, e.user_id, event).await?;
                let reason = if e.reason == DeclineReason::Expired {
                    CancelReason::DeadlineExceeded
                } else {
                    CancelReason::PaymentDeclined
                };
                if self.cancel(tx, e.order_id, reason, trace).await?.is_none() {
                    return out_of_step(event, e.order_id);
                }
            }
        }
        Ok(())
    }

    /// The order a payment event is about, if it is that user's: anything else is not a
    /// payment this saga asked for, and goes to the dead letters for an operator.
    async fn order_for(
        &self,
        tx: &mut Tx,
        order: OrderId,
        user: kernel::UserId,
        event: &Envelope,
    ) -> Result<OrderRow, HandleError> {
        match rows::load_row(&mut **tx, order).await? {
            Some(row) if row.user_id == user => Ok(row),
            Some(_) => Err(HandleError::reject(format!(
                "{} {} names another user than the order's",
                event.event_type, event.id
            ))),
            None => Err(HandleError::reject(format!(
                "{} {} is for an unknown order {order}",
                event.event_type, event.id
            ))),
        }
    }

    /// Money was taken for an order cancelled meanwhile (its deadline passed while the
    /// charge was under way): ask payments to give it back.
    async fn refund_if_cancelled(
        &self,
        tx: &mut Tx,
        order: OrderId,
        trace: TraceContext,
    ) -> Result<(), sqlx::Error> {
        let Some(row) = rows::load_row(&mut **tx, order).await? else { return Ok(()) };
        if row.status == OrderStatus::Cancelled {
            rows::append_history(
                tx,
                order,
                OrderStatus::Cancelled,
                "refund_requested",
                kernel::now_ms(),
            )
            .await?;
            let event = RefundRequested { order_id: order, user_id: row.user_id };
            self.outbox.add(tx, &event, trace).await?;
            tracing::warn!(order_id = %order, "capture after cancellation, refund requested");
        }
        Ok(())
    }

    /// One pass of the sweeper as of `now` (ms since the Unix epoch: the clock, or the time a
    /// scheduled invocation fired): cancels the pending orders whose deadline is before
    /// `now` and forgets the idempotency keys older than their retention. Returns how many
    /// orders it cancelled.
    pub async fn sweep_at(&self, now: i64) -> Result<usize, sqlx::Error> {
        let overdue = sqlx::query(
            "SELECT id FROM orders WHERE status = 'pending' AND deadline_at < $1 \
             ORDER BY deadline_at LIMIT 100",
        )
        .bind(now)
        .fetch_all(self.db.pool())
        .await?;
        let mut cancelled = 0;
        for r in &overdue {
            let id: String = r.try_get("id")?;
            let Some(id) = OrderId::parse(&id) else { continue };
            let mut tx = self.db.begin_write().await?;
            let trace = TraceContext::default();
            if self.cancel(&mut tx, id, CancelReason::DeadlineExceeded, trace).await?.is_some() {
                cancelled += 1;
            }
            tx.commit().await?;
        }
        if cancelled > 0 {
            self.outbox.wake();
        }
        let cutoff = now.saturating_sub(ms(self.config.key_retention));
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(cutoff)
            .execute(self.db.pool())
            .await?;
        Ok(cancelled)
    }
}

const SAGA_IGNORED_EVENTS: &str = "microlith_saga_ignored_events_total";

/// Describes the module's metrics to the installed recorder (call after installing it).
pub fn describe_metrics() {
    metrics::describe_counter!(
        SAGA_IGNORED_EVENTS,
        metrics::Unit::Count,
        "Events for an order past the saga step they answer (late, repeated or racing), ignored."
    );
}

/// An event for an order that is past the step it answers (late, repeated or racing):
/// recorded in the log and a counter, and it changes nothing.
fn out_of_step(event: &Envelope, order: OrderId) -> Result<(), HandleError> {
    tracing::warn!(order_id = %order, event = %event.id, event_type = %event.event_type, "event for an order not at that step: ignored");
    metrics::counter!(SAGA_IGNORED_EVENTS, "event" => event.event_type.clone()).increment(1);
    Ok(())
}

#[async_trait]
impl Handler for Orders {
    async fn handle(&self, event: &Envelope) -> Result<(), HandleError> {
        if bus::inbox::once(&self.db, CONSUMER, event, async |tx| self.step(tx, event).await)
            .await?
        {
            self.outbox.wake();
        }
        Ok(())
    }
}
