//! Access tokens: the claims identity signs and the verifier the gateway runs on every
//! request. Both sides live in the contract so they cannot drift apart.

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use kernel::{Principal, Role, UserId};
use serde::{Deserialize, Serialize};

use crate::Jwks;

/// The JOSE `typ` of our access tokens (RFC 9068, section 2.1). Checked by hand: the
/// library does not. Verification also takes its full media type, `application/at+jwt`
/// (RFC 9068, section 4; RFC 7515, section 4.1.9: the `application/` prefix may be left
/// out, and media types compare case-insensitively).
pub const TOKEN_TYPE: &str = "at+jwt";
/// How much clock skew between signer and verifier is tolerated, in seconds.
pub const LEEWAY_SECS: u64 = 30;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    pub roles: Vec<Role>,
}

/// Who tokens are issued by and for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenAudience {
    pub issuer: String,
    pub audience: String,
}

impl Default for TokenAudience {
    fn default() -> Self {
        TokenAudience { issuer: "microlith".into(), audience: "microlith-api".into() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token is malformed")]
    Malformed,
    #[error("the access token is not an access token (typ must be at+jwt)")]
    WrongType,
    /// RFC 7515, section 4.1.11: a token that names critical header parameters the
    /// verifier does not understand is invalid. This verifier understands none.
    #[error("the access token has critical header parameters this verifier does not understand")]
    CriticalHeader,
    #[error("the access token was signed by an unknown key")]
    UnknownKey,
    #[error("the access token is invalid: {0}")]
    Invalid(String),
}

/// Verifies access tokens against a set of public keys.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier").field("kids", &self.keys.keys()).finish()
    }
}

impl TokenVerifier {
    /// Keys without a `kid` or of another algorithm are ignored: a token must name its key.
    pub fn new(jwks: &Jwks, audience: &TokenAudience) -> TokenVerifier {
        let keys = jwks
            .0
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some((kid, key))
            })
            .collect();
        // Only EdDSA: a token claiming any other algorithm (HS256 with the public key as
        // secret, `none`) is refused before its signature is looked at.
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[&audience.issuer]);
        validation.set_audience(&[&audience.audience]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        TokenVerifier { keys, validation }
    }

    pub fn knows_key(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// The key id a token names, if its header parses.
    pub fn key_id(token: &str) -> Option<String> {
        jsonwebtoken::decode_header(token).ok()?.kid
    }

    pub fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if !header.typ.as_deref().is_some_and(is_access_token_type) {
            return Err(TokenError::WrongType);
        }
        if names_critical_parameters(token)? {
            return Err(TokenError::CriticalHeader);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self.keys.get(&kid).ok_or(TokenError::UnknownKey)?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        let user_id = UserId::parse(&data.claims.sub)
            .ok_or_else(|| TokenError::Invalid("sub is not a user id".into()))?;
        Ok(Principal { user_id, roles: data.claims.roles })
    }
}

/// Whether `typ` names an access token: `at+jwt` or `application/at+jwt`, in any case.
fn is_access_token_type(typ: &str) -> bool {
    let typ = typ.to_ascii_lowercase();
    typ.strip_prefix("application/").unwrap_or(&typ) == TOKEN_TYPE
}

/// Whether the token's JOSE header has a `crit` parameter (the library's header type
/// drops it, so the header is read again here).
fn names_critical_parameters(token: &str) -> Result<bool, TokenError> {
    use base64::Engine as _;
    let encoded = token.split('.').next().ok_or(TokenError::Malformed)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| TokenError::Malformed)?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    Ok(header.contains_key("crit"))
}
