use std::sync::Arc;

use async_trait::async_trait;
use kernel::{OrderId, ProductId, RequestContext};
use tracing::Instrument as _;

use crate::{InventoryError, Reservation, ReservationLine, StockCount, StockLevel};

/// What the inventory module does, whatever its placement.
///
/// Reservation operations are for the checkout saga (system or admin callers); each is
/// idempotent per order, so a redelivered or retried step has no second effect.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait InventoryService: Send + Sync + 'static {
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

/// The handle through which everything else talks to inventory.
#[derive(Clone)]
pub struct InventoryClient(Arc<dyn InventoryService>);

impl std::fmt::Debug for InventoryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InventoryClient")
    }
}

impl InventoryClient {
    /// An in-process implementation (the monolith's placement).
    pub fn local(service: impl InventoryService) -> Self {
        InventoryClient(Arc::new(service))
    }

    /// Any implementation, e.g. a remote transport.
    pub fn from_arc(service: Arc<dyn InventoryService>) -> Self {
        InventoryClient(service)
    }

    /// The implementation behind the handle, for a wrapper that opens no span of its own
    /// (the handle's methods each open one).
    pub fn into_service(self) -> Arc<dyn InventoryService> {
        self.0
    }

    /// A mockall mock, for tests that script the answers.
    #[cfg(feature = "mock")]
    pub fn mock(mock: MockInventoryService) -> Self {
        InventoryClient(Arc::new(mock))
    }

    pub async fn stock(
        &self,
        ctx: &RequestContext,
        product: ProductId,
    ) -> Result<StockLevel, InventoryError> {
        self.0.stock(ctx, product).instrument(tracing::info_span!("inventory.stock")).await
    }

    pub async fn set_stock(
        &self,
        ctx: &RequestContext,
        product: ProductId,
        available: StockCount,
    ) -> Result<StockLevel, InventoryError> {
        self.0
            .set_stock(ctx, product, available)
            .instrument(tracing::info_span!("inventory.set_stock"))
            .await
    }

    pub async fn reserve(
        &self,
        ctx: &RequestContext,
        order: OrderId,
        lines: Vec<ReservationLine>,
    ) -> Result<Reservation, InventoryError> {
        self.0.reserve(ctx, order, lines).instrument(tracing::info_span!("inventory.reserve")).await
    }

    pub async fn commit(
        &self,
        ctx: &RequestContext,
        order: OrderId,
    ) -> Result<Reservation, InventoryError> {
        self.0.commit(ctx, order).instrument(tracing::info_span!("inventory.commit")).await
    }

    pub async fn release(
        &self,
        ctx: &RequestContext,
        order: OrderId,
    ) -> Result<Reservation, InventoryError> {
        self.0.release(ctx, order).instrument(tracing::info_span!("inventory.release")).await
    }
}
