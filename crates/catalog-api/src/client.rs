use std::sync::Arc;

use async_trait::async_trait;
use kernel::{Page, ProductId, RequestContext};
use tracing::Instrument as _;

use crate::{CatalogError, NewProduct, PriceQuote, Product, ProductPatch, ProductQuery};

/// What the catalog module does, whatever its placement.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait CatalogService: Send + Sync + 'static {
    async fn list(
        &self,
        ctx: &RequestContext,
        query: ProductQuery,
    ) -> Result<Page<Product>, CatalogError>;
    async fn get(&self, ctx: &RequestContext, id: ProductId) -> Result<Product, CatalogError>;
    /// Admin only.
    async fn create(
        &self,
        ctx: &RequestContext,
        product: NewProduct,
    ) -> Result<Product, CatalogError>;
    /// Admin only.
    async fn update(
        &self,
        ctx: &RequestContext,
        id: ProductId,
        patch: ProductPatch,
    ) -> Result<Product, CatalogError>;
    /// Current name and price of each known product in `ids`; unknown ids are left out.
    async fn quote(
        &self,
        ctx: &RequestContext,
        ids: Vec<ProductId>,
    ) -> Result<Vec<PriceQuote>, CatalogError>;
}

/// The handle through which everything else talks to catalog.
#[derive(Clone)]
pub struct CatalogClient(Arc<dyn CatalogService>);

impl std::fmt::Debug for CatalogClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CatalogClient")
    }
}

impl CatalogClient {
    /// An in-process implementation (the monolith's placement).
    pub fn local(service: impl CatalogService) -> Self {
        CatalogClient(Arc::new(service))
    }

    /// Any implementation, e.g. a remote transport.
    pub fn from_arc(service: Arc<dyn CatalogService>) -> Self {
        CatalogClient(service)
    }

    /// The implementation behind the handle, for a wrapper that opens no span of its own
    /// (the handle's methods each open one).
    pub fn into_service(self) -> Arc<dyn CatalogService> {
        self.0
    }

    /// A mockall mock, for tests that script the answers.
    #[cfg(feature = "mock")]
    pub fn mock(mock: MockCatalogService) -> Self {
        CatalogClient(Arc::new(mock))
    }

    /// An in-memory fake holding `products`, for tests of modules that read the catalog.
    #[cfg(feature = "mock")]
    pub fn fake(products: Vec<Product>) -> Self {
        CatalogClient::local(crate::FakeCatalog::new(products))
    }

    pub async fn list(
        &self,
        ctx: &RequestContext,
        query: ProductQuery,
    ) -> Result<Page<Product>, CatalogError> {
        self.0.list(ctx, query).instrument(tracing::info_span!("catalog.list")).await
    }

    pub async fn get(&self, ctx: &RequestContext, id: ProductId) -> Result<Product, CatalogError> {
        self.0.get(ctx, id).instrument(tracing::info_span!("catalog.get")).await
    }

    pub async fn create(
        &self,
        ctx: &RequestContext,
        product: NewProduct,
    ) -> Result<Product, CatalogError> {
        self.0.create(ctx, product).instrument(tracing::info_span!("catalog.create")).await
    }

    pub async fn update(
        &self,
        ctx: &RequestContext,
        id: ProductId,
        patch: ProductPatch,
    ) -> Result<Product, CatalogError> {
        self.0.update(ctx, id, patch).instrument(tracing::info_span!("catalog.update")).await
    }

    pub async fn quote(
        &self,
        ctx: &RequestContext,
        ids: Vec<ProductId>,
    ) -> Result<Vec<PriceQuote>, CatalogError> {
        self.0.quote(ctx, ids).instrument(tracing::info_span!("catalog.quote")).await
    }
}
