//! An in-memory catalog for the tests of modules that call catalog.

use std::sync::Mutex;

use async_trait::async_trait;
use kernel::{Page, ProductId, RequestContext};

use crate::{
    CatalogError, CatalogService, NewProduct, PriceQuote, Product, ProductPatch, ProductQuery,
};

#[derive(Debug, Default)]
pub struct FakeCatalog {
    products: Mutex<Vec<Product>>,
}

impl FakeCatalog {
    pub fn new(products: Vec<Product>) -> Self {
        FakeCatalog { products: Mutex::new(products) }
    }

    fn all(&self) -> Vec<Product> {
        self.products.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl CatalogService for FakeCatalog {
    async fn list(
        &self,
        _: &RequestContext,
        q: ProductQuery,
    ) -> Result<Page<Product, ProductId>, CatalogError> {
        let items: Vec<Product> = self
            .all()
            .into_iter()
            .filter(|p| q.after.is_none_or(|a| p.id > a))
            .filter(|p| q.category.as_ref().is_none_or(|c| c.as_str() == p.category))
            .filter(|p| q.text.as_deref().is_none_or(|t| p.name.to_lowercase().contains(t)))
            .take(q.limit.get() as usize)
            .collect();
        let next =
            (items.len() == q.limit.get() as usize).then(|| items.last().map(|p| p.id)).flatten();
        Ok(Page { items, next })
    }

    async fn get(&self, _: &RequestContext, id: ProductId) -> Result<Product, CatalogError> {
        self.all().into_iter().find(|p| p.id == id).ok_or(CatalogError::ProductNotFound)
    }

    async fn create(&self, ctx: &RequestContext, n: NewProduct) -> Result<Product, CatalogError> {
        ctx.admin()?;
        let p = Product {
            id: ProductId::new(),
            name: n.name,
            description: n.description,
            category: n.category.as_str().to_owned(),
            price: n.price,
            created_at: String::new(),
            updated_at: String::new(),
        };
        if let Ok(mut all) = self.products.lock() {
            all.push(p.clone());
        }
        Ok(p)
    }

    async fn update(
        &self,
        ctx: &RequestContext,
        id: ProductId,
        patch: ProductPatch,
    ) -> Result<Product, CatalogError> {
        ctx.admin()?;
        let mut all =
            self.products.lock().map_err(|_| CatalogError::Internal("poisoned".into()))?;
        let p = all.iter_mut().find(|p| p.id == id).ok_or(CatalogError::ProductNotFound)?;
        patch.apply(p);
        Ok(p.clone())
    }

    async fn quote(
        &self,
        _: &RequestContext,
        ids: Vec<ProductId>,
    ) -> Result<Vec<PriceQuote>, CatalogError> {
        Ok(self
            .all()
            .into_iter()
            .filter(|p| ids.contains(&p.id))
            .map(|p| PriceQuote { product_id: p.id, name: p.name, unit_price: p.price })
            .collect())
    }
}

impl crate::CatalogClient {
    /// An in-memory fake holding `products`, for tests of modules that read the catalog.
    pub fn fake(products: Vec<Product>) -> Self {
        crate::CatalogClient::local(FakeCatalog::new(products))
    }
}
