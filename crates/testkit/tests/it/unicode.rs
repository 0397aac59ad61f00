//! Identities a person reads as the same are one identity, and none hides characters a
//! person cannot see (RFC 8265 for emails, RFC 8266 for display names).

use serde_json::json;
use testkit::{FetchJson as _, StatusCode};

/// The same address in composed and decomposed form is one account: registering the
/// second gives no new account (the owner is told instead), and either form logs in.
#[tokio::test]
async fn an_address_in_another_normal_form_is_the_same_account() {
    let app = crate::spawn().await;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let composed = format!("jos\u{e9}-{tag}@shop.example");
    let decomposed = format!("jose\u{301}-{tag}@shop.example");
    let register = async |email: &str, password: &str| {
        let body = json!({"email": email, "password": password, "name": "Jos\u{e9}"});
        app.post("/api/v1/auth/register").json(&body).send().await.unwrap().status()
    };
    assert_eq!(register(&composed, "first-password-1").await, StatusCode::CREATED);
    // Answered like any registration (no account enumeration), but no second account.
    assert_eq!(register(&decomposed, "second-password-2").await, StatusCode::CREATED);
    let login = async |email: &str, password: &str| {
        let body = json!({"email": email, "password": password});
        app.post("/api/v1/auth/login").json(&body).send().await.unwrap().status()
    };
    assert_eq!(login(&decomposed, "second-password-2").await, StatusCode::UNAUTHORIZED);
    assert_eq!(login(&decomposed, "first-password-1").await, StatusCode::OK);
    assert_eq!(login(&composed.to_uppercase(), "first-password-1").await, StatusCode::OK);
}

/// An address or a display name with an invisible or direction-changing character is
/// refused with a 400 that says why, and creates nothing.
#[tokio::test]
async fn hidden_characters_are_refused_in_addresses_and_names() {
    let app = crate::spawn().await;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    for (email, name) in [
        (format!("admin\u{200b}-{tag}@shop.example"), "Admin".to_owned()),
        (format!("admin\u{202e}-{tag}@shop.example"), "Admin".to_owned()),
        (format!("ok-{tag}@shop.example"), "Ad\u{200b}min".to_owned()),
        (format!("ok-{tag}@shop.example"), "\u{2066}Admin\u{2069}".to_owned()),
    ] {
        let body = json!({"email": email, "password": "a-good-password", "name": name});
        let res = app.post("/api/v1/auth/register").json(&body).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{email:?} {name:?}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_input", "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("invisible, direction-changing"), "{body}");
    }
    let body = json!({"email": format!("ok-{tag}@shop.example"), "password": "a-good-password"});
    let res = app.post("/api/v1/auth/login").json(&body).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "nothing was created");
}

/// A password registered with composed characters logs in typed decomposed, as some
/// keyboards send it (RFC 8265's OpaqueString); eight spaces are no password.
#[tokio::test]
async fn passwords_match_however_they_are_composed_and_trivial_ones_are_refused() {
    let app = crate::spawn().await;
    let email = format!("pw-{}@shop.example", uuid::Uuid::new_v4().simple());
    let register = async |password: &str| {
        let body = json!({"email": email, "password": password, "name": "Pw"});
        app.post("/api/v1/auth/register").json(&body).send().await.unwrap()
    };
    let res = register("        ").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("too easy to guess"));
    assert_eq!(register("Gr\u{fc}\u{df}e-aus-K\u{f6}ln-2024").await.status(), StatusCode::CREATED);
    let body = json!({"email": email, "password": "Gru\u{308}\u{df}e-aus-Ko\u{308}ln-2024"});
    let res = app.post("/api/v1/auth/login").json(&body).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// Product text is stored and searched in one normal form: a name typed decomposed is
/// found by a search typed composed, and the other way round.
#[tokio::test]
async fn product_text_is_searched_in_one_normal_form() {
    let app = crate::spawn().await;
    let admin = app.admin_token().await;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let product = json!({"name": format!("Cafe\u{301} {tag}"), "category": "unicode",
        "price": {"amount": 100, "currency": "USD"}});
    let res = app.post("/api/v1/products").bearer_auth(&admin).json(&product).send().await;
    let created: serde_json::Value = res.unwrap().json().await.unwrap();
    assert_eq!(created["name"], format!("Caf\u{e9} {tag}"), "stored composed (NFC)");
    for q in [format!("caf\u{e9} {tag}"), format!("CAFE\u{301} {tag}")] {
        let page = app.get("/api/v1/products").query(&[("q", &q)]).fetch_json().await;
        assert_eq!(page["items"].as_array().map(Vec::len), Some(1), "{q:?}: {page}");
    }
}
