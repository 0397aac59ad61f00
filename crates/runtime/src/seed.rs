use catalog_api::{CatalogClient, Category, NewProduct};
use inventory_api::{InventoryClient, StockCount};
use kernel::{Currency, Money, RequestContext};

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
        let created = catalog.create(&ctx, product).await?;
        let count = StockCount::new(stock).ok_or_else(|| anyhow::anyhow!("bad demo stock"))?;
        inventory.set_stock(&ctx, created.id, count).await?;
    }
    Ok(DEMO_PRODUCTS.len())
}
