//! The checkout saga end to end: purchase, decline, out of stock, deadline, redelivery,
//! and what each user may see.

use std::time::Duration;

use serde_json::Value;
use testkit::{FetchJson as _, StatusCode, TestApp, TestUser};

fn steps(order: &Value) -> Vec<String> {
    order["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["step"].as_str().unwrap().to_owned())
        .collect()
}

async fn payments(app: &TestApp, user: &TestUser, order: &str) -> (StatusCode, Value) {
    let res = app
        .get("/api/v1/payments")
        .query(&[("order_id", order)])
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

async fn notifications(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let page: Value = app.get("/api/v1/notifications").bearer_auth(&user.token).fetch_json().await;
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_purchase_with_tok_visa_is_confirmed() {
    let app = crate::spawn().await;
    let (user, product) = app.shopper(5, 2).await;
    let cart: Value = app.get("/api/v1/cart").bearer_auth(&user.token).fetch_json().await;

    let res = app.place_order(&user, "tok_visa", "key-1").await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let placed: Value = res.json().await.unwrap();
    assert_eq!(placed["status"], "pending");
    assert_eq!(placed["total"], cart["total"], "priced like the cart");
    let id = placed["id"].as_str().unwrap();
    assert_eq!(location, format!("/api/v1/orders/{id}"));

    let order = app.await_order(&user, id).await;
    assert_eq!(order["status"], "confirmed", "{order}");
    assert!(order.get("cancel_reason").is_none());
    assert_eq!(steps(&order), ["placed", "stock_reserved", "payment_captured"]);
    assert_eq!(order["items"][0]["quantity"], 2);

    app.await_settled().await;
    let stock = app.stock(&product).await;
    assert_eq!((stock["available"].as_i64(), stock["reserved"].as_i64()), (Some(3), Some(0)));
    let cart: Value = app.get("/api/v1/cart").bearer_auth(&user.token).fetch_json().await;
    assert_eq!(cart["items"].as_array().unwrap().len(), 0, "cart emptied: {cart}");

    let (status, paid) = payments(&app, &user, id).await;
    assert_eq!(status, StatusCode::OK);
    let items = paid["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "captured");
    assert_eq!(items[0]["amount"], order["total"]);

    let notes = notifications(&app, &user).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["kind"], "order_confirmed");
    assert_eq!(notes[0]["order_id"], id);

    let audit = app.audit().await;
    assert_eq!(audit.captures(id).await, 1);
    let row = audit.stock(&product).await;
    assert_eq!((row.available, row.reserved, row.sold), (3, 0, 2));
    assert_eq!(row.available + row.reserved + row.sold, row.adjusted);
}

#[tokio::test]
async fn a_declined_card_cancels_and_gives_the_stock_back() {
    let app = crate::spawn().await;
    let (user, product) = app.shopper(5, 2).await;
    let id = app.checkout(&user, "tok_chargeDeclined").await;
    let order = app.await_order(&user, &id).await;
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["cancel_reason"], "payment_declined");
    assert_eq!(steps(&order), ["placed", "stock_reserved", "payment_declined"]);
    app.await_settled().await;

    let stock = app.stock(&product).await;
    assert_eq!((stock["available"].as_i64(), stock["reserved"].as_i64()), (Some(5), Some(0)));
    let (_, paid) = payments(&app, &user, &id).await;
    assert_eq!(paid["items"][0]["status"], "declined");
    assert_eq!(paid["items"][0]["decline_reason"], "card_declined");
    let notes = notifications(&app, &user).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["kind"], "order_cancelled");
    let cart: Value = app.get("/api/v1/cart").bearer_auth(&user.token).fetch_json().await;
    assert_eq!(cart["items"].as_array().unwrap().len(), 1, "a failed order keeps the cart");
    assert_eq!(app.audit().await.captures(&id).await, 0);
}

#[tokio::test]
async fn more_than_in_stock_is_cancelled_out_of_stock() {
    let app = crate::spawn().await;
    let (user, product) = app.shopper(3, 4).await;
    let id = app.checkout(&user, "tok_visa").await;
    let order = app.await_order(&user, &id).await;
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["cancel_reason"], "out_of_stock");
    assert_eq!(steps(&order), ["placed", "out_of_stock"]);
    app.await_settled().await;

    let row = app.audit().await.stock(&product).await;
    assert_eq!((row.available, row.reserved, row.sold), (3, 0, 0), "nothing stays reserved");
    let (status, _) = payments(&app, &user, &id).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no payment was attempted");
    let notes = notifications(&app, &user).await;
    assert_eq!(notes[0]["kind"], "order_cancelled");
}

/// The sweeper, not payments, cancels an order whose checkout outlives its deadline:
/// payments hangs (an injected fault), so it has recorded nothing when the order is
/// cancelled; once it comes back, it declines the stale request, and no money moves.
#[tokio::test]
async fn the_sweeper_cancels_an_order_past_its_deadline_and_releases_stock() {
    let app = crate::spawn_with(|c| {
        c.orders.saga_deadline = Duration::from_millis(300);
        c.orders.sweep_every = Duration::from_millis(20);
    })
    .await;
    let admin = app.admin_token().await;
    let (user, product) = app.shopper(5, 1).await;
    let hang = serde_json::json!({"target": "payments", "kind": "hang", "duration_s": 60});
    app.inject_fault(&admin, hang).await;
    app.until_hung(|| app.get("/api/v1/payments").bearer_auth(&user.token)).await;

    let id = app.checkout(&user, "tok_visa").await;
    let order = app.await_order(&user, &id).await;
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["cancel_reason"], "deadline_exceeded");
    let audit = app.audit().await;
    assert_eq!(audit.payment(&id).await, None, "payments, hung, had recorded nothing");
    audit.close().await;

    app.clear_faults(&admin).await;
    app.await_settled().await;
    let (status, body) = payments(&app, &user, &id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"][0]["decline_reason"], "expired", "{body}");
    let order: Value =
        app.get(&format!("/api/v1/orders/{id}")).bearer_auth(&user.token).fetch_json().await;
    assert_eq!(order["cancel_reason"], "deadline_exceeded", "the late decline changes nothing");
    let audit = app.audit().await;
    assert_eq!(audit.captures(&id).await, 0, "no charge after the deadline");
    let row = audit.stock(&product).await;
    assert_eq!((row.available, row.reserved, row.sold), (5, 0, 0));
}

#[tokio::test]
async fn every_event_delivered_again_changes_nothing() {
    let app = crate::spawn().await;
    let (user, product) = app.shopper(5, 1).await;
    let confirmed = app.checkout(&user, "tok_visa").await;
    app.await_order(&user, &confirmed).await;
    app.add_to_cart(&user, &product, 1).await;
    let declined = app.checkout(&user, "tok_chargeDeclined").await;
    app.await_order(&user, &declined).await;
    app.await_settled().await;

    let before_orders: Value =
        app.get("/api/v1/orders").bearer_auth(&user.token).fetch_json().await;
    let before_notes = notifications(&app, &user).await;
    let before_cart: Value = app.get("/api/v1/cart").bearer_auth(&user.token).fetch_json().await;
    assert_eq!(before_cart["items"].as_array().unwrap().len(), 1, "the declined order's line");
    let audit = app.audit().await;
    let before_stock = audit.stock(&product).await;

    // Force a second delivery of every stored event to every subscriber (what a lost
    // acknowledgement looks like), through the operator's replay endpoint.
    let admin = app.admin_token().await;
    let deliveries = audit.deliveries().await;
    assert!(deliveries.len() >= 12, "the two sagas published their events: {deliveries:?}");
    for (subscriber, event) in &deliveries {
        let res = app
            .post(&format!("/api/v1/system/dead-letters/{subscriber}/{event}/replay"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    }
    app.await_settled().await;

    let after_orders: Value = app.get("/api/v1/orders").bearer_auth(&user.token).fetch_json().await;
    assert_eq!(after_orders, before_orders, "no order changed, no history step was added");
    assert_eq!(notifications(&app, &user).await, before_notes, "no second notification");
    let cart: Value = app.get("/api/v1/cart").bearer_auth(&user.token).fetch_json().await;
    assert_eq!(cart, before_cart, "a replayed confirmation does not empty the cart again");
    assert_eq!(audit.stock(&product).await, before_stock);
    assert_eq!(audit.captures(&confirmed).await, 1);
    assert_eq!(audit.captures(&declined).await, 0);
    let dead: Value = app.get("/api/v1/system/dead-letters").bearer_auth(&admin).fetch_json().await;
    assert_eq!(dead["items"].as_array().unwrap().len(), 0, "{dead}");
}

#[tokio::test]
async fn users_only_ever_see_their_own_orders_payments_and_notifications() {
    let app = crate::spawn().await;
    let (alice, _) = app.shopper(5, 1).await;
    let bob = app.register_login().await;
    let id = app.checkout(&alice, "tok_visa").await;
    app.await_order(&alice, &id).await;
    app.await_settled().await;

    let res =
        app.get(&format!("/api/v1/orders/{id}")).bearer_auth(&bob.token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(testkit::error_code(res).await, "order_not_found");
    let (status, _) = payments(&app, &bob, &id).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let bobs: Value = app.get("/api/v1/orders").bearer_auth(&bob.token).fetch_json().await;
    assert_eq!(bobs["items"].as_array().unwrap().len(), 0);
    let bobs: Value = app.get("/api/v1/payments").bearer_auth(&bob.token).fetch_json().await;
    assert_eq!(bobs["items"].as_array().unwrap().len(), 0);
    assert!(notifications(&app, &bob).await.is_empty());

    // Nothing lets Bob change Alice's order; the order routes take no writes by id.
    for method in [reqwest::Method::PUT, reqwest::Method::PATCH, reqwest::Method::DELETE] {
        let res = app
            .http
            .request(method, app.url(&format!("/api/v1/orders/{id}")))
            .bearer_auth(&bob.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
    // Anonymous callers get nothing at all.
    for path in ["/api/v1/orders", "/api/v1/payments", "/api/v1/notifications"] {
        assert_eq!(app.get(path).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    let order = app.await_order(&alice, &id).await;
    assert_eq!(order["status"], "confirmed");
    assert_eq!(notifications(&app, &alice).await.len(), 1);
}

#[tokio::test]
async fn orders_list_newest_first_with_paging() {
    let app = crate::spawn().await;
    let (user, product) = app.shopper(50, 1).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        app.add_to_cart(&user, &product, 1).await;
        ids.push(app.checkout(&user, "tok_chargeDeclined").await);
    }
    let first: Value =
        app.get("/api/v1/orders?limit=2").bearer_auth(&user.token).fetch_json().await;
    let items = first["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], ids[2].as_str());
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .get("/api/v1/orders")
        .query(&[("limit", "2"), ("cursor", cursor)])
        .bearer_auth(&user.token)
        .fetch_json()
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["items"][0]["id"], ids[0].as_str());
    assert_eq!(rest["next_cursor"], Value::Null, "the last page says so: {rest}");
    assert!(rest.as_object().unwrap().contains_key("next_cursor"), "always present");
}

#[tokio::test]
async fn a_line_set_after_placing_the_order_stays_in_the_cart() {
    let app = crate::spawn().await;
    let (user, product) = app.shopper(10, 1).await;
    let id = app.checkout(&user, "tok_visa").await;
    // The user wants more of it: set while the saga runs (or just after it finished).
    app.add_to_cart(&user, &product, 3).await;
    assert_eq!(app.await_order(&user, &id).await["status"], "confirmed");
    app.await_settled().await;
    let cart: Value = app.get("/api/v1/cart").bearer_auth(&user.token).fetch_json().await;
    assert_eq!(cart["items"].as_array().unwrap().len(), 1, "{cart}");
    assert_eq!(cart["items"][0]["quantity"], 3);
}
