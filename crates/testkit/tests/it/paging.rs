//! One paging rule for every list: the same `limit` range, default and error, unknown
//! query parameters refused, a cursor accepted only as its list gave it out, and
//! `next_cursor` always present (issue 19).

use serde_json::{Value, json};
use testkit::{FetchJson as _, StatusCode};

#[tokio::test]
async fn every_list_pages_by_the_same_rule() {
    let app = crate::spawn().await;
    let user = app.register_login().await;
    let admin = app.admin_token().await;
    let lists = [
        ("/api/v1/products", &user.token),
        ("/api/v1/orders", &user.token),
        ("/api/v1/notifications", &user.token),
        ("/api/v1/payments", &user.token),
        ("/api/v1/system/dead-letters", &admin),
        ("/api/v1/system/traces", &admin),
    ];
    for (list, token) in lists {
        let get = |query: &str| app.get(&format!("{list}?{query}")).bearer_auth(token).send();
        for bad in ["limit=0", "limit=-1", "limit=101", "limit=2147483648", "limit=1.5"] {
            let res = get(bad).await.unwrap();
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{list}?{bad}");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["code"], "invalid_input", "{list}?{bad}: {body}");
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert_eq!(message, kernel::Limit::RULE, "{list}?{bad}");
        }
        for good in ["limit=1", "limit=100", ""] {
            assert_eq!(get(good).await.unwrap().status(), StatusCode::OK, "{list}?{good}");
        }
        let res = get("sort=price").await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{list} refuses an unknown parameter");

        // Any base64 text, another list's cursor, or junk: 400, never some page.
        let foreign = kernel::Cursor::encode(&kernel::PaymentId::new());
        let foreign = if list.ends_with("payments") {
            kernel::Cursor::encode(&kernel::OrderId::new())
        } else {
            foreign
        };
        for bad in ["aGVsbG8", "MTIzNDU2Nzg5", "%00", "!!", foreign.as_str()] {
            let res = get(&format!("cursor={bad}")).await.unwrap();
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{list}?cursor={bad}");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["code"], "invalid_input", "{list}: {body}");
            assert_eq!(body["error"]["message"], kernel::Cursor::RULE, "{list}: {body}");
        }

        // `next_cursor` is there on every page, null on the last.
        let page: Value = get("").await.unwrap().json().await.unwrap();
        assert!(page.as_object().unwrap().contains_key("next_cursor"), "{list}: {page}");
    }
}

#[tokio::test]
async fn a_cursor_given_out_pages_to_the_end_and_a_tampered_one_is_refused() {
    let app = crate::spawn().await;
    let admin = app.admin_token().await;
    for i in 0..3 {
        let product = json!({"name": format!("Paged {i}"), "category": "paging",
            "price": {"amount": 100, "currency": "USD"}});
        let res = app.post("/api/v1/products").bearer_auth(&admin).json(&product).send().await;
        assert_eq!(res.unwrap().status(), StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let url = format!("/api/v1/products?category=paging&limit=2&cursor={cursor}");
        let page = app.get(&url).fetch_json().await;
        seen.extend(page["items"].as_array().unwrap().iter().map(|p| p["name"].clone()));
        match page["next_cursor"].as_str() {
            Some(next) => {
                // One character changed: still base64, no longer ours.
                let mut tampered = next.to_owned().into_bytes();
                tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
                let tampered = String::from_utf8(tampered).unwrap();
                let url = format!("/api/v1/products?category=paging&limit=2&cursor={tampered}");
                let res = app.get(&url).send().await.unwrap();
                assert_eq!(res.status(), StatusCode::BAD_REQUEST, "tampered {tampered}");
                cursor = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(seen, ["Paged 0", "Paged 1", "Paged 2"]);
}
