//! Bad input of every kind: a 4xx in the JSON error shape, never a 5xx, and nothing changes.

use serde_json::{Value, json};
use testkit::{FetchJson as _, TestApp};

async fn snapshot(app: &TestApp, token: &str, admin: &str) -> Value {
    let cart: Value = app.get("/api/v1/cart").bearer_auth(token).fetch_json().await;
    let me: Value = app.get("/api/v1/me").bearer_auth(token).fetch_json().await;
    let products = app.all_products().await;
    let mut stock = Vec::new();
    for p in &products {
        let id = p["id"].as_str().unwrap();
        let s: Value =
            app.get(&format!("/api/v1/inventory/{id}")).bearer_auth(admin).fetch_json().await;
        stock.push(s);
    }
    let orders: Value = app.get("/api/v1/orders").bearer_auth(token).fetch_json().await;
    let payments: Value = app.get("/api/v1/payments").bearer_auth(token).fetch_json().await;
    json!({"cart": cart, "me": me, "products": products, "stock": stock, "orders": orders,
        "payments": payments})
}

/// The one right status for each case below: 404 for what does not exist, 413 over the
/// body limit, 403/405 as HTTP says, 401 for a login that fails (whatever the reason, so
/// that it tells nothing), and 400 for everything that cannot be read as valid input.
fn expected(case: &str) -> u16 {
    match case {
        "unknown product in cart"
        | "unknown product stock"
        | "patch unknown product"
        | "stock unknown product"
        | "unknown order"
        | "payments unknown order"
        | "replay unknown event"
        | "no such route" => 404,
        "body over the limit" | "body over the limit, register" => 413,
        "login 10 kB password" => 401,
        "dead letters as a customer" => 403,
        "method not allowed" => 405,
        _ => 400,
    }
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_changes_nothing() {
    let app = crate::spawn().await;
    let user = app.register_login().await;
    let admin = app.admin_token().await;
    let product = app.any_product_id().await;
    // Something in the cart, so that "nothing changed" means something.
    app.put(&format!("/api/v1/cart/items/{product}"))
        .bearer_auth(&user.token)
        .json(&json!({"quantity": 2}))
        .send()
        .await
        .unwrap();
    let before = snapshot(&app, &user.token, &admin).await;

    let huge = "x".repeat(10 * 1024);
    let over_limit = "y".repeat(200 * 1024);
    let unknown = uuid::Uuid::now_v7().to_string();
    let cart_item = format!("/api/v1/cart/items/{product}");
    let product_path = format!("/api/v1/products/{product}");
    let stock_path = format!("/api/v1/inventory/{product}");
    let u = Some(user.token.as_str());
    let a = Some(admin.as_str());

    // (what, method, path, token, body as raw text)
    let cases: Vec<(&str, &str, String, Option<&str>, String)> = vec![
        ("malformed json", "PUT", cart_item.clone(), u, "{\"quantity\":".into()),
        ("not json at all", "PUT", cart_item.clone(), u, "quantity=1".into()),
        ("wrong type", "PUT", cart_item.clone(), u, r#"{"quantity":"two"}"#.into()),
        ("null quantity", "PUT", cart_item.clone(), u, r#"{"quantity":null}"#.into()),
        ("array body", "PUT", cart_item.clone(), u, "[1,2]".into()),
        ("price on a cart line", "PUT", cart_item.clone(), u, r#"{"quantity":1,"price":1}"#.into()),
        ("unit_price on a cart line", "PUT", cart_item.clone(), u,
            r#"{"quantity":1,"unit_price":{"amount":1,"currency":"USD"}}"#.into()),
        ("user_id on a cart line", "PUT", cart_item.clone(), u, r#"{"quantity":1,"user_id":"x"}"#.into()),
        ("zero quantity", "PUT", cart_item.clone(), u, r#"{"quantity":0}"#.into()),
        ("negative quantity", "PUT", cart_item.clone(), u, r#"{"quantity":-3}"#.into()),
        ("huge quantity", "PUT", cart_item.clone(), u, r#"{"quantity":1000000000000}"#.into()),
        ("beyond i64", "PUT", cart_item.clone(), u, r#"{"quantity":99999999999999999999999}"#.into()),
        ("fractional quantity", "PUT", cart_item.clone(), u, r#"{"quantity":1.5}"#.into()),
        ("bad uuid in cart", "PUT", "/api/v1/cart/items/not-a-uuid".into(), u, r#"{"quantity":1}"#.into()),
        ("unknown product in cart", "PUT", format!("/api/v1/cart/items/{unknown}"), u, r#"{"quantity":1}"#.into()),
        ("bad uuid product", "GET", "/api/v1/products/123".into(), None, String::new()),
        ("bad uuid stock", "GET", "/api/v1/inventory/zzz".into(), None, String::new()),
        ("unknown product stock", "GET", format!("/api/v1/inventory/{unknown}"), None, String::new()),
        ("bad limit", "GET", "/api/v1/products?limit=-1".into(), None, String::new()),
        ("zero limit", "GET", "/api/v1/products?limit=0".into(), None, String::new()),
        ("bad cursor", "GET", "/api/v1/products?cursor=%21%21%21".into(), None, String::new()),
        ("bad category", "GET", "/api/v1/products?category=Not%20A%20Slug".into(), None, String::new()),
        ("huge search", "GET", format!("/api/v1/products?q={}", "a".repeat(5000)), None, String::new()),
        ("unknown query param", "GET", "/api/v1/products?sort=price".into(), None, String::new()),
        ("register with role", "POST", "/api/v1/auth/register".into(), None,
            r#"{"email":"mallory@test.example","password":"long-enough-pw","name":"M","role":"admin"}"#.into()),
        ("register with id", "POST", "/api/v1/auth/register".into(), None,
            format!(r#"{{"email":"mallory@test.example","password":"long-enough-pw","name":"M","id":"{unknown}"}}"#)),
        ("register short password", "POST", "/api/v1/auth/register".into(), None,
            r#"{"email":"mallory@test.example","password":"short","name":"M"}"#.into()),
        ("register bad email", "POST", "/api/v1/auth/register".into(), None,
            r#"{"email":"mallory","password":"long-enough-pw","name":"M"}"#.into()),
        ("register 10 kB name", "POST", "/api/v1/auth/register".into(), None,
            format!(r#"{{"email":"mallory@test.example","password":"long-enough-pw","name":"{huge}"}}"#)),
        ("register 10 kB email", "POST", "/api/v1/auth/register".into(), None,
            format!(r#"{{"email":"{huge}@x.com","password":"long-enough-pw","name":"M"}}"#)),
        ("register 10 kB password", "POST", "/api/v1/auth/register".into(), None,
            format!(r#"{{"email":"mallory@test.example","password":"{huge}","name":"M"}}"#)),
        ("login 10 kB password", "POST", "/api/v1/auth/login".into(), None,
            format!(r#"{{"email":"{}","password":"{huge}"}}"#, user.email)),
        ("product 10 kB name", "POST", "/api/v1/products".into(), a,
            format!(r#"{{"name":"{huge}","category":"tea","price":{{"amount":1,"currency":"USD"}}}}"#)),
        ("product negative price", "POST", "/api/v1/products".into(), a,
            r#"{"name":"n","category":"tea","price":{"amount":-1,"currency":"USD"}}"#.into()),
        ("product float price", "POST", "/api/v1/products".into(), a,
            r#"{"name":"n","category":"tea","price":{"amount":9.99,"currency":"USD"}}"#.into()),
        ("product bad currency", "POST", "/api/v1/products".into(), a,
            r#"{"name":"n","category":"tea","price":{"amount":1,"currency":"usd"}}"#.into()),
        ("product other currency", "POST", "/api/v1/products".into(), a,
            r#"{"name":"n","category":"tea","price":{"amount":1,"currency":"EUR"}}"#.into()),
        ("product id in body", "POST", "/api/v1/products".into(), a,
            format!(r#"{{"id":"{unknown}","name":"n","category":"tea","price":{{"amount":1,"currency":"USD"}}}}"#)),
        ("patch price zero", "PATCH", product_path.clone(), a, r#"{"price":{"amount":0,"currency":"USD"}}"#.into()),
        ("patch empty name", "PATCH", product_path.clone(), a, r#"{"name":"   "}"#.into()),
        ("patch control chars", "PATCH", product_path.clone(), a, r#"{"name":"a\u0000b"}"#.into()),
        ("patch unknown product", "PATCH", format!("/api/v1/products/{unknown}"), a, r#"{"name":"x"}"#.into()),
        ("stock negative", "PUT", stock_path.clone(), a, r#"{"available":-1}"#.into()),
        ("stock huge", "PUT", stock_path.clone(), a, r#"{"available":10000000000000}"#.into()),
        ("stock reserved field", "PUT", stock_path.clone(), a, r#"{"available":1,"reserved":5}"#.into()),
        ("stock unknown product", "PUT", format!("/api/v1/inventory/{unknown}"), a, r#"{"available":1}"#.into()),
        ("body over the limit", "PUT", cart_item.clone(), u, format!(r#"{{"quantity":1,"pad":"{over_limit}"}}"#)),
        ("body over the limit, register", "POST", "/api/v1/auth/register".into(), None,
            format!(r#"{{"email":"a@b.co","password":"{over_limit}","name":"M"}}"#)),
        ("bad order id", "GET", "/api/v1/orders/not-a-uuid".into(), u, String::new()),
        ("unknown order", "GET", format!("/api/v1/orders/{unknown}"), u, String::new()),
        ("orders zero limit", "GET", "/api/v1/orders?limit=0".into(), u, String::new()),
        ("orders bad cursor", "GET", "/api/v1/orders?cursor=%21%21".into(), u, String::new()),
        ("order without a key", "POST", "/api/v1/orders".into(), u, r#"{"payment_token":"tok_visa"}"#.into()),
        ("payments bad order id", "GET", "/api/v1/payments?order_id=42".into(), u, String::new()),
        ("payments unknown order", "GET", format!("/api/v1/payments?order_id={unknown}"), u, String::new()),
        ("notifications negative limit", "GET", "/api/v1/notifications?limit=-1".into(), u, String::new()),
        ("dead letters as a customer", "GET", "/api/v1/system/dead-letters".into(), u, String::new()),
        ("dead letters huge limit", "GET", "/api/v1/system/dead-letters?limit=5000".into(), a, String::new()),
        ("replay unknown event", "POST", format!("/api/v1/system/dead-letters/orders/{unknown}/replay"), a, String::new()),
        ("method not allowed", "PATCH", "/api/v1/cart".into(), u, "{}".into()),
        ("no such route", "GET", "/api/v1/nothing".into(), None, String::new()),
    ];

    for (what, method, path, token, body) in cases {
        let mut req = app.http.request(method.parse().unwrap(), app.url(&path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if !body.is_empty() {
            req = req.header("content-type", "application/json").body(body);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        assert_eq!(status.as_u16(), expected(what), "{what}");
        testkit::error_code(res).await;
    }

    // Orders with a valid Idempotency-Key and a bad body: 400, no order.
    let order_bodies = [
        "{\"payment_token\":",
        r#"{"payment_token":42}"#,
        r#"{"payment_token":null}"#,
        r#"{"payment_token":"tok_visa","total":{"amount":1,"currency":"USD"}}"#,
        r#"{"payment_token":"tok_visa","items":[]}"#,
        r#"{"payment_token":"tok_unknown"}"#,
        r#"{}"#,
    ];
    for (i, body) in order_bodies.iter().enumerate() {
        let res = app
            .post("/api/v1/orders")
            .bearer_auth(&user.token)
            .header("idempotency-key", format!("bad-body-{i}"))
            .header("content-type", "application/json")
            .body(*body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 400, "order body {body}");
        testkit::error_code(res).await;
    }
    let res = app
        .post("/api/v1/orders")
        .bearer_auth(&user.token)
        .header("idempotency-key", "x".repeat(300))
        .json(&json!({"payment_token": "tok_visa"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400, "a 300-character key");

    // The body limit answers 413 specifically.
    let res = app
        .put(&cart_item)
        .bearer_auth(&user.token)
        .header("content-type", "application/json")
        .body(format!(r#"{{"quantity":1,"pad":"{over_limit}"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 413);
    assert_eq!(testkit::error_code(res).await, "payload_too_large");

    // A missing content type is a 415, not a crash.
    let res = app
        .put(&cart_item)
        .bearer_auth(&user.token)
        .body(r#"{"quantity":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 415);

    // Nothing changed, and the refused registrations created no account.
    let after = snapshot(&app, &user.token, &admin).await;
    assert_eq!(before, after);
    let res = app
        .post("/api/v1/auth/login")
        .json(&json!({"email": "mallory@test.example", "password": "long-enough-pw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
}

/// A request without credentials to a secured operation is a 401 whatever its body says:
/// authentication is checked before anything else (found by schemathesis'
/// `missing_required_header` check: it was a 400 for the body).
#[tokio::test]
async fn without_credentials_a_secured_operation_is_a_401_before_its_body_is_read() {
    let app = crate::spawn().await;
    let product = app.any_product_id().await;
    let bad_bodies = [
        ("/api/v1/products", json!({"price": {"amount": 0, "currency": ""}})),
        (&format!("/api/v1/cart/items/{product}") as &str, json!({"quantity": "lots"})),
    ];
    let res = app.post(bad_bodies[0].0).json(&bad_bodies[0].1).send().await.unwrap();
    assert_eq!(res.status(), testkit::StatusCode::UNAUTHORIZED);
    assert_eq!(testkit::error_code(res).await, "unauthenticated");
    let res = app.put(bad_bodies[1].0).json(&bad_bodies[1].1).send().await.unwrap();
    assert_eq!(res.status(), testkit::StatusCode::UNAUTHORIZED);
    // Where credentials are optional, a bad body is still a 400.
    let login = app.post("/api/v1/auth/login").header("content-type", "application/json");
    let res = login.body("{").send().await.unwrap();
    assert_eq!(res.status(), testkit::StatusCode::BAD_REQUEST);
}

/// JSON Schema counts `40.0` as an integer, so the server takes it as 40; `40.5` is a 400.
#[tokio::test]
async fn a_whole_number_written_with_a_fraction_is_that_number() {
    let app = crate::spawn().await;
    let user = app.register_login().await;
    let product = app.any_product_id().await;
    let set = async |quantity: Value| {
        app.put(&format!("/api/v1/cart/items/{product}"))
            .bearer_auth(&user.token)
            .json(&json!({ "quantity": quantity }))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert!(set(json!(3.0)).await.is_success());
    let cart: Value = app.get("/api/v1/cart").bearer_auth(&user.token).fetch_json().await;
    assert_eq!(cart["items"][0]["quantity"], 3);
    assert_eq!(set(json!(3.5)).await, testkit::StatusCode::BAD_REQUEST);
    assert_eq!(set(json!(1e300)).await, testkit::StatusCode::BAD_REQUEST);
}
