use std::time::Duration;

use catalog_api::{CatalogClient, Category, NewProduct, ProductQuery};
use inventory_api::{InventoryClient, StockCount};
use kernel::{ContractError as _, Currency, ErrorKind, Money, ProductId, RequestContext};

/// The demo catalog: (category, name, description, price in cents, stock).
pub const DEMO_PRODUCTS: &[(&str, &str, &str, i64, i64)] = &[
    ("coffee", "Ethiopia Yirgacheffe, 250 g", "Washed, floral and citrus; light roast.", 1450, 40),
    ("coffee", "Colombia Huila, 250 g", "Caramel and red apple; medium roast.", 1290, 40),
    ("coffee", "Brazil Cerrado, 1 kg", "Chocolate and nuts; for espresso.", 3200, 25),
    ("coffee", "Kenya AA, 250 g", "Blackcurrant and grapefruit; bright.", 1690, 30),
    ("coffee", "Decaf Peru, 250 g", "Sugar-cane decaffeinated; cocoa notes.", 1390, 20),
    ("coffee", "House Espresso Blend, 1 kg", "Dark, syrupy, forgiving.", 2890, 50),
    ("tea", "Darjeeling First Flush, 100 g", "Muscatel, light and bright.", 1850, 25),
    ("tea", "Sencha Asamushi, 100 g", "Grassy Japanese green tea.", 1390, 30),
    ("tea", "Assam Breakfast, 250 g", "Malty black tea; takes milk.", 990, 45),
    ("tea", "Earl Grey, 100 g", "Black tea with bergamot oil.", 890, 45),
    ("tea", "Chamomile Flowers, 50 g", "Whole flowers, caffeine free.", 690, 35),
    ("tea", "Oolong Tieguanyin, 100 g", "Orchid aroma; several infusions.", 2190, 15),
    ("equipment", "Pour-over Dripper", "Ceramic cone for one to two cups.", 2400, 20),
    ("equipment", "Burr Grinder", "Conical steel burrs, 40 settings.", 8900, 10),
    ("equipment", "Gooseneck Kettle, 1 l", "Precise pour for filter coffee.", 4500, 12),
    ("equipment", "Digital Scale", "0.1 g resolution with timer.", 2900, 18),
    ("equipment", "French Press, 8 cups", "Borosilicate glass, steel frame.", 3500, 15),
    ("equipment", "Paper Filters (100)", "Unbleached, for cone drippers.", 600, 100),
    ("books", "The World Atlas of Coffee", "Origins, processing and brewing.", 3500, 8),
    ("books", "The Tea Book", "A guide to teas of the world.", 2200, 8),
    ("books", "Water for Coffee", "The chemistry of a good cup.", 4000, 5),
    ("merch", "Enamel Mug", "Camp mug, 350 ml.", 1500, 60),
    ("merch", "Canvas Tote", "Heavy cotton bag.", 1200, 40),
    ("merch", "Gift Card 50", "Spend it on anything in the shop.", 5000, 1000),
];

/// How many times a seeding call that timed out or found its module unavailable is made:
/// a busy machine may be slow at start, and catalog's budget is a product read's (a
/// second on `microservices`).
const SEED_TRIES: u32 = 5;

/// Creates the demo catalog and its stock through the modules' contracts, as the system.
/// Returns how many products were created.
pub async fn seed_demo_catalog(
    catalog: &CatalogClient,
    inventory: &InventoryClient,
) -> anyhow::Result<usize> {
    let ctx = RequestContext::system();
    for &(category, name, description, cents, stock) in DEMO_PRODUCTS {
        let product = NewProduct {
            name: name.to_owned(),
            description: description.to_owned(),
            category: Category::parse(category)?,
            price: Money::new(cents, Currency::USD),
        };
        let id = create_once(catalog, &ctx, product).await?;
        let count = StockCount::new(stock).ok_or_else(|| anyhow::anyhow!("bad demo stock"))?;
        let mut tries = 0;
        // Setting stock is idempotent: it can simply be tried again.
        loop {
            tries += 1;
            match inventory.set_stock(&ctx, id, count).await {
                Ok(_) => break,
                Err(e) if transient(e.kind()) && tries < SEED_TRIES => pause(tries).await,
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(DEMO_PRODUCTS.len())
}

/// Creates `product` once, even when a try timed out: a create that timed out may have
/// happened, so the catalog is searched for it before the next try.
async fn create_once(
    catalog: &CatalogClient,
    ctx: &RequestContext,
    product: NewProduct,
) -> anyhow::Result<ProductId> {
    let mut tries = 0;
    loop {
        tries += 1;
        match catalog.create(ctx, product.clone()).await {
            Ok(created) => return Ok(created.id),
            Err(e) if transient(e.kind()) && tries < SEED_TRIES => {}
            Err(e) => return Err(e.into()),
        }
        // Until the catalog answers whether the product is there, no new create.
        loop {
            pause(tries).await;
            let query = ProductQuery {
                text: Some(product.name.to_lowercase()),
                category: Some(product.category.clone()),
                ..ProductQuery::default()
            };
            match catalog.list(ctx, query).await {
                Ok(page) => match page.items.iter().find(|p| p.name == product.name) {
                    Some(found) => return Ok(found.id),
                    None => break,
                },
                Err(e) if transient(e.kind()) && tries < SEED_TRIES => tries += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

fn transient(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::Timeout | ErrorKind::Unavailable)
}

async fn pause(tries: u32) {
    tokio::time::sleep(Duration::from_millis(200 * u64::from(tries))).await;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use catalog_api::{
        CatalogError, CatalogService, FakeCatalog, PriceQuote, Product, ProductPatch,
    };
    use inventory_api::{MockInventoryService, StockLevel};
    use kernel::Page;

    use super::*;

    /// A catalog whose first `create`s time out after doing their work, and whose first
    /// `list` fails: what a busy machine looks like to the caller.
    struct Slow {
        inner: FakeCatalog,
        creates_timing_out: AtomicU32,
        lists_failing: AtomicU32,
    }

    fn take(n: &AtomicU32) -> bool {
        n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1)).is_ok()
    }

    #[async_trait::async_trait]
    impl CatalogService for Slow {
        async fn list(
            &self,
            ctx: &RequestContext,
            q: ProductQuery,
        ) -> Result<Page<Product, ProductId>, CatalogError> {
            if take(&self.lists_failing) {
                return Err(CatalogError::Unavailable);
            }
            self.inner.list(ctx, q).await
        }
        async fn get(&self, ctx: &RequestContext, id: ProductId) -> Result<Product, CatalogError> {
            self.inner.get(ctx, id).await
        }
        async fn create(
            &self,
            ctx: &RequestContext,
            new: NewProduct,
        ) -> Result<Product, CatalogError> {
            let created = self.inner.create(ctx, new).await?;
            if take(&self.creates_timing_out) { Err(CatalogError::Timeout) } else { Ok(created) }
        }
        async fn update(
            &self,
            ctx: &RequestContext,
            id: ProductId,
            patch: ProductPatch,
        ) -> Result<Product, CatalogError> {
            self.inner.update(ctx, id, patch).await
        }
        async fn quote(
            &self,
            ctx: &RequestContext,
            ids: Vec<ProductId>,
        ) -> Result<Vec<PriceQuote>, CatalogError> {
            self.inner.quote(ctx, ids).await
        }
    }

    /// Creates that time out (but happened) and a failing search make no duplicate: every
    /// demo product is there once, with its stock set.
    #[tokio::test(start_paused = true)]
    async fn a_slow_catalog_is_seeded_once() {
        let slow = Arc::new(Slow {
            inner: FakeCatalog::default(),
            creates_timing_out: AtomicU32::new(3),
            lists_failing: AtomicU32::new(1),
        });
        let catalog = CatalogClient::from_arc(slow.clone());
        let mut inventory = MockInventoryService::new();
        inventory.expect_set_stock().times(DEMO_PRODUCTS.len()).returning(|_, id, count| {
            Ok(StockLevel { product_id: id, available: count.get(), reserved: 0 })
        });
        let inventory = InventoryClient::local(inventory);
        assert_eq!(seed_demo_catalog(&catalog, &inventory).await.unwrap(), DEMO_PRODUCTS.len());
        let ctx = RequestContext::system();
        let query =
            ProductQuery { limit: kernel::Limit::new(Some(100)).unwrap(), ..Default::default() };
        let names: Vec<String> =
            slow.list(&ctx, query).await.unwrap().items.into_iter().map(|p| p.name).collect();
        assert_eq!(names.len(), DEMO_PRODUCTS.len(), "{names:?}");
        for (_, name, ..) in DEMO_PRODUCTS {
            assert_eq!(names.iter().filter(|n| n == name).count(), 1, "{name}");
        }
    }
}
