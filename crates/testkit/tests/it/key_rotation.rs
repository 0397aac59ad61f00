//! Token signing keys rotate as an issuer's should (issue 19): a token signed before the
//! rotation works until it expires, one signed after names the new key, and once the old
//! key's tokens have expired plus a grace it is gone from the JWKS.

use std::time::Duration;

use serde_json::Value;
use testkit::{FetchJson as _, StatusCode};

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).expect("a JWT").kid.expect("a kid")
}

#[tokio::test]
async fn a_rotated_key_verifies_its_tokens_until_they_expire_then_leaves_the_jwks() {
    let app = crate::spawn_with(|c| {
        c.identity.token_ttl = Duration::from_secs(2);
        c.identity.retired_key_grace = Duration::from_secs(1);
        c.gateway.token_keys_max_age = Duration::from_millis(500);
    })
    .await;
    let kids = async || -> Vec<String> {
        let jwks: Value = app.get("/.well-known/jwks.json").fetch_json().await;
        let keys = jwks["keys"].as_array().unwrap().iter();
        keys.map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
    };
    let me =
        async |token: &str| app.get("/api/v1/me").bearer_auth(token).send().await.unwrap().status();
    let admin = app.admin_token().await;
    let before = app.register_login().await.token;
    let old = kid_of(&before);
    assert_eq!(kids().await, [old.as_str()]);

    // Customers may not rotate.
    let res = app.post("/api/v1/system/keys/rotate").bearer_auth(&before).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app.post("/api/v1/system/keys/rotate").bearer_auth(&admin).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let rotation: Value = res.json().await.unwrap();
    let new = rotation["kid"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(rotation["retired_kid"], old.as_str());
    let rotated_at = std::time::Instant::now();

    assert_eq!(kids().await, [new.clone(), old.clone()], "old and new are published");
    assert_eq!(me(&before).await, StatusCode::OK, "a token of the old key still works");
    let after = app.register_login().await.token;
    assert_eq!(kid_of(&after), new, "a new token names the new key");
    assert_eq!(me(&after).await, StatusCode::OK, "and verifies");

    // Past the token lifetime plus the grace, the old key is gone, and so are its tokens.
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(rotated_at.elapsed())).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(kids().await, [new.as_str()]);
    assert_eq!(me(&before).await, StatusCode::UNAUTHORIZED);
}
