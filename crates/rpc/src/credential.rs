//! Service credentials: which service is calling, and for which user.
//!
//! Every service (and the gateway, and every function) has an Ed25519 key of its own
//! ([`ServiceKey`]); the others know only its public half ([`KeySource`]), so a callee can
//! check who calls it but can never mint a credential in the caller's name. Three kinds of
//! token, all EdDSA JWS (RFC 7515/8037) signed by the sender's key, with `kid` = its name:
//!
//! - a **service credential** (`Authorization: Bearer`): `iss` = `sub` = the calling service,
//!   `aud` = the called service, at most [`MAX_LIFETIME`] between `iat` and `exp`;
//! - a **signed payload**: the same, plus `digest`, the SHA-256 of the exact payload, for
//!   invocations that carry no headers (event batches, scheduled jobs);
//! - a **signed answer** (`x-microlith-answer-signature`): the callee's proof that it wrote
//!   an answer, `aud` = the caller, `digest` over the caller's nonce, the status and the
//!   body ([`answer_digest`]), so a process that took over a callee's port cannot answer in
//!   its name, and no answer can be replayed to another request;
//! - a **delegation** (`x-microlith-on-behalf-of`): the end user's identity, `sub` = the user,
//!   `roles`, `aud` = [`DELEGATION_AUDIENCE`]. Only the service that runs the public edge
//!   (which verified the user's access token) may sign one, so no other service can act
//!   for a user who made no request. Services forward it unchanged on the calls they make
//!   for that request.
//!
//! Which caller may call which route is the callee's [`CallPolicy`], derived by the
//! composition layer from the topology's call graph.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use kernel::{Principal, Role, UserId};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// The longest a service credential or a delegation may live (`exp - iat`); a token that
/// claims more is refused whatever its signature.
pub const MAX_LIFETIME: Duration = Duration::from_secs(60);
/// The `aud` of a delegation: any service of the shop, never a service name.
pub const DELEGATION_AUDIENCE: &str = "microlith:on-behalf-of";
/// Clock skew allowed between processes (seconds).
const LEEWAY: u64 = 5;

/// One service's private signing key. Prints only its name.
#[derive(Clone)]
pub struct ServiceKey {
    name: Arc<str>,
    encoding: Arc<EncodingKey>,
    public: [u8; 32],
    pem: Arc<str>,
}

impl std::fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceKey").field("name", &self.name).finish_non_exhaustive()
    }
}

impl ServiceKey {
    /// A new random key for the service `name`.
    pub fn generate(name: &str) -> Result<ServiceKey, String> {
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let pem = key
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|e| format!("cannot encode a key: {e}"))?;
        ServiceKey::from_pem(name, &pem)
    }

    /// Reads a PKCS#8 PEM Ed25519 private key (what [`ServiceKey::to_pem`] writes, or
    /// `openssl genpkey -algorithm ed25519`).
    pub fn from_pem(name: &str, pem: &str) -> Result<ServiceKey, String> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| format!("not a PKCS#8 Ed25519 private key: {e}"))?;
        let encoding = EncodingKey::from_ed_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
        Ok(ServiceKey {
            name: name.into(),
            encoding: Arc::new(encoding),
            public: key.verifying_key().to_bytes(),
            pem: pem.into(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn to_pem(&self) -> &str {
        &self.pem
    }

    /// The public key, base64url without padding (a JWK's `x`, RFC 8037).
    pub fn public_x(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.public)
    }
}

/// Where a verifier finds the public key of a service, by name.
pub trait KeySource: Send + Sync + 'static {
    fn public_key(&self, service: &str) -> Option<DecodingKey>;
}

/// A fixed set of public keys, for tests and explicit configuration.
#[derive(Clone, Default)]
pub struct StaticKeys(HashMap<String, String>);

impl StaticKeys {
    pub fn new() -> StaticKeys {
        StaticKeys::default()
    }

    pub fn with(mut self, key: &ServiceKey) -> StaticKeys {
        self.0.insert(key.name().to_owned(), key.public_x());
        self
    }
}

impl KeySource for StaticKeys {
    fn public_key(&self, service: &str) -> Option<DecodingKey> {
        self.0.get(service).and_then(|x| DecodingKey::from_ed_components(x).ok())
    }
}

/// The public key of a service given as its JWK `x` (base64url).
pub fn decoding_key(x: &str) -> Option<DecodingKey> {
    DecodingKey::from_ed_components(x.trim()).ok()
}

/// Who may call which internal route: `(caller service, path) -> allowed`.
pub type CallPolicy = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// A policy that lets every authenticated service call every route (contract tests).
pub fn allow_all() -> CallPolicy {
    Arc::new(|_, _| true)
}

#[derive(Debug, Serialize, Deserialize)]
struct ServiceClaims {
    iss: String,
    sub: String,
    aud: String,
    iat: u64,
    exp: u64,
    /// SHA-256 (base64url) of the payload this token vouches for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct DelegationClaims {
    iss: String,
    /// The end user.
    sub: String,
    aud: String,
    iat: u64,
    exp: u64,
    roles: Vec<String>,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// SHA-256 of `payload`, base64url: what a signed payload's `digest` claims.
pub fn digest(payload: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(payload))
}

/// What a signed answer's `digest` claims: SHA-256 (base64url) over a fixed prefix, the
/// caller's nonce, the HTTP status and the body. The prefix keeps an answer's digest from
/// ever matching a signed payload's (a JSON payload cannot start with it).
pub fn answer_digest(nonce: &str, status: u16, body: &[u8]) -> String {
    let mut h = sha2::Sha256::new();
    h.update(b"microlith-answer\0");
    h.update(nonce.as_bytes());
    h.update([0]);
    h.update(status.to_be_bytes());
    h.update(body);
    URL_SAFE_NO_PAD.encode(h.finalize())
}

/// A fresh nonce for one call (128 random bits, base64url): the caller checks that the
/// answer's signature covers it.
pub fn answer_nonce() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

fn header(kid: &str) -> Header {
    let mut h = Header::new(Algorithm::EdDSA);
    h.kid = Some(kid.to_owned());
    h
}

/// The caller's side of the credentials: mints those of the calls this process makes
/// (renewed at half life), and checks that each answer came from the service called.
#[derive(Clone)]
pub struct CredentialIssuer {
    key: ServiceKey,
    /// Checks answers addressed to this process.
    answers: CredentialVerifier,
    /// Whether this process runs the public edge, and so may sign delegations.
    delegates: bool,
    cache: Arc<Mutex<HashMap<String, (String, u64)>>>,
}

impl std::fmt::Debug for CredentialIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialIssuer").field("caller", &self.key.name()).finish_non_exhaustive()
    }
}

impl CredentialIssuer {
    /// Credentials signed by `key`, in the name of its service; the answers of the services
    /// it calls are checked against their public keys in `keys`.
    pub fn new(key: ServiceKey, keys: Arc<dyn KeySource>) -> CredentialIssuer {
        let answers = CredentialVerifier::new(key.name(), keys, "", Arc::new(|_, _| false));
        CredentialIssuer { key, answers, delegates: false, cache: Arc::default() }
    }

    /// This process runs the public edge: it may sign delegations for the users whose
    /// access tokens it verified.
    pub fn delegating(mut self) -> CredentialIssuer {
        self.delegates = true;
        self
    }

    pub fn caller(&self) -> &str {
        self.key.name()
    }

    fn cached(
        &self,
        slot: String,
        mint: impl FnOnce(u64) -> Result<String, jsonwebtoken::errors::Error>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = now_secs();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((token, renew_at)) = cache.get(&slot)
            && now < *renew_at
        {
            return Ok(token.clone());
        }
        let token = mint(now)?;
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(slot, (token.clone(), now + MAX_LIFETIME.as_secs() / 2));
        Ok(token)
    }

    /// A service credential for `audience`, vouching for a payload when `digest` is set.
    fn mint(
        &self,
        audience: &str,
        now: u64,
        digest: Option<String>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = ServiceClaims {
            iss: self.key.name().to_owned(),
            sub: self.key.name().to_owned(),
            aud: audience.into(),
            iat: now,
            exp: now + MAX_LIFETIME.as_secs(),
            digest,
        };
        jsonwebtoken::encode(&header(self.key.name()), &claims, &self.key.encoding)
    }

    /// A credential for calling `audience`.
    pub fn token_for(&self, audience: &str) -> Result<String, jsonwebtoken::errors::Error> {
        self.cached(format!("aud:{audience}"), |now| self.mint(audience, now, None))
    }

    /// A credential for sending exactly `payload` to `audience`.
    pub fn sign_payload(
        &self,
        audience: &str,
        payload: &[u8],
    ) -> Result<String, jsonwebtoken::errors::Error> {
        self.mint(audience, now_secs(), Some(digest(payload)))
    }

    /// The signature of an answer to `caller`'s call that came with `nonce`.
    pub fn sign_answer(
        &self,
        caller: &str,
        nonce: &str,
        status: u16,
        body: &[u8],
    ) -> Result<String, jsonwebtoken::errors::Error> {
        self.mint(caller, now_secs(), Some(answer_digest(nonce, status, body)))
    }

    /// Whether `signature` proves that `callee` wrote this answer (`status`, `body`) to this
    /// process's call made with `nonce`.
    pub fn check_answer(
        &self,
        callee: &str,
        nonce: &str,
        status: u16,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<(), CredentialError> {
        let signature = signature.ok_or(CredentialError::Unsigned)?;
        let signer = self.answers.vouched(signature, &answer_digest(nonce, status, body))?;
        if signer != callee {
            return Err(CredentialError::WrongSigner { expected: callee.to_owned(), got: signer });
        }
        Ok(())
    }

    /// A delegation for `principal`, if this process may sign one (`None` otherwise: the
    /// call then goes without a user, and the callee treats it as anonymous).
    pub fn delegation_for(
        &self,
        principal: &Principal,
    ) -> Result<Option<String>, jsonwebtoken::errors::Error> {
        if !self.delegates {
            return Ok(None);
        }
        let roles: Vec<String> = principal.roles.iter().map(|r| r.as_str().to_owned()).collect();
        let slot = format!("user:{}:{}", principal.user_id, roles.join(","));
        self.cached(slot, |now| {
            let claims = DelegationClaims {
                iss: self.key.name().to_owned(),
                sub: principal.user_id.to_string(),
                aud: DELEGATION_AUDIENCE.into(),
                iat: now,
                exp: now + MAX_LIFETIME.as_secs(),
                roles,
            };
            jsonwebtoken::encode(&header(self.key.name()), &claims, &self.key.encoding)
        })
        .map(Some)
    }
}

/// Why a credential was refused (logged by the callee, never sent back in detail).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("unknown signer {0:?}")]
    UnknownSigner(String),
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("the token lives longer than {}s", MAX_LIFETIME.as_secs())]
    TooLong,
    #[error("the payload does not match its signature")]
    DigestMismatch,
    #[error("the answer is not signed")]
    Unsigned,
    #[error("expected a signature of {expected:?}, not {got:?}")]
    WrongSigner { expected: String, got: String },
    #[error("delegations are signed only by {expected:?}, not {got:?}")]
    NotTheDelegator { expected: String, got: String },
}

/// Checks the credentials on calls to one service.
#[derive(Clone)]
pub struct CredentialVerifier {
    service: Arc<str>,
    keys: Arc<dyn KeySource>,
    /// The service that runs the public edge: the only signer of delegations.
    delegator: Arc<str>,
    policy: CallPolicy,
    /// Credentials and delegations already verified, by their exact text, with their `exp`:
    /// a caller sends the same token for half its life, so its signature is checked once,
    /// not on every call. Only tokens that passed every check get in.
    verified: Arc<moka::sync::Cache<String, (Verified, u64)>>,
}

/// What a verified token proved.
#[derive(Clone)]
enum Verified {
    Caller(String),
    User(Principal),
}

/// Verified tokens remembered per verifier.
const VERIFIED_CACHE: u64 = 10_000;

impl std::fmt::Debug for CredentialVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialVerifier").field("service", &self.service).finish_non_exhaustive()
    }
}

impl CredentialVerifier {
    /// `service`: this service's name, the audience a credential must name; `delegator`:
    /// the service whose delegations are believed; `policy`: who may call what.
    pub fn new(
        service: &str,
        keys: Arc<dyn KeySource>,
        delegator: &str,
        policy: CallPolicy,
    ) -> CredentialVerifier {
        let verified = moka::sync::Cache::builder()
            .max_capacity(VERIFIED_CACHE)
            .time_to_live(MAX_LIFETIME + Duration::from_secs(LEEWAY))
            .build();
        CredentialVerifier {
            service: service.into(),
            keys,
            delegator: delegator.into(),
            policy,
            verified: Arc::new(verified),
        }
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// Whether `caller` may call `path` here.
    pub fn allows(&self, caller: &str, path: &str) -> bool {
        (self.policy)(caller, path)
    }

    fn decode<C: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<(String, C), CredentialError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| CredentialError::Malformed(e.to_string()))?;
        let signer = header.kid.ok_or_else(|| CredentialError::Malformed("no kid".into()))?;
        let key = self
            .keys
            .public_key(&signer)
            .ok_or_else(|| CredentialError::UnknownSigner(signer.clone()))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[signer.as_str()]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub", "iat"]);
        validation.leeway = LEEWAY;
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .map_err(|e| CredentialError::Invalid(e.to_string()))?;
        let iat = data.claims["iat"].as_u64().unwrap_or(0);
        let exp = data.claims["exp"].as_u64().unwrap_or(u64::MAX);
        if exp.saturating_sub(iat) > MAX_LIFETIME.as_secs() || iat > now_secs() + LEEWAY {
            return Err(CredentialError::TooLong);
        }
        let claims = serde_json::from_value(data.claims)
            .map_err(|e| CredentialError::Malformed(e.to_string()))?;
        Ok((signer, claims))
    }

    /// What `token` proved when it was verified, if it has not expired since.
    fn remembered(&self, token: &str) -> Option<Verified> {
        let (proof, exp) = self.verified.get(token)?;
        (now_secs() <= exp + LEEWAY).then_some(proof)
    }

    /// The calling service, if `token` is a valid credential for this service.
    pub fn verify(&self, token: &str) -> Result<String, CredentialError> {
        if let Some(Verified::Caller(caller)) = self.remembered(token) {
            return Ok(caller);
        }
        let (signer, claims): (String, ServiceClaims) = self.decode(token, &self.service)?;
        if claims.sub != signer || claims.digest.is_some() {
            return Err(CredentialError::Invalid("not a service credential".into()));
        }
        self.verified.insert(token.to_owned(), (Verified::Caller(signer.clone()), claims.exp));
        Ok(signer)
    }

    /// The sending service, if `token` vouches for exactly `payload`, sent to this service.
    pub fn verify_payload(&self, token: &str, payload: &[u8]) -> Result<String, CredentialError> {
        self.vouched(token, &digest(payload))
    }

    /// The signing service, if `token` is addressed to this service and its `digest` claim
    /// is `expected` (a signed payload's or a signed answer's).
    fn vouched(&self, token: &str, expected: &str) -> Result<String, CredentialError> {
        let (signer, claims): (String, ServiceClaims) = self.decode(token, &self.service)?;
        if claims.sub != signer {
            return Err(CredentialError::Invalid("not a service credential".into()));
        }
        match claims.digest {
            Some(d) if d == expected => Ok(signer),
            _ => Err(CredentialError::DigestMismatch),
        }
    }

    /// The end user a delegation names, if the public edge signed it.
    pub fn verify_delegation(&self, token: &str) -> Result<Principal, CredentialError> {
        if let Some(Verified::User(principal)) = self.remembered(token) {
            return Ok(principal);
        }
        let (signer, claims): (String, DelegationClaims) =
            self.decode(token, DELEGATION_AUDIENCE)?;
        if signer != *self.delegator {
            return Err(CredentialError::NotTheDelegator {
                expected: self.delegator.to_string(),
                got: signer,
            });
        }
        let user_id = UserId::parse(&claims.sub)
            .ok_or_else(|| CredentialError::Malformed("sub is not a user id".into()))?;
        let roles = claims
            .roles
            .iter()
            .map(|r| Role::parse(r))
            .collect::<Option<Vec<Role>>>()
            .ok_or_else(|| CredentialError::Malformed("unknown role".into()))?;
        let principal = Principal { user_id, roles };
        self.verified.insert(token.to_owned(), (Verified::User(principal.clone()), claims.exp));
        Ok(principal)
    }
}

#[cfg(test)]
mod tests;
