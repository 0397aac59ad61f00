use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use identity_api::token::{TokenAudience, TokenError, TokenVerifier};
use identity_api::{IdentityClient, Jwks};
use kernel::{Principal, RequestContext};

/// How often at most an unknown `kid` may trigger a JWKS refetch, so that garbage tokens
/// cannot make the gateway hammer identity.
const REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// Verifies bearer tokens with identity's published keys, refetching them when a token
/// names a key not seen yet (key rotation).
pub struct Authenticator {
    identity: IdentityClient,
    audience: TokenAudience,
    verifier: RwLock<Arc<TokenVerifier>>,
    /// When an unknown `kid` last made it refetch; `None` until the first time, so a key
    /// rotated just after start is learned at once rather than 30 s later.
    last_refresh: Mutex<Option<Instant>>,
}

impl Authenticator {
    /// Starts with `known` keys when given (the public JWK Set of the shop's signing key,
    /// read from its data directory), so that verifying a token, an admin's included, never needs identity to
    /// answer: a fault injected into identity cannot lock the operator out of the fault
    /// API. Without them, fetches identity's JWKS now.
    ///
    /// # Errors
    /// Without `known` keys, identity does not answer.
    pub async fn new(
        identity: IdentityClient,
        audience: TokenAudience,
        known: Option<Jwks>,
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
        })
    }

    fn current(&self) -> Arc<TokenVerifier> {
        match self.verifier.read() {
            Ok(v) => v.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub async fn verify(&self, token: &str) -> Result<Principal, TokenError> {
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
        match self.identity.jwks(&RequestContext::system()).await {
            Ok(jwks) => {
                let fresh = Arc::new(TokenVerifier::new(&jwks, &self.audience));
                if let Ok(mut v) = self.verifier.write() {
                    *v = fresh.clone();
                }
                fresh.verify(token)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot refresh token keys");
                Err(TokenError::UnknownKey)
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
