//! The contract's rules as a test suite any implementation must pass (local today, remote
//! later). `product_a` and `product_b` must be products the implementation accepts.

use kernel::{OrderId, ProductId, Quantity, RequestContext};

use crate::{InventoryClient, InventoryError, ReservationLine, ReservationStatus, StockCount};

fn line(product_id: ProductId, n: i64) -> ReservationLine {
    ReservationLine { product_id, quantity: Quantity::new(n).expect("test quantity") }
}

fn count(n: i64) -> StockCount {
    StockCount::new(n).expect("test stock count")
}

/// `available + reserved + sold` never changes except by restocking; checked through the
/// public `stock` only: `available + reserved` plus what the suite knows it committed.
pub async fn run(client: &InventoryClient, product_a: ProductId, product_b: ProductId) {
    let sys = RequestContext::system();
    let anon = RequestContext::anonymous();

    // Only admins set stock.
    assert_eq!(
        client.set_stock(&anon, product_a, count(1)).await.unwrap_err(),
        InventoryError::Unauthenticated
    );
    client.set_stock(&sys, product_a, count(10)).await.expect("set stock a");
    client.set_stock(&sys, product_b, count(1)).await.expect("set stock b");

    // All or nothing: b is short, so a is not held either.
    let o1 = OrderId::new();
    let r = client.reserve(&sys, o1, vec![line(product_a, 3), line(product_b, 2)]).await.unwrap();
    assert_eq!(r.status, ReservationStatus::Rejected);
    assert_eq!(r.short_product, Some(product_b));
    let a = client.stock(&sys, product_a).await.unwrap();
    assert_eq!((a.available, a.reserved), (10, 0));
    // Asking again gives the same answer, even though nothing changed in between.
    let again = client.reserve(&sys, o1, vec![line(product_a, 3)]).await.unwrap();
    assert_eq!(again.status, ReservationStatus::Rejected);

    // Reserve, idempotently; duplicate lines of one product are merged.
    let o2 = OrderId::new();
    let lines = vec![line(product_a, 2), line(product_a, 1), line(product_b, 1)];
    let r = client.reserve(&sys, o2, lines.clone()).await.unwrap();
    assert_eq!(r.status, ReservationStatus::Reserved);
    let r2 = client.reserve(&sys, o2, lines).await.unwrap();
    assert_eq!(r2.status, ReservationStatus::Reserved);
    let a = client.stock(&sys, product_a).await.unwrap();
    assert_eq!((a.available, a.reserved), (7, 3));
    let b = client.stock(&sys, product_b).await.unwrap();
    assert_eq!((b.available, b.reserved), (0, 1));

    // Commit, twice: one effect. Then it cannot be released.
    client.commit(&sys, o2).await.unwrap();
    let c = client.commit(&sys, o2).await.unwrap();
    assert_eq!(c.status, ReservationStatus::Committed);
    let a = client.stock(&sys, product_a).await.unwrap();
    assert_eq!((a.available, a.reserved), (7, 0));
    assert!(matches!(
        client.release(&sys, o2).await.unwrap_err(),
        InventoryError::ReservationConflict(_)
    ));

    // Release, twice: one effect. Then it cannot be committed.
    let o3 = OrderId::new();
    client.reserve(&sys, o3, vec![line(product_a, 5)]).await.unwrap();
    client.release(&sys, o3).await.unwrap();
    let rel = client.release(&sys, o3).await.unwrap();
    assert_eq!(rel.status, ReservationStatus::Released);
    let a = client.stock(&sys, product_a).await.unwrap();
    assert_eq!((a.available, a.reserved), (7, 0));
    assert!(matches!(
        client.commit(&sys, o3).await.unwrap_err(),
        InventoryError::ReservationConflict(_)
    ));

    // Unknown orders.
    assert_eq!(
        client.commit(&sys, OrderId::new()).await.unwrap_err(),
        InventoryError::ReservationNotFound
    );

    // Customers cannot drive reservations.
    let customer = RequestContext::for_user(kernel::Principal {
        user_id: kernel::UserId::new(),
        roles: vec![kernel::Role::Customer],
    });
    assert_eq!(
        client.reserve(&customer, OrderId::new(), vec![line(product_a, 1)]).await.unwrap_err(),
        InventoryError::Forbidden
    );

    // Restocking keeps what is reserved.
    let o4 = OrderId::new();
    client.reserve(&sys, o4, vec![line(product_a, 2)]).await.unwrap();
    let s = client.set_stock(&sys, product_a, count(100)).await.unwrap();
    assert_eq!((s.available, s.reserved), (100, 2));
}
