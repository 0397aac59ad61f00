//! The catalog contract, declared once: the [`CatalogService`] trait, the [`CatalogClient`] handle,
//! the remote client [`CatalogRemote`] and the [`internal_routes`] that serve it.

use kernel::{Page, ProductId, RequestContext};

use crate::{CatalogError, NewProduct, PriceQuote, Product, ProductPatch, ProductQuery};

rpc::contract! {
    module: "catalog",
    client: CatalogClient,
    remote: CatalogRemote,
    /// What the catalog module does, whatever its placement.
    #[cfg_attr(feature = "mock", mockall::automock)]
    pub trait CatalogService {
        #[idempotent]
        async fn list(
            &self,
            ctx: &RequestContext,
            query: ProductQuery,
        ) -> Result<Page<Product, ProductId>, CatalogError>;
        #[idempotent]
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
        #[idempotent]
        async fn quote(
            &self,
            ctx: &RequestContext,
            ids: Vec<ProductId>,
        ) -> Result<Vec<PriceQuote>, CatalogError>;
    }
}
