use serde_json::{Value, json};
use testkit::{FetchJson as _, StatusCode, TestApp};

#[tokio::test]
async fn data_and_tokens_survive_a_restart() {
    let app = TestApp::spawn().await;
    let user = app.register_login().await;
    let admin = app.admin_token().await;
    let product = app.any_product_id().await;
    app.put(&format!("/api/v1/cart/items/{product}"))
        .bearer_auth(&user.token)
        .json(&json!({"quantity": 4}))
        .send()
        .await
        .unwrap();
    let res = app
        .post("/api/v1/products")
        .bearer_auth(&admin)
        .json(&json!({"name": "Restart Roast", "category": "coffee", "price": {"amount": 999, "currency": "USD"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    app.put(&format!("/api/v1/inventory/{product}"))
        .bearer_auth(&admin)
        .json(&json!({"available": 3}))
        .send()
        .await
        .unwrap();
    let products_before = app.all_products().await;
    let cart_before: Value = app.get("/api/v1/cart").bearer_auth(&user.token).fetch_json().await;

    let app = app.restart().await;

    // The old token still verifies (same signing key), and everything is there.
    let res = app.get("/api/v1/me").bearer_auth(&user.token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cart_after: Value = app.get("/api/v1/cart").bearer_auth(&user.token).fetch_json().await;
    assert_eq!(cart_before, cart_after);
    assert_eq!(products_before, app.all_products().await, "no reseeding, nothing lost");
    let stock: Value = app.get(&format!("/api/v1/inventory/{product}")).fetch_json().await;
    assert_eq!(stock["available"], 3);
    // The user can still log in; the admin token from before still works.
    app.login(&user.email, &user.password).await;
    let res = app
        .put(&format!("/api/v1/inventory/{product}"))
        .bearer_auth(&admin)
        .json(&json!({"available": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}
