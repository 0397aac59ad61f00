use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use identity_api::token::{TokenAudience, TokenError, TokenVerifier};
use identity_api::{IdentityClient, Jwks};
use kernel::{Principal, RequestContext};

/// How often at most an unknown `kid` may trigger a JWKS refetch, so that garbage tokens
/// cannot make the gateway hammer identity.
const REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// How long a refresh of the keys may take before the request that asked for it goes on
/// with the keys it has.
const REFRESH_TIMEOUT: Duration = Duration::from_millis(500);

/// Verifies bearer tokens with identity's published keys, refetching them when a token
/// names a key not seen yet (key rotation), and when they are older than their maximum
/// age, so that a rotated-out key stops verifying once identity no longer publishes it.
pub struct Authenticator {
    identity: IdentityClient,
    audience: TokenAudience,
    verifier: RwLock<Arc<TokenVerifier>>,
    /// When an unknown `kid` last made it refetch; `None` until the first time, so a key
    /// rotated just after start is learned at once rather than 30 s later.
    last_refresh: Mutex<Option<Instant>>,
    /// When the keys in hand were fetched (or given), and how long they are good for.
    fetched_at: Mutex<Instant>,
    max_age: Duration,
    /// Whether a request is refreshing stale keys now: one does, the rest go on.
    refreshing: AtomicBool,
}

impl Authenticator {
    /// Starts with `known` keys when given (the public JWK Set of the shop's signing keys,
    /// read from its data directory), so that verifying a token, an admin's included, never
    /// needs identity to answer: a fault injected into identity cannot lock the operator
    /// out of the fault API. Without them, fetches identity's JWKS now. Keys older than
    /// `max_age` are fetched again by the next request (if identity does not answer, the
    /// keys in hand stay).
    ///
    /// # Errors
    /// Without `known` keys, identity does not answer.
    pub async fn new(
        identity: IdentityClient,
        audience: TokenAudience,
        known: Option<Jwks>,
        max_age: Duration,
    ) -> anyhow::Result<Self> {
        let jwks = match known {
            Some(jwks) => jwks,
            None => identity
                .jwks(&RequestContext::system())
                .await
                .map_err(|e| anyhow::anyhow!("cannot fetch the token keys from identity: {e}"))?,
        };
        let verifier = TokenVerifier::new(&jwks, &audience);
        Ok(Authenticator {
            identity,
            audience,
            verifier: RwLock::new(Arc::new(verifier)),
            last_refresh: Mutex::new(None),
            fetched_at: Mutex::new(Instant::now()),
            max_age,
            refreshing: AtomicBool::new(false),
        })
    }

    fn current(&self) -> Arc<TokenVerifier> {
        match self.verifier.read() {
            Ok(v) => v.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub async fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        self.refresh_if_stale().await;
        let verifier = self.current();
        match verifier.verify(token) {
            Err(TokenError::UnknownKey) => {}
            other => return other,
        }
        let Some(kid) = TokenVerifier::key_id(token) else {
            return Err(TokenError::UnknownKey);
        };
        if verifier.knows_key(&kid) || !self.may_refresh() {
            return Err(TokenError::UnknownKey);
        }
        match self.fetch().await {
            Some(fresh) => fresh.verify(token),
            None => Err(TokenError::UnknownKey),
        }
    }

    /// Fetches identity's keys and uses them from now on; `None` if identity does not
    /// answer in time (the keys in hand stay).
    async fn fetch(&self) -> Option<Arc<TokenVerifier>> {
        let answer =
            tokio::time::timeout(REFRESH_TIMEOUT, self.identity.jwks(&RequestContext::system()))
                .await;
        match answer {
            Ok(Ok(jwks)) => {
                let fresh = Arc::new(TokenVerifier::new(&jwks, &self.audience));
                if let Ok(mut v) = self.verifier.write() {
                    *v = fresh.clone();
                }
                if let Ok(mut at) = self.fetched_at.lock() {
                    *at = Instant::now();
                }
                Some(fresh)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot refresh token keys");
                None
            }
            Err(_) => {
                tracing::warn!(
                    timeout_ms = REFRESH_TIMEOUT.as_millis(),
                    "cannot refresh token keys: identity did not answer in time"
                );
                None
            }
        }
    }

    async fn refresh_if_stale(&self) {
        let stale = self.fetched_at.lock().is_ok_and(|at| at.elapsed() > self.max_age);
        if stale && !self.refreshing.swap(true, Ordering::AcqRel) {
            // Cleared however this ends: a client that goes away drops this future.
            let _refreshing = ClearOnDrop(&self.refreshing);
            if self.fetch().await.is_none() {
                // Try again after another interval, not on every request.
                if let Ok(mut at) = self.fetched_at.lock() {
                    *at = Instant::now();
                }
            }
        }
    }

    fn may_refresh(&self) -> bool {
        let Ok(mut last) = self.last_refresh.lock() else { return false };
        if last.is_some_and(|at| at.elapsed() < REFRESH_INTERVAL) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

/// Sets its flag back to `false` when dropped.
struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}
