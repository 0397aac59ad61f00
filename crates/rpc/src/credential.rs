//! Service credentials: who may call a service's internal routes. Every internal call
//! carries a short-lived HS256 token whose audience is the called service, signed with the
//! cluster's shared secret; a request without one is refused before any route runs.
//!
//! The caller's *user* identity travels beside it (a header); it is believed only because
//! the token proves the request comes from a peer service, which took it from a verified
//! access token (the gateway) or from its own system work.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

const ISSUER: &str = "microlith-cluster";
const LIFETIME: Duration = Duration::from_secs(300);

/// The cluster's shared secret (at least 32 bytes, as RFC 7518 requires for HS256).
#[derive(Clone)]
pub struct ClusterSecret(Arc<[u8]>);

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(***)")
    }
}

impl ClusterSecret {
    pub const MIN_LEN: usize = 32;

    pub fn new(bytes: Vec<u8>) -> Result<ClusterSecret, String> {
        if bytes.len() < Self::MIN_LEN {
            return Err(format!("the cluster secret must be at least {} bytes", Self::MIN_LEN));
        }
        Ok(ClusterSecret(bytes.into()))
    }

    pub fn generate() -> ClusterSecret {
        let bytes: Vec<u8> =
            (0..2).flat_map(|_| uuid::Uuid::new_v4().into_bytes()).collect::<Vec<u8>>();
        ClusterSecret(bytes.into())
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    /// The calling service.
    sub: String,
    /// The called service.
    aud: String,
    iat: u64,
    exp: u64,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Mints tokens for the calls this process makes, one per audience, renewed at half life.
#[derive(Clone)]
pub struct CredentialIssuer {
    caller: Arc<str>,
    key: Arc<EncodingKey>,
    cache: Arc<Mutex<HashMap<String, (String, u64)>>>,
}

impl std::fmt::Debug for CredentialIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialIssuer").field("caller", &self.caller).finish_non_exhaustive()
    }
}

impl CredentialIssuer {
    /// `caller`: the name of this process's service (or `gateway`), written as the subject.
    pub fn new(secret: &ClusterSecret, caller: &str) -> CredentialIssuer {
        CredentialIssuer {
            caller: caller.into(),
            key: Arc::new(EncodingKey::from_secret(secret.bytes())),
            cache: Arc::default(),
        }
    }

    /// A token for calling `audience`.
    pub fn token_for(&self, audience: &str) -> Result<String, jsonwebtoken::errors::Error> {
        let now = now_secs();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((token, renew_at)) = cache.get(audience)
            && now < *renew_at
        {
            return Ok(token.clone());
        }
        let claims = Claims {
            iss: ISSUER.into(),
            sub: self.caller.to_string(),
            aud: audience.into(),
            iat: now,
            exp: now + LIFETIME.as_secs(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)?;
        cache.insert(audience.into(), (token.clone(), now + LIFETIME.as_secs() / 2));
        Ok(token)
    }
}

/// Checks the tokens on calls to this service.
#[derive(Clone)]
pub struct CredentialVerifier {
    key: Arc<DecodingKey>,
    validation: Arc<Validation>,
}

impl std::fmt::Debug for CredentialVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialVerifier")
    }
}

impl CredentialVerifier {
    /// `service`: this service's name; only tokens minted for it pass.
    pub fn new(secret: &ClusterSecret, service: &str) -> CredentialVerifier {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[service]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.leeway = 30;
        CredentialVerifier {
            key: Arc::new(DecodingKey::from_secret(secret.bytes())),
            validation: Arc::new(validation),
        }
    }

    /// The calling service's name, if the token is valid for this service.
    pub fn verify(&self, token: &str) -> Result<String, String> {
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map(|data| data.claims.sub)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_for_one_audience_and_one_secret() {
        let secret = ClusterSecret::generate();
        let issuer = CredentialIssuer::new(&secret, "orders");
        let token = issuer.token_for("cart").unwrap();
        assert_eq!(issuer.token_for("cart").unwrap(), token, "cached");
        assert_eq!(CredentialVerifier::new(&secret, "cart").verify(&token).unwrap(), "orders");
        assert!(CredentialVerifier::new(&secret, "payments").verify(&token).is_err());
        let other = ClusterSecret::generate();
        assert!(CredentialVerifier::new(&other, "cart").verify(&token).is_err());
        assert!(CredentialVerifier::new(&secret, "cart").verify("garbage").is_err());
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(ClusterSecret::new(vec![7; 31]).is_err());
        assert!(ClusterSecret::new(vec![7; 32]).is_ok());
    }
}
