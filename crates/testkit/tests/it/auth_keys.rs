//! The gateway's view of identity's signing keys: a key rotated just after the gateway
//! started is learned from the first token that names it, and an unknown key makes the
//! gateway refetch at most once per interval; keys the gateway holds need no fetch. (Monolith-only: it drives the gateway's
//! authenticator directly, against a scripted identity.)

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn token(key: &identity::SigningKey) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = Some(key.kid().to_owned());
    let t = now();
    let claims = json!({"iss": "microlith", "aud": "microlith-api",
        "sub": kernel::UserId::new().to_string(), "exp": t + 600, "nbf": t - 5,
        "iat": t - 5, "jti": "x", "roles": ["customer"]});
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_ed_pem(key.to_pem().as_bytes()).unwrap(),
    )
    .unwrap()
}

/// The gateway learns a rotated signing key from the first token that names it, even just
/// after it started; after that, unknown keys make it refetch at most once per interval.
#[tokio::test]
async fn a_rotated_token_key_is_learned_at_once_and_refetches_are_limited() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let keys: Vec<identity::SigningKey> =
        (0..3).map(|_| identity::SigningKey::generate().unwrap()).collect();
    let published = keys.clone();
    let fetches = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = fetches.clone();
    let mut identity = identity_api::MockIdentityService::new();
    // Identity publishes one more key on each fetch: a, then a b, then a b c.
    identity.expect_jwks().returning(move |_| {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        let jwks = published.iter().take(n + 1).map(|k| k.public_jwk().clone()).collect();
        Ok(identity_api::Jwks(jsonwebtoken::jwk::JwkSet { keys: jwks }))
    });
    let auth = gateway::Authenticator::new(
        identity_api::IdentityClient::local(identity),
        identity_api::token::TokenAudience::default(),
        None,
        std::time::Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert!(auth.verify(&token(&keys[0])).await.is_ok());
    assert!(auth.verify(&token(&keys[1])).await.is_ok(), "rotated right after start");
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    // Within the interval, an unknown key costs identity nothing more.
    for _ in 0..5 {
        assert!(auth.verify(&token(&keys[2])).await.is_err());
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 2, "one refetch per interval at most");
}

/// With the shop's own key in hand, the gateway verifies tokens without asking identity,
/// at start or later: a fault in identity cannot lock an admin out of the fault API.
#[tokio::test]
async fn known_token_keys_verify_without_identity() {
    let key = identity::SigningKey::generate().unwrap();
    let mut identity = identity_api::MockIdentityService::new();
    identity.expect_jwks().never();
    let known =
        identity_api::Jwks(jsonwebtoken::jwk::JwkSet { keys: vec![key.public_jwk().clone()] });
    let auth = gateway::Authenticator::new(
        identity_api::IdentityClient::local(identity),
        identity_api::token::TokenAudience::default(),
        Some(known),
        std::time::Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert!(auth.verify(&token(&key)).await.is_ok());
}
