//! argon2id hashing, off the async threads: one hash costs tens of milliseconds of CPU.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

pub(crate) async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))
    })
    .await?
}

/// Checks `password` against a stored PHC string. With `None` (no such user) it checks
/// against a fixed dummy hash, so an unknown email costs as much time as a wrong password.
pub(crate) async fn verify(password: String, stored: Option<String>) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let phc = match stored {
            Some(s) => s,
            None => dummy_hash()?.to_owned(),
        };
        let parsed =
            PasswordHash::new(&phc).map_err(|e| anyhow::anyhow!("stored hash is corrupt: {e}"))?;
        let ok = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        Ok(ok && known)
    })
    .await?
}

fn dummy_hash() -> anyhow::Result<&'static str> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h);
    }
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let h = Argon2::default()
        .hash_password(b"no user has this password", &salt)
        .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))?
        .to_string();
    Ok(DUMMY.get_or_init(|| h))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unknown email costs what a wrong password costs: the dummy hash it is checked
    /// against has the algorithm, version, parameters and output length of a real one, and
    /// argon2's work depends on nothing else. (A stopwatch would only measure the machine.)
    #[tokio::test]
    async fn an_unknown_email_is_checked_against_a_hash_of_the_same_cost() {
        let real = hash("correct horse".into()).await.unwrap();
        let dummy = dummy_hash().unwrap();
        let (r, d) = (PasswordHash::new(&real).unwrap(), PasswordHash::new(dummy).unwrap());
        assert_eq!((r.algorithm, r.version), (d.algorithm, d.version));
        assert_eq!(r.params, d.params, "m, t and p");
        assert_eq!(r.hash.map(|h| h.len()), d.hash.map(|h| h.len()));
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), Some(h.clone())).await.unwrap());
        assert!(!verify("wrong horse".into(), Some(h)).await.unwrap());
        assert!(!verify("no user has this password".into(), None).await.unwrap());
    }
}
