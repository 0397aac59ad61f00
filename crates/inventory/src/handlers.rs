//! Inventory's part of the checkout saga: reserve on `order_placed`, sell on
//! `order_confirmed`, release on `order_cancelled`. Each in one transaction with the inbox
//! record and the outcome event.

use std::sync::Arc;

use async_trait::async_trait;
use bus::{Envelope, HandleError, Handler, Subscription};
use inventory_api::events::{ReservationReleased, StockRejected, StockReserved};
use inventory_api::{InventoryError, ReservationLine, ReservationStatus};
use orders_api::events::{OrderCancelled, OrderConfirmed, OrderPlaced};
use store::Tx;

use crate::Inventory;
use crate::service::{
    COMMITTED, RELEASED, SELL, UNHOLD, insert_reservation, load, reserve_in, settle_in,
};

/// The name this module consumes events under (its durable consumer and inbox).
pub const CONSUMER: &str = "inventory";
bus::subscribes! {
    /// The events it handles, decoded.
    pub enum Consumed { OrderPlaced, OrderConfirmed, OrderCancelled }
}
/// The events it handles.
pub const SUBSCRIBES: &[&str] = Consumed::TYPES;

/// A database hiccup is worth retrying; a broken rule (confirming a released reservation)
/// never heals by itself and goes to the dead letters for an operator.
fn to_handle(e: InventoryError) -> HandleError {
    match e {
        InventoryError::Internal(_)
        | InventoryError::Unavailable
        | InventoryError::Timeout
        | InventoryError::UpstreamUnavailable { .. }
        | InventoryError::UpstreamTimeout { .. } => HandleError::retry(e),
        other => HandleError::reject(other),
    }
}

impl Inventory {
    /// What inventory consumes.
    pub fn subscription(self: &Arc<Self>) -> Subscription {
        Subscription::new(CONSUMER, SUBSCRIBES.to_vec(), self.clone() as Arc<dyn Handler>)
    }

    async fn step(&self, tx: &mut Tx, event: &Envelope) -> Result<(), HandleError> {
        let trace = event.trace.child();
        match Consumed::decode(event)? {
            Consumed::OrderPlaced(e) => {
                let lines: Vec<ReservationLine> = e
                    .lines
                    .iter()
                    .map(|l| ReservationLine { product_id: l.product_id, quantity: l.quantity })
                    .collect();
                let Some(first) = lines.first().map(|l| l.product_id) else {
                    return Err(HandleError::reject("an order without lines"));
                };
                let r = reserve_in(tx, e.order_id, &lines).await.map_err(to_handle)?;
                match r.status {
                    ReservationStatus::Reserved => {
                        let event = StockReserved { order_id: e.order_id, lines: r.lines };
                        self.outbox.add(tx, &event, trace).await?;
                    }
                    ReservationStatus::Rejected => {
                        let product_id = r.short_product.unwrap_or(first);
                        let event = StockRejected { order_id: e.order_id, product_id };
                        self.outbox.add(tx, &event, trace).await?;
                    }
                    // Cancelled before it was reserved (a release tombstone): nothing to do.
                    ReservationStatus::Released | ReservationStatus::Committed => {}
                }
            }
            Consumed::OrderConfirmed(e) => {
                settle_in(tx, e.order_id, ReservationStatus::Committed, SELL, &COMMITTED)
                    .await
                    .map_err(to_handle)?;
            }
            Consumed::OrderCancelled(e) => {
                if load(tx, e.order_id).await.map_err(to_handle)?.is_none() {
                    // The cancellation overtook the placement (the deadline passed while
                    // inventory was behind): leave a tombstone so a late `order_placed`
                    // holds nothing.
                    insert_reservation(tx, e.order_id, ReservationStatus::Released, None)
                        .await
                        .map_err(to_handle)?;
                    return Ok(());
                }
                let (_, changed) =
                    settle_in(tx, e.order_id, ReservationStatus::Released, UNHOLD, &RELEASED)
                        .await
                        .map_err(to_handle)?;
                if changed {
                    let event = ReservationReleased { order_id: e.order_id };
                    self.outbox.add(tx, &event, trace).await?;
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Handler for Inventory {
    async fn handle(&self, event: &Envelope) -> Result<(), HandleError> {
        if bus::inbox::once(&self.db, CONSUMER, event, async |tx| self.step(tx, event).await)
            .await?
        {
            self.outbox.wake();
        }
        Ok(())
    }
}
