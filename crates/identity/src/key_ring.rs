//! Token signing keys over time: the one key that signs, and the public halves of those it
//! replaced, each still verifying the tokens it signed until they have all expired.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use serde::{Deserialize, Serialize};

use crate::SigningKey;

/// A key that signs no more: its public JWK, published until `verify_until_ms` (Unix
/// milliseconds), when the last token it signed has expired and a grace has passed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetiredKey {
    pub jwk: Jwk,
    pub verify_until_ms: i64,
}

/// The signing key and the retired ones still verifying.
#[derive(Debug, Clone)]
pub struct KeyRing {
    pub active: SigningKey,
    pub retired: Vec<RetiredKey>,
}

impl KeyRing {
    pub fn single(active: SigningKey) -> KeyRing {
        KeyRing { active, retired: Vec::new() }
    }

    /// `next` signs from now on; the active key retires, verifying for `keep_for` more
    /// (the token lifetime plus a grace: no token it signed outlives that).
    pub fn rotate(&self, next: SigningKey, now_ms: i64, keep_for: Duration) -> KeyRing {
        let keep_ms = i64::try_from(keep_for.as_millis()).unwrap_or(i64::MAX);
        let mut retired = self.still_verifying(now_ms);
        retired.retain(|r| r.jwk.common.key_id.as_deref() != Some(self.active.kid()));
        retired.push(RetiredKey {
            jwk: self.active.public_jwk().clone(),
            verify_until_ms: now_ms.saturating_add(keep_ms),
        });
        KeyRing { active: next, retired }
    }

    /// The retired keys still verifying at `now_ms`.
    pub fn still_verifying(&self, now_ms: i64) -> Vec<RetiredKey> {
        self.retired.iter().filter(|r| r.verify_until_ms > now_ms).cloned().collect()
    }

    /// Whether some retired key has stopped verifying at `now_ms` (and should be dropped).
    pub fn has_expired(&self, now_ms: i64) -> bool {
        self.retired.iter().any(|r| r.verify_until_ms <= now_ms)
    }

    /// The JWK Set (RFC 7517, section 5) that verifies tokens at `now_ms`: the active key
    /// first, then each retired key still verifying, each `kid` once.
    pub fn jwks(&self, now_ms: i64) -> identity_api::Jwks {
        let mut keys = vec![self.active.public_jwk().clone()];
        for r in self.still_verifying(now_ms) {
            if !keys.iter().any(|k| k.common.key_id == r.jwk.common.key_id) {
                keys.push(r.jwk);
            }
        }
        identity_api::Jwks(JwkSet { keys })
    }
}

/// Where identity's keys live, read on every use so that a rotation made elsewhere (another
/// replica, the `microlith keys rotate` command) is seen at once. The runtime keeps them in
/// the data directory; a production deployment would put a KMS-backed signer here.
pub trait KeyStore: Send + Sync + 'static {
    /// The keys as they are now.
    fn current(&self) -> anyhow::Result<Arc<KeyRing>>;
    /// Makes a new key the signing one; the old one verifies for `keep_for` more.
    fn rotate(&self, keep_for: Duration) -> anyhow::Result<Arc<KeyRing>>;
}

/// Keys in memory only, for tests and for one-process tools.
pub struct MemoryKeys(Mutex<Arc<KeyRing>>);

impl MemoryKeys {
    pub fn new(active: SigningKey) -> Arc<MemoryKeys> {
        Arc::new(MemoryKeys(Mutex::new(Arc::new(KeyRing::single(active)))))
    }
}

impl KeyStore for MemoryKeys {
    fn current(&self) -> anyhow::Result<Arc<KeyRing>> {
        Ok(self.0.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    fn rotate(&self, keep_for: Duration) -> anyhow::Result<Arc<KeyRing>> {
        let next = SigningKey::generate()?;
        let mut ring = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *ring = Arc::new(ring.rotate(next, kernel::now_ms(), keep_for));
        Ok(ring.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kids(jwks: &identity_api::Jwks) -> Vec<String> {
        jwks.0.keys.iter().filter_map(|k| k.common.key_id.clone()).collect()
    }

    #[test]
    fn a_retired_key_verifies_until_its_time_and_then_is_gone() {
        let (a, b, c) = (
            SigningKey::generate().unwrap(),
            SigningKey::generate().unwrap(),
            SigningKey::generate().unwrap(),
        );
        let ring = KeyRing::single(a.clone());
        assert_eq!(kids(&ring.jwks(0)), [a.kid()]);
        let ring = ring.rotate(b.clone(), 1_000, Duration::from_secs(10));
        assert_eq!(ring.active.kid(), b.kid());
        assert_eq!(kids(&ring.jwks(1_000)), [b.kid(), a.kid()]);
        assert_eq!(kids(&ring.jwks(10_999)), [b.kid(), a.kid()]);
        assert_eq!(kids(&ring.jwks(11_000)), [b.kid()], "gone at verify_until");
        assert!(ring.has_expired(11_000) && !ring.has_expired(10_999));
        // A second rotation keeps the first retired key only while it still verifies.
        let ring2 = ring.rotate(c.clone(), 5_000, Duration::from_secs(10));
        assert_eq!(kids(&ring2.jwks(5_000)), [c.kid(), a.kid(), b.kid()]);
        assert_eq!(kids(&ring2.jwks(12_000)), [c.kid(), b.kid()]);
        let ring3 = ring.rotate(c.clone(), 20_000, Duration::from_secs(10));
        assert_eq!(ring3.retired.len(), 1, "an expired key is dropped at the next rotation");
    }
}
