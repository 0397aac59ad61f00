//! Passwords as stored: prepared before hashing, and the hashes made before that still
//! verify once, then are made again.

use identity_api::{IdentityService as _, NewUser, Password, RegisterRequest};
use kernel::{Email, RequestContext};

use super::*;
use crate::{MemoryKeys, SigningKey};

async fn identity(dir: &std::path::Path) -> Identity {
    let db = Db::open_sqlite(&dir.join("identity.db")).await.unwrap();
    Identity::new(db, MemoryKeys::new(SigningKey::generate().unwrap()), IdentityConfig::default())
        .await
        .unwrap()
}

const COMPOSED: &str = "Gr\u{fc}\u{df}e-aus-K\u{f6}ln-2024";
const DECOMPOSED: &str = "Gru\u{308}\u{df}e-aus-Ko\u{308}ln-2024";

async fn login(id: &Identity, email: &str, password: &str) -> bool {
    let email = Email::parse(email).unwrap();
    let password = Password::offered(password.to_owned()).unwrap();
    id.login(&RequestContext::system(), email, password).await.is_ok()
}

async fn scheme(id: &Identity, email: &str) -> i64 {
    sqlx::query_scalar("SELECT password_scheme FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(id.db.pool())
        .await
        .unwrap()
}

/// A password typed with composed or decomposed characters is the same password.
#[tokio::test]
async fn a_password_matches_however_its_characters_are_composed() {
    let dir = tempfile::tempdir().unwrap();
    let id = identity(dir.path()).await;
    let new = NewUser::parse(RegisterRequest {
        email: "jo@shop.example".into(),
        password: COMPOSED.into(),
        name: "Jo".into(),
    })
    .unwrap();
    id.register(&RequestContext::system(), new).await.unwrap();
    assert!(login(&id, "jo@shop.example", DECOMPOSED).await);
    assert!(login(&id, "jo@shop.example", COMPOSED).await);
    assert!(!login(&id, "jo@shop.example", "Grusse-aus-Koln-2024").await);
}

/// An account whose hash was made of the bytes as typed (before migration 0003) logs in
/// with those bytes once; that login rehashes the password prepared, after which any
/// composition of it works.
#[tokio::test]
async fn a_hash_of_the_bytes_as_typed_verifies_once_and_is_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let id = identity(dir.path()).await;
    let legacy = password::hash(DECOMPOSED.to_owned()).await.unwrap();
    sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, role, created_at, password_scheme) \
         VALUES ($1, 'old@shop.example', 'Old', $2, 'customer', 0, 0)",
    )
    .bind(kernel::UserId::new().to_string())
    .bind(&legacy)
    .execute(id.db.pool())
    .await
    .unwrap();
    assert!(!login(&id, "old@shop.example", COMPOSED).await, "the old hash is of other bytes");
    assert_eq!(scheme(&id, "old@shop.example").await, 0);
    assert!(login(&id, "old@shop.example", DECOMPOSED).await, "as typed then");
    assert_eq!(scheme(&id, "old@shop.example").await, PREPARED, "made again, prepared");
    assert!(login(&id, "old@shop.example", COMPOSED).await, "now any composition");
    assert!(login(&id, "old@shop.example", DECOMPOSED).await);
}

/// Accounts stored before emails were prepared are found again: their stored address is
/// rewritten once, at start, unless another account already has that form.
#[tokio::test]
async fn stored_emails_are_prepared_once_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let id = identity(dir.path()).await;
    let insert = async |email: &str| {
        sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, role, created_at, password_scheme) \
             VALUES ($1, $2, 'Old', $3, 'customer', 0, 1)",
        )
        .bind(kernel::UserId::new().to_string())
        .bind(email)
        .bind(password::hash(COMPOSED.to_owned()).await.unwrap())
        .execute(id.db.pool())
        .await
        .unwrap();
    };
    insert("jose\u{301}@shop.example").await;
    insert("\u{ff41}da@shop.example").await;
    // Two accounts that are one once prepared: the second is left for an operator.
    insert("zo\u{eb}@shop.example").await;
    insert("zoe\u{308}@shop.example").await;
    sqlx::query("DELETE FROM data_migrations").execute(id.db.pool()).await.unwrap();
    assert!(!login(&id, "jos\u{e9}@shop.example", COMPOSED).await, "not found before");

    let id = identity(dir.path()).await;
    assert!(login(&id, "jos\u{e9}@shop.example", COMPOSED).await);
    assert!(login(&id, "jose\u{301}@shop.example", COMPOSED).await);
    assert!(login(&id, "ada@shop.example", COMPOSED).await);
    assert!(login(&id, "zo\u{eb}@shop.example", COMPOSED).await);
    let stored: Vec<String> = sqlx::query_scalar("SELECT email FROM users ORDER BY email")
        .fetch_all(id.db.pool())
        .await
        .unwrap();
    assert!(stored.contains(&"zoe\u{308}@shop.example".to_owned()), "left as stored: {stored:?}");
}
