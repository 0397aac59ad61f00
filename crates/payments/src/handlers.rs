//! Payments' part of the checkout saga: charge on `orders.payment_requested` (once,
//! whatever is redelivered), settle or void on the order's outcome, refund on
//! `orders.refund_requested`.

use std::sync::Arc;

use async_trait::async_trait;
use bus::{Envelope, HandleError, Handler, Subscription};
use kernel::PaymentId;
use orders_api::events::{OrderCancelled, OrderConfirmed, PaymentRequested, RefundRequested};
use payments_api::events::{PaymentCaptured, PaymentDeclined, PaymentRefunded};
use payments_api::{DeclineReason, PaymentStatus};
use sqlx::Row as _;

use crate::ChargeOutcome;
use crate::Payments;
use crate::rows::money;

/// The name this module consumes events under (its durable consumer and inbox).
pub const CONSUMER: &str = "payments";
bus::subscribes! {
    /// The events it handles, decoded.
    pub enum Consumed { PaymentRequested, RefundRequested, OrderConfirmed, OrderCancelled }
}
/// The events it handles.
pub const SUBSCRIBES: &[&str] = Consumed::TYPES;

impl Payments {
    /// What payments consumes.
    pub fn subscription(self: &Arc<Self>) -> Subscription {
        Subscription::new(CONSUMER, SUBSCRIBES.to_vec(), self.clone() as Arc<dyn Handler>)
    }
    /// Charges the order once. The provider call is outside our transaction (it is an
    /// external service): a crash after it and before our commit redelivers the request,
    /// and the provider answers the repeated idempotency key (the order id) with the first
    /// charge instead of making a second.
    async fn on_payment_requested(
        &self,
        event: &Envelope,
        req: PaymentRequested,
    ) -> Result<(), HandleError> {
        if self.payment_of(req.order_id).await?.is_some() {
            return Ok(());
        }
        let (status, reason, charge_id) = if kernel::now_ms() > req.expires_at {
            // The order's deadline has passed: orders is cancelling it, so no money moves.
            (PaymentStatus::Declined, Some(DeclineReason::Expired), None)
        } else {
            let charge = self
                .provider
                .charge(
                    &req.order_id.to_string(),
                    req.payment_token,
                    req.amount,
                    &req.order_id.to_string(),
                )
                .await
                .map_err(|e| HandleError::retry(format!("card provider: {e}")))?;
            match charge.outcome {
                ChargeOutcome::Succeeded => (PaymentStatus::Captured, None, Some(charge.charge_id)),
                ChargeOutcome::Declined => (
                    PaymentStatus::Declined,
                    Some(DeclineReason::CardDeclined),
                    Some(charge.charge_id),
                ),
            }
        };
        let id = PaymentId::new();
        let now = kernel::now_ms();
        let mut tx = self.db.begin_write().await?;
        if !bus::inbox::claim(&mut tx, CONSUMER, event).await? {
            return Ok(());
        }
        let inserted = sqlx::query(
            "INSERT INTO payments (id, order_id, user_id, status, amount, currency, decline_reason, \
             provider_charge_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
             ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(req.order_id.to_string())
        .bind(req.user_id.to_string())
        .bind(status.as_str())
        .bind(req.amount.amount)
        .bind(req.amount.currency.as_str())
        .bind(reason.map(DeclineReason::as_str))
        .bind(charge_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            tx.commit().await?;
            return Ok(());
        }
        let trace = event.trace.child();
        let (order_id, user_id, amount) = (req.order_id, req.user_id, req.amount);
        match reason {
            None => {
                let e = PaymentCaptured { payment_id: id, order_id, user_id, amount };
                self.outbox.add(&mut tx, &e, trace).await?;
            }
            Some(reason) => {
                let e = PaymentDeclined { payment_id: id, order_id, user_id, amount, reason };
                self.outbox.add(&mut tx, &e, trace).await?;
            }
        }
        tx.commit().await?;
        self.outbox.wake();
        tracing::info!(order_id = %order_id, status = status.as_str(), "payment recorded");
        Ok(())
    }
    /// Orders confirmed the order: its payment may no longer be refunded.
    async fn on_order_confirmed(
        &self,
        event: &Envelope,
        e: OrderConfirmed,
    ) -> Result<(), HandleError> {
        let mut tx = self.db.begin_write().await?;
        if !bus::inbox::claim(&mut tx, CONSUMER, event).await? {
            return Ok(());
        }
        sqlx::query("UPDATE payments SET order_confirmed = 1 WHERE order_id = $1 AND user_id = $2")
            .bind(e.order_id.to_string())
            .bind(e.user_id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
    /// Orders cancelled the order: from now on a refund of its payment may go ahead.
    async fn on_order_cancelled(
        &self,
        event: &Envelope,
        e: OrderCancelled,
    ) -> Result<(), HandleError> {
        let mut tx = self.db.begin_write().await?;
        if !bus::inbox::claim(&mut tx, CONSUMER, event).await? {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO cancelled_orders (order_id, user_id, cancelled_at) VALUES ($1, $2, $3) \
             ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(e.order_id.to_string())
        .bind(e.user_id.to_string())
        .bind(kernel::now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
    /// Whether a refund for `req` may go ahead: the payment is that user's, its order was
    /// not confirmed, and payments has seen the order cancelled, for that user. Orders asks
    /// for refunds only for cancelled orders; a request that comes before the cancellation
    /// does is retried until it has (and dead-lettered if it never does).
    async fn check_refund(&self, req: &RefundRequested) -> Result<(), HandleError> {
        let order = req.order_id.to_string();
        let payment =
            sqlx::query("SELECT user_id, order_confirmed FROM payments WHERE order_id = $1")
                .bind(&order)
                .fetch_optional(self.db.pool())
                .await?;
        if let Some(row) = payment {
            if row.try_get::<String, _>("user_id")? != req.user_id.to_string() {
                return Err(HandleError::reject(format!(
                    "refund for order {order} names another user than its payment's"
                )));
            }
            if row.try_get::<i64, _>("order_confirmed")? != 0 {
                return Err(HandleError::reject(format!(
                    "refund refused: order {order} is confirmed"
                )));
            }
        }
        let cancelled = sqlx::query("SELECT user_id FROM cancelled_orders WHERE order_id = $1")
            .bind(&order)
            .fetch_optional(self.db.pool())
            .await?;
        match cancelled {
            None => Err(HandleError::retry(format!(
                "refund for order {order}, not known to be cancelled (yet)"
            ))),
            Some(row) if row.try_get::<String, _>("user_id")? != req.user_id.to_string() => {
                Err(HandleError::reject(format!(
                    "refund for order {order} names another user than its cancellation"
                )))
            }
            Some(_) => Ok(()),
        }
    }
    async fn on_refund_requested(
        &self,
        event: &Envelope,
        req: RefundRequested,
    ) -> Result<(), HandleError> {
        self.check_refund(&req).await?;
        // Refund first (idempotent at the provider), then record it; a crash in between
        // repeats a no-op refund.
        if let Some(charge_id) = self.charge_id_of(req.order_id).await? {
            self.provider
                .refund(&charge_id)
                .await
                .map_err(|e| HandleError::retry(format!("card provider: {e}")))?;
        }
        let mut tx = self.db.begin_write().await?;
        if !bus::inbox::claim(&mut tx, CONSUMER, event).await? {
            return Ok(());
        }
        let row = sqlx::query(
            "UPDATE payments SET status = 'refunded', updated_at = $1 \
             WHERE order_id = $2 AND status = 'captured' RETURNING id, amount, currency",
        )
        .bind(kernel::now_ms())
        .bind(req.order_id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(r) = row {
            let id: String = r.try_get("id")?;
            let amount = money(r.try_get("amount")?, &r.try_get::<String, _>("currency")?)
                .map_err(HandleError::reject)?;
            let e = PaymentRefunded {
                payment_id: PaymentId::parse(&id)
                    .ok_or_else(|| HandleError::reject("corrupt id"))?,
                order_id: req.order_id,
                user_id: req.user_id,
                amount,
            };
            self.outbox.add(&mut tx, &e, event.trace.child()).await?;
            tracing::warn!(order_id = %req.order_id, "payment refunded: the order was cancelled first");
        }
        tx.commit().await?;
        self.outbox.wake();
        Ok(())
    }
}

#[async_trait]
impl Handler for Payments {
    async fn handle(&self, event: &Envelope) -> Result<(), HandleError> {
        match Consumed::decode(event)? {
            Consumed::PaymentRequested(e) => self.on_payment_requested(event, e).await,
            Consumed::RefundRequested(e) => self.on_refund_requested(event, e).await,
            Consumed::OrderConfirmed(e) => self.on_order_confirmed(event, e).await,
            Consumed::OrderCancelled(e) => self.on_order_cancelled(event, e).await,
        }
    }
}
