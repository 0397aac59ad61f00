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

/// A cancellation that overtakes its order's placement (the deadline passed while inventory
/// was behind) leaves a tombstone: the late `order_placed` holds nothing and answers
/// nothing, so no stock stays reserved for an order that no longer exists.
#[tokio::test]
async fn a_cancellation_that_overtakes_the_placement_holds_nothing() {
    use bus::{Envelope, Handler as _, TraceContext};
    use orders_api::events::{OrderCancelled, OrderLine, OrderPlaced};
    let dir = tempfile::tempdir().unwrap();
    let db = store::Db::open_sqlite(&dir.path().join("inventory.db")).await.unwrap();
    let id = ProductId::new();
    let inventory = Inventory::new(db, CatalogClient::fake(vec![product(id)])).await.unwrap();
    let sys = kernel::RequestContext::system();
    let client = InventoryClient::from_arc(inventory.clone());
    client.set_stock(&sys, id, inventory_api::StockCount::new(5).unwrap()).await.unwrap();

    let (order_id, user_id) = (kernel::OrderId::new(), kernel::UserId::new());
    let reason = orders_api::CancelReason::DeadlineExceeded;
    let cancelled = OrderCancelled { order_id, user_id, reason };
    inventory.handle(&Envelope::new("orders", &cancelled, TraceContext::default())).await.unwrap();
    let line = OrderLine { product_id: id, quantity: kernel::Quantity::new(2).unwrap() };
    let placed =
        OrderPlaced { order_id, user_id, lines: vec![line], total: Money::new(200, Currency::USD) };
    inventory.handle(&Envelope::new("orders", &placed, TraceContext::default())).await.unwrap();

    let level = client.stock(&sys, id).await.unwrap();
    assert_eq!((level.available, level.reserved), (5, 0), "{level:?}");
    assert_eq!(inventory.outbox().pending().await.unwrap(), 0, "no stock_reserved for it");
}
