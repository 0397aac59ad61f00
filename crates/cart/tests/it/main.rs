//! The cart module at contract level, with an in-memory catalog.

use cart_api::{CartClient, CartError, CartQuantity};
use catalog_api::{CatalogClient, Product};
use kernel::{Currency, Money, Principal, ProductId, RequestContext, Role, UserId};

fn product(name: &str, cents: i64) -> Product {
    Product {
        id: ProductId::new(),
        name: name.into(),
        description: String::new(),
        category: "things".into(),
        price: Money::new(cents, Currency::USD),
        created_at: String::new(),
        updated_at: String::new(),
    }
}

fn customer() -> (UserId, RequestContext) {
    let id = UserId::new();
    (id, RequestContext::for_user(Principal { user_id: id, roles: vec![Role::Customer] }))
}

async fn cart_with(products: Vec<Product>) -> (CartClient, CatalogClient, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = store::Db::open_sqlite(&dir.path().join("cart.db")).await.unwrap();
    let catalog = CatalogClient::fake(products);
    let cart = CartClient::from_arc(cart::Cart::new(db, catalog.clone()).await.unwrap());
    (cart, catalog, dir)
}

fn q(n: i64) -> CartQuantity {
    CartQuantity::new(n).unwrap()
}

#[tokio::test]
async fn totals_follow_catalog_prices_at_read_time() {
    let (a, b) = (product("a", 250), product("b", 1999));
    let (cart, catalog, _dir) = cart_with(vec![a.clone(), b.clone()]).await;
    let (me, ctx) = customer();
    cart.set_item(&ctx, me, a.id, q(2)).await.unwrap();
    let c = cart.set_item(&ctx, me, b.id, q(1)).await.unwrap();
    assert_eq!(c.total, Money::new(2 * 250 + 1999, Currency::USD));
    let c = cart.set_item(&ctx, me, a.id, q(3)).await.unwrap();
    assert_eq!(c.items.len(), 2);
    assert_eq!(c.total.amount, 3 * 250 + 1999);

    // A price change shows on the next read.
    let patch = catalog_api::ProductPatch {
        price: Some(Money::new(300, Currency::USD)),
        ..Default::default()
    };
    catalog.update(&RequestContext::system(), a.id, patch).await.unwrap();
    assert_eq!(cart.get(&ctx, me).await.unwrap().total.amount, 3 * 300 + 1999);

    let c = cart.remove_item(&ctx, me, b.id).await.unwrap();
    assert_eq!(c.total.amount, 900);
    cart.clear(&ctx, me).await.unwrap();
    let c = cart.get(&ctx, me).await.unwrap();
    assert!(c.items.is_empty());
    assert_eq!(c.total, Money::zero(Currency::USD));
}

#[tokio::test]
async fn unknown_products_and_other_users_are_refused() {
    let a = product("a", 100);
    let (cart, _catalog, _dir) = cart_with(vec![a.clone()]).await;
    let (me, ctx) = customer();
    let (other, other_ctx) = customer();
    assert_eq!(
        cart.set_item(&ctx, me, ProductId::new(), q(1)).await.unwrap_err(),
        CartError::ProductNotFound
    );
    cart.set_item(&other_ctx, other, a.id, q(5)).await.unwrap();
    assert_eq!(cart.get(&ctx, other).await.unwrap_err(), CartError::Forbidden);
    assert_eq!(cart.set_item(&ctx, other, a.id, q(1)).await.unwrap_err(), CartError::Forbidden);
    assert_eq!(cart.clear(&ctx, other).await.unwrap_err(), CartError::Forbidden);
    assert_eq!(cart.get(&other_ctx, other).await.unwrap().items[0].quantity, 5);
    assert_eq!(
        cart.get(&RequestContext::anonymous(), me).await.unwrap_err(),
        CartError::Unauthenticated
    );
}

#[tokio::test]
async fn a_cart_has_a_bounded_number_of_lines() {
    let products: Vec<Product> =
        (0..=cart::MAX_LINES).map(|i| product(&format!("p{i}"), 1)).collect();
    let (cart, _catalog, _dir) = cart_with(products.clone()).await;
    let (me, ctx) = customer();
    for p in &products[..cart::MAX_LINES] {
        cart.set_item(&ctx, me, p.id, q(1)).await.unwrap();
    }
    let last = products[cart::MAX_LINES].id;
    assert_eq!(
        cart.set_item(&ctx, me, last, q(1)).await.unwrap_err(),
        CartError::CartFull(cart::MAX_LINES)
    );
    // Changing an existing line still works when full.
    cart.set_item(&ctx, me, products[0].id, q(9)).await.unwrap();
}

#[tokio::test]
async fn catalog_down_means_cart_unavailable_not_a_crash() {
    let mut catalog = catalog_api::MockCatalogService::new();
    catalog.expect_quote().returning(|_, _| Err(catalog_api::CatalogError::Unavailable));
    catalog.expect_get().returning(|_, _| Err(catalog_api::CatalogError::Timeout));
    let dir = tempfile::tempdir().unwrap();
    let db = store::Db::open_sqlite(&dir.path().join("cart.db")).await.unwrap();
    let cart =
        CartClient::from_arc(cart::Cart::new(db, CatalogClient::local(catalog)).await.unwrap());
    let (me, ctx) = customer();
    // Cart's outage, naming catalog: the module to look at.
    let down = cart.get(&ctx, me).await.unwrap_err();
    assert_eq!(down, CartError::UpstreamUnavailable { module: "catalog".into() });
    assert_eq!(down.to_string(), "catalog is unavailable (called by cart)");
    assert_eq!(
        cart.set_item(&ctx, me, ProductId::new(), q(1)).await.unwrap_err(),
        CartError::UpstreamTimeout { module: "catalog".into() }
    );
}
