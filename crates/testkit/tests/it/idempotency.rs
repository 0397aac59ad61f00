//! `POST /api/v1/orders` and its Idempotency-Key, including under concurrency, and the
//! stock invariant when many shoppers race for little stock.

use std::sync::Arc;

use serde_json::Value;
use testkit::{StatusCode, TestApp, TestUser};
use tokio::task::JoinSet;

async fn order_count(app: &TestApp, user: &TestUser) -> usize {
    let page: Value = app
        .get("/api/v1/orders?limit=100")
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn one_key_is_one_order() {
    let app = crate::spawn().await;
    let product = app.any_product_id().await;
    let user = app.register_login().await;
    app.add_to_cart(&user, &product, 1).await;

    // No key, a bad key, a bad token, an empty body: 400 and no order.
    let res = app
        .post("/api/v1/orders")
        .bearer_auth(&user.token)
        .json(&serde_json::json!({"payment_token": "tok_visa"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(testkit::error_code(res).await, "idempotency_key_required");
    let res = app.place_order(&user, "tok_visa", "has space").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    for token in ["tok_mastercard", "", "4242424242424242"] {
        let res = app.place_order(&user, token, "k-bad-token").await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{token}");
        assert_eq!(testkit::error_code(res).await, "invalid_input");
    }
    assert_eq!(order_count(&app, &user).await, 0);

    let first = app.place_order(&user, "tok_visa", "k-1").await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let again = app.place_order(&user, "tok_visa", "k-1").await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first, "the same answer, byte for byte");
    assert_eq!(order_count(&app, &user).await, 1);

    // The same key with another body is refused; nothing new is created.
    let other = app.place_order(&user, "tok_chargeDeclined", "k-1").await;
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(testkit::error_code(other).await, "idempotency_key_reused");
    assert_eq!(order_count(&app, &user).await, 1);

    // Keys are per user: another user's "k-1" is their own first order.
    let other_user = app.register_login().await;
    app.add_to_cart(&other_user, &product, 1).await;
    let theirs: Value = app.place_order(&other_user, "tok_visa", "k-1").await.json().await.unwrap();
    assert_ne!(theirs["id"], first["id"]);

    // Once confirmed the cart is empty: a new key has nothing to order.
    let id = first["id"].as_str().unwrap();
    assert_eq!(app.await_order(&user, id).await["status"], "confirmed");
    app.await_settled().await;
    let res = app.place_order(&user, "tok_visa", "k-2").await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(testkit::error_code(res).await, "cart_empty");
}

#[tokio::test]
async fn twenty_concurrent_requests_with_one_key_make_one_order_and_one_capture() {
    let app = Arc::new(crate::spawn().await);
    let product = app.any_product_id().await;
    let user = app.register_login().await;
    app.add_to_cart(&user, &product, 1).await;

    let mut set = JoinSet::new();
    for _ in 0..20 {
        let (app, user) = (app.clone(), user.clone());
        set.spawn(async move {
            let res = app.place_order(&user, "tok_visa", "same-key").await;
            let status = res.status();
            let body: Value = res.json().await.unwrap();
            (status, body)
        });
    }
    let mut ids = std::collections::HashSet::new();
    while let Some(done) = set.join_next().await {
        let (status, body) = done.unwrap();
        match status {
            StatusCode::ACCEPTED => {
                ids.insert(body["id"].as_str().unwrap().to_owned());
            }
            StatusCode::CONFLICT => assert_eq!(body["error"]["code"], "idempotency_key_in_use"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ids.len(), 1, "every accepted answer names the same order");
    assert_eq!(order_count(&app, &user).await, 1);
    let id = ids.into_iter().next().unwrap();
    assert_eq!(app.await_order(&user, &id).await["status"], "confirmed");
    assert_eq!(app.audit().await.captures(&id).await, 1);
}

#[tokio::test]
async fn fifty_shoppers_for_ten_units_make_ten_sales() {
    let app = Arc::new(crate::spawn().await);
    let admin = app.admin_token().await;
    let product = app.any_product_id().await;
    app.set_stock(&admin, &product, 10).await;

    let mut set = JoinSet::new();
    for _ in 0..50 {
        let app = app.clone();
        set.spawn(async move { app.register_login().await });
    }
    let mut users = Vec::new();
    while let Some(u) = set.join_next().await {
        users.push(u.unwrap());
    }
    for u in &users {
        app.add_to_cart(u, &product, 1).await;
    }

    // Everyone checks out at once.
    let mut set = JoinSet::new();
    for u in users {
        let app = app.clone();
        set.spawn(async move {
            let id = app.checkout(&u, "tok_visa").await;
            let order = app.await_order(&u, &id).await;
            (id, order)
        });
    }
    let (mut confirmed, mut out_of_stock) = (Vec::new(), 0);
    while let Some(done) = set.join_next().await {
        let (id, order) = done.unwrap();
        match (order["status"].as_str(), order["cancel_reason"].as_str()) {
            (Some("confirmed"), None) => confirmed.push(id),
            (Some("cancelled"), Some("out_of_stock")) => out_of_stock += 1,
            other => panic!("unexpected outcome {other:?}: {order}"),
        }
    }
    assert_eq!(confirmed.len(), 10);
    assert_eq!(out_of_stock, 40);

    app.await_settled().await;
    let audit = app.audit().await;
    let row = audit.stock(&product).await;
    assert_eq!((row.available, row.reserved, row.sold), (0, 0, 10), "{row:?}");
    assert_eq!(row.available + row.reserved + row.sold, row.adjusted);
    for id in &confirmed {
        assert_eq!(audit.captures(id).await, 1);
    }
}
