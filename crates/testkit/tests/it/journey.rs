use serde_json::{Value, json};
use testkit::{FetchJson as _, StatusCode};

#[tokio::test]
async fn register_login_me() {
    let app = crate::spawn().await;
    let user = app.register_login().await;
    let res = app.get("/api/v1/me").bearer_auth(&user.token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().contains_key("x-request-id"));
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["id"], user.id.as_str());
    assert_eq!(me["email"], user.email.as_str());
    assert_eq!(me["roles"], json!(["customer"]));
    assert!(me.get("password_hash").is_none() && me.get("password").is_none());

    // Same email again, in any letter case: answered as a new registration would be, so a
    // caller cannot tell which emails have accounts; nothing is created, and the owner is
    // told (OWASP: the detail goes to the address, not to the caller).
    let fresh = format!("fresh-{}@test.example", uuid::Uuid::new_v4().simple());
    let mut answers = Vec::new();
    for email in [user.email.to_uppercase(), fresh] {
        let res = app
            .post("/api/v1/auth/register")
            .json(&json!({"email": email, "password": "another-password", "name": "X"}))
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        let keys: Vec<String> = body.as_object().unwrap().keys().cloned().collect();
        answers.push((status, keys, body["roles"].clone()));
    }
    assert_eq!(answers[0], answers[1], "an existing email and a new one answer alike");
    assert_eq!(answers[0].0, StatusCode::CREATED);
    let res = app
        .post("/api/v1/auth/login")
        .json(&json!({"email": user.email, "password": "another-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "the account kept its password");
    let started = std::time::Instant::now();
    loop {
        let notes: Value =
            app.get("/api/v1/notifications").bearer_auth(&user.token).fetch_json().await;
        let told = notes["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "registration_attempted");
        if told {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the owner is told: {notes}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Wrong password and unknown email answer alike.
    for (email, password) in
        [(user.email.as_str(), "wrong-password"), ("nobody@test.example", "whatever-pass")]
    {
        let res = app
            .post("/api/v1/auth/login")
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(testkit::error_code(res).await, "invalid_credentials");
    }
}

#[tokio::test]
async fn browse_search_and_page_the_catalog() {
    let app = crate::spawn().await;
    let all = app.all_products().await;
    assert_eq!(all.len(), runtime::DEMO_PRODUCTS.len());
    let mut ids: Vec<&str> = all.iter().map(|p| p["id"].as_str().unwrap()).collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "paging returned a product twice");
    let categories: std::collections::BTreeSet<&str> =
        all.iter().map(|p| p["category"].as_str().unwrap()).collect();
    assert!(categories.len() >= 3, "{categories:?}");

    // Category filter.
    let page: Value = app.get("/api/v1/products?category=tea&limit=100").fetch_json().await;
    let teas = page["items"].as_array().unwrap();
    assert!(!teas.is_empty());
    assert!(teas.iter().all(|p| p["category"] == "tea"));
    assert!(page["next_cursor"].is_null());

    // Text search, case-insensitive, in name or description.
    let page: Value = app.get("/api/v1/products?q=KENYA").fetch_json().await;
    let hits = page["items"].as_array().unwrap();
    assert_eq!(hits.len(), 1);
    assert!(hits[0]["name"].as_str().unwrap().contains("Kenya"));
    let page: Value = app.get("/api/v1/products?q=bergamot").fetch_json().await;
    assert_eq!(page["items"][0]["name"], "Earl Grey, 100 g");
    // LIKE wildcards are literal.
    let page: Value = app.get("/api/v1/products?q=%25").fetch_json().await;
    assert!(page["items"].as_array().unwrap().is_empty());

    // A page size beyond the rule is refused, not quietly changed.
    let res = app.get("/api/v1/products?limit=100000").send().await.unwrap();
    assert_eq!(res.status(), testkit::StatusCode::BAD_REQUEST);

    // One product.
    let id = all[3]["id"].as_str().unwrap();
    let one: Value = app.get(&format!("/api/v1/products/{id}")).fetch_json().await;
    assert_eq!(one, all[3]);
    let res = app.get(&format!("/api/v1/products/{}", uuid::Uuid::now_v7())).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(testkit::error_code(res).await, "product_not_found");

    // Stock of a seeded product.
    let stock: Value = app.get(&format!("/api/v1/inventory/{id}")).fetch_json().await;
    assert!(stock["available"].as_i64().unwrap() > 0);
    assert_eq!(stock["reserved"], 0);
}

#[tokio::test]
async fn admin_manages_products_and_stock() {
    let app = crate::spawn().await;
    let admin = app.admin_token().await;
    let res = app
        .post("/api/v1/products")
        .bearer_auth(&admin)
        .json(&json!({"name": "Moka Pot", "description": "Stovetop", "category": "equipment",
                      "price": {"amount": 3900, "currency": "USD"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let p: Value = res.json().await.unwrap();
    let id = p["id"].as_str().unwrap();
    let res = app
        .patch(&format!("/api/v1/products/{id}"))
        .bearer_auth(&admin)
        .json(&json!({"price": {"amount": 4200, "currency": "USD"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["price"]["amount"], 4200);
    assert_eq!(p["name"], "Moka Pot");

    let res = app
        .put(&format!("/api/v1/inventory/{id}"))
        .bearer_auth(&admin)
        .json(&json!({"available": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let s: Value = app.get(&format!("/api/v1/inventory/{id}")).fetch_json().await;
    assert_eq!(s, json!({"product_id": id, "available": 7, "reserved": 0}));
}

#[tokio::test]
async fn cart_add_update_remove_with_right_totals() {
    let app = crate::spawn().await;
    let user = app.register_login().await;
    let products = app.all_products().await;
    let (a, b) = (&products[0], &products[5]);
    let price = |p: &Value| p["price"]["amount"].as_i64().unwrap();
    let put = |id: &str, q: i64| {
        app.put(&format!("/api/v1/cart/items/{id}"))
            .bearer_auth(&user.token)
            .json(&json!({"quantity": q}))
    };

    let empty: Value = app.get("/api/v1/cart").bearer_auth(&user.token).fetch_json().await;
    assert_eq!(empty, json!({"items": [], "total": {"amount": 0, "currency": "USD"}}));

    let res = put(a["id"].as_str().unwrap(), 2).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cart: Value = put(b["id"].as_str().unwrap(), 1).fetch_json().await;
    assert_eq!(cart["total"]["amount"], 2 * price(a) + price(b));
    assert_eq!(cart["items"][0]["line_total"]["amount"], 2 * price(a));
    assert_eq!(cart["items"][0]["name"], a["name"]);

    // Update a quantity: replaces, not adds.
    let cart: Value = put(a["id"].as_str().unwrap(), 5).fetch_json().await;
    assert_eq!(cart["items"].as_array().unwrap().len(), 2);
    assert_eq!(cart["total"]["amount"], 5 * price(a) + price(b));

    // Remove one line.
    let cart: Value = app
        .delete(&format!("/api/v1/cart/items/{}", b["id"].as_str().unwrap()))
        .bearer_auth(&user.token)
        .fetch_json()
        .await;
    assert_eq!(cart["items"].as_array().unwrap().len(), 1);
    assert_eq!(cart["total"]["amount"], 5 * price(a));

    // Clear.
    let res = app.delete("/api/v1/cart").bearer_auth(&user.token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let cart: Value = app.get("/api/v1/cart").bearer_auth(&user.token).fetch_json().await;
    assert_eq!(cart["items"], json!([]));
}

#[tokio::test]
async fn health_and_readiness() {
    let app = crate::spawn().await;
    let res = app.get("/healthz").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.get("/readyz").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = crate::spawn().await;
    let res = app.get("/healthz").header("x-request-id", "trace-me-123").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-me-123");
    let res = app
        .get("/api/v1/products")
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let generated = res.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(generated, "bad id with spaces");
    assert!(!generated.is_empty());
}

#[tokio::test]
async fn cors_preflight_is_answered() {
    let app = crate::spawn().await;
    let res = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/cart"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "PUT")
        .header("access-control-request-headers", "authorization, content-type")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert!(res.headers().contains_key("access-control-allow-origin"));
    let methods = res.headers()["access-control-allow-methods"].to_str().unwrap().to_owned();
    assert!(methods.contains("PUT"), "{methods}");
}

/// Failed logins slow down further attempts on that account, whatever the address, and
/// an email with no account is throttled alike (the throttle does not tell them apart).
#[tokio::test]
async fn failed_logins_are_throttled_per_account() {
    let app = crate::spawn().await;
    let user = app.register_login().await;
    let login = |email: String, password: &str| {
        app.post("/api/v1/auth/login").json(&json!({"email": email, "password": password})).send()
    };
    for email in [user.email.clone(), "nobody-throttled@test.example".to_owned()] {
        for _ in 0..5 {
            let res = login(email.clone(), "wrong-password").await.unwrap();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        }
        // Now even the right password waits: the throttle runs before the password check.
        let res = login(email.clone(), &user.password).await.unwrap();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{email}");
        let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=2).contains(&retry), "{retry}");
        assert_eq!(testkit::error_code(res).await, "too_many_attempts");
    }
    // Another account is not affected.
    let other = app.register_login().await;
    assert!(!other.token.is_empty());
    // After the wait, the right password works and clears the record.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let res = login(user.email.clone(), "wrong-password").await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "a sixth failure");
    let res = login(user.email.clone(), &user.password).await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "waits 2 s now");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let res = app
        .post("/api/v1/auth/login")
        .json(&json!({"email": user.email, "password": user.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}
