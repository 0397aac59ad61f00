//! The contract's rules as a test suite any implementation (local or remote) must pass.
//! `product` must be a product the implementation's catalog knows.

use kernel::{Principal, ProductId, RequestContext, Role, UserId};

use crate::{CartClient, CartError, CartQuantity};

fn customer() -> (UserId, RequestContext) {
    let id = UserId::new();
    (id, RequestContext::for_user(Principal { user_id: id, roles: vec![Role::Customer] }))
}

pub async fn run(client: &CartClient, product: ProductId) {
    let (me, ctx) = customer();
    let two = CartQuantity::new(2).expect("quantity");
    assert!(client.get(&ctx, me).await.expect("empty cart").items.is_empty());

    let cart = client.set_item(&ctx, me, product, two).await.expect("set item");
    assert_eq!(cart.items.len(), 1);
    assert_eq!(cart.items[0].quantity, 2);
    assert_eq!(cart.total.amount, cart.items[0].unit_price.amount * 2);
    assert_eq!(client.get(&ctx, me).await.expect("get"), cart);

    assert_eq!(
        client.set_item(&ctx, me, ProductId::new(), two).await.unwrap_err(),
        CartError::ProductNotFound
    );
    // Another user's cart is out of reach.
    let (_, other) = customer();
    assert_eq!(client.get(&other, me).await.unwrap_err(), CartError::Forbidden);
    assert_eq!(
        client.get(&RequestContext::anonymous(), me).await.unwrap_err(),
        CartError::Unauthenticated
    );

    assert!(client.remove_item(&ctx, me, product).await.expect("remove").items.is_empty());
    client.set_item(&ctx, me, product, two).await.expect("set again");
    client.clear(&ctx, me).await.expect("clear");
    assert!(client.get(&ctx, me).await.expect("cleared").items.is_empty());
}
