use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::EncodingKey;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse, ThumbprintHash,
};

/// The Ed25519 key that signs access tokens, with its public JWK. Its key id is the RFC 7638
/// thumbprint of the public key, so the same key always has the same `kid`.
#[derive(Clone)]
pub struct SigningKey {
    pem: String,
    encoding: EncodingKey,
    jwk: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid()).finish_non_exhaustive()
    }
}

impl SigningKey {
    pub fn generate() -> anyhow::Result<SigningKey> {
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let pem = key.to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)?;
        SigningKey::from_pem(&pem)
    }

    /// Reads a PKCS#8 PEM Ed25519 private key (what `generate` writes, or `openssl genpkey
    /// -algorithm ed25519`).
    pub fn from_pem(pem: &str) -> anyhow::Result<SigningKey> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| anyhow::anyhow!("not a PKCS#8 Ed25519 private key: {e}"))?;
        let encoding = EncodingKey::from_ed_pem(pem.as_bytes())?;
        let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
        let mut jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                ..Default::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x,
            }),
        };
        jwk.common.key_id = Some(jwk.thumbprint(ThumbprintHash::SHA256));
        Ok(SigningKey { pem: pem.to_owned(), encoding, jwk })
    }

    pub fn to_pem(&self) -> &str {
        &self.pem
    }

    pub fn kid(&self) -> &str {
        self.jwk.common.key_id.as_deref().unwrap_or_default()
    }

    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// The JWK Set (RFC 7517, section 5) that verifies this key's tokens: what identity
    /// publishes, and what the gateway reads from the data directory.
    pub fn public_jwks(&self) -> identity_api::Jwks {
        identity_api::Jwks(jsonwebtoken::jwk::JwkSet { keys: vec![self.jwk.clone()] })
    }

    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_keeps_the_kid() {
        let a = SigningKey::generate().unwrap();
        let b = SigningKey::from_pem(a.to_pem()).unwrap();
        assert_eq!(a.kid(), b.kid());
        assert!(!a.kid().is_empty());
        assert_ne!(a.kid(), SigningKey::generate().unwrap().kid());
        assert!(
            SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .is_err()
        );
    }
}
