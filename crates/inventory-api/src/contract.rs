//! The inventory contract, declared once: the [`InventoryService`] trait, the [`InventoryClient`] handle,
//! the remote client [`InventoryRemote`] and the [`internal_routes`] that serve it.

use kernel::{OrderId, ProductId, RequestContext};

use crate::{InventoryError, Reservation, ReservationLine, StockCount, StockLevel};

rpc::contract! {
    module: "inventory",
    client: InventoryClient,
    remote: InventoryRemote,
    /// What the inventory module does, whatever its placement.
    ///
    /// Reservation operations are for the checkout saga (system or admin callers); each is
    /// idempotent per order, so a redelivered or retried step has no second effect.
    #[cfg_attr(feature = "mock", mockall::automock)]
    pub trait InventoryService {
        #[idempotent]
        async fn stock(
            &self,
            ctx: &RequestContext,
            product: ProductId,
        ) -> Result<StockLevel, InventoryError>;
        /// Admin only. Sets the available count; the difference is recorded as a restock.
        async fn set_stock(
            &self,
            ctx: &RequestContext,
            product: ProductId,
            available: StockCount,
        ) -> Result<StockLevel, InventoryError>;
        /// Holds every line or none. Asking again for the same order returns the first outcome.
        async fn reserve(
            &self,
            ctx: &RequestContext,
            order: OrderId,
            lines: Vec<ReservationLine>,
        ) -> Result<Reservation, InventoryError>;
        /// Held units become sold. Idempotent; a released reservation cannot be committed.
        async fn commit(
            &self,
            ctx: &RequestContext,
            order: OrderId,
        ) -> Result<Reservation, InventoryError>;
        /// Held units become available again. Idempotent; a committed one cannot be released.
        async fn release(
            &self,
            ctx: &RequestContext,
            order: OrderId,
        ) -> Result<Reservation, InventoryError>;
    }
}
