//! The contract's rules as a test suite any implementation (local or remote) must pass.
//! `shopper` must have a non-empty cart; `empty` an empty one.

use kernel::{IdempotencyKey, Limit, OrderId, Principal, RequestContext, Role, UserId};
use payments_api::PaymentToken;

use crate::{OrderStatus, OrdersClient, OrdersError};

fn ctx(user_id: UserId) -> RequestContext {
    RequestContext::for_user(Principal { user_id, roles: vec![Role::Customer] })
}

pub async fn run(client: &OrdersClient, shopper: UserId, empty: UserId) {
    let key = IdempotencyKey::parse(&OrderId::new().to_string()).expect("key");
    assert_eq!(
        client.place(&ctx(empty), key.clone(), PaymentToken::Visa).await.unwrap_err(),
        OrdersError::CartEmpty
    );
    assert_eq!(
        client
            .place(&RequestContext::anonymous(), key.clone(), PaymentToken::Visa)
            .await
            .unwrap_err(),
        OrdersError::Unauthenticated
    );

    let placed = client.place(&ctx(shopper), key.clone(), PaymentToken::Visa).await.expect("place");
    assert!(!placed.replayed);
    assert_eq!(placed.order.status, OrderStatus::Pending);
    let again = client.place(&ctx(shopper), key.clone(), PaymentToken::Visa).await.expect("replay");
    assert!(again.replayed);
    assert_eq!(again.order.id, placed.order.id);
    assert_eq!(
        client.place(&ctx(shopper), key, PaymentToken::ChargeDeclined).await.unwrap_err(),
        OrdersError::IdempotencyKeyReused
    );

    let id = placed.order.id;
    assert_eq!(client.get(&ctx(shopper), id).await.expect("get").id, id);
    assert_eq!(client.get(&ctx(empty), id).await.unwrap_err(), OrdersError::OrderNotFound);
    let mine = client.list(&ctx(shopper), Limit::default(), None).await.expect("list");
    assert!(mine.items.iter().any(|o| o.id == id));
    let theirs = client.list(&ctx(empty), Limit::default(), None).await.expect("list");
    assert!(theirs.items.is_empty());
}
