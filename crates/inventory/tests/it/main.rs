//! Inventory against its contract suite, with an in-memory catalog.

use catalog_api::{CatalogClient, Product};
use inventory::Inventory;
use inventory_api::InventoryClient;
use kernel::{Currency, Money, ProductId};

fn product(id: ProductId) -> Product {
    Product {
        id,
        name: "thing".into(),
        description: String::new(),
        category: "things".into(),
        price: Money::new(100, Currency::USD),
        created_at: String::new(),
        updated_at: String::new(),
    }
}

#[tokio::test]
async fn local_inventory_passes_the_contract_suite() {
    let dir = tempfile::tempdir().unwrap();
    let db = store::Db::open_sqlite(&dir.path().join("inventory.db")).await.unwrap();
    let (a, b) = (ProductId::new(), ProductId::new());
    let catalog = CatalogClient::fake(vec![product(a), product(b)]);
    let inventory = Inventory::new(db, catalog).await.unwrap();
    inventory_api::testsuite::run(&InventoryClient::from_arc(inventory), a, b).await;
}

#[tokio::test]
async fn unknown_products_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = store::Db::open_sqlite(&dir.path().join("inventory.db")).await.unwrap();
    let inventory =
        InventoryClient::from_arc(Inventory::new(db, CatalogClient::fake(vec![])).await.unwrap());
    let sys = kernel::RequestContext::system();
    let err = inventory
        .set_stock(&sys, ProductId::new(), inventory_api::StockCount::new(1).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err, inventory_api::InventoryError::ProductNotFound);
    let err = inventory.stock(&sys, ProductId::new()).await.unwrap_err();
    assert_eq!(err, inventory_api::InventoryError::ProductNotFound);
}
