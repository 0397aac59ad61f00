//! What cart does with the events it consumes: a confirmed order removes what was bought
//! from the buyer's cart.

use std::sync::Arc;

use async_trait::async_trait;
use bus::{Envelope, HandleError, Handler, Subscription};
use orders_api::events::OrderConfirmed;

use crate::Cart;

/// The name this module consumes events under (its durable consumer and inbox).
pub const CONSUMER: &str = "cart";
bus::subscribes! {
    /// The events it handles, decoded.
    pub enum Consumed { OrderConfirmed }
}
/// The events it handles.
pub const SUBSCRIBES: &[&str] = Consumed::TYPES;

impl Cart {
    /// What cart consumes: a confirmed order removes the ordered products from the cart.
    pub fn subscription(self: &Arc<Self>) -> Subscription {
        Subscription::new(CONSUMER, SUBSCRIBES.to_vec(), self.clone() as Arc<dyn Handler>)
    }
}

#[async_trait]
impl Handler for Cart {
    /// Removes what was bought: the order's products, unless the user set that line again
    /// after placing the order (then it is a new wish, and stays).
    async fn handle(&self, event: &Envelope) -> Result<(), HandleError> {
        let Consumed::OrderConfirmed(e) = Consumed::decode(event)?;
        let mut tx = self.db.begin_write().await?;
        if !bus::inbox::claim(&mut tx, CONSUMER, event).await? {
            return Ok(());
        }
        for line in &e.lines {
            sqlx::query(
                "DELETE FROM cart_items WHERE user_id = $1 AND product_id = $2 AND updated_at <= $3",
            )
            .bind(e.user_id.to_string())
            .bind(line.product_id.to_string())
            .bind(e.placed_at)
            .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
