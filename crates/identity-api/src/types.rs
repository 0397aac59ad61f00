use std::borrow::Cow;

use kernel::{Email, Role, TextError, UserId, display_name};
use precis_profiles::OpaqueString;
use precis_profiles::precis_core::profile::Profile as _;
use serde::{Deserialize, Serialize};

/// A user as the API shows it. Never carries the password hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub name: String,
    pub roles: Vec<Role>,
    /// RFC 3339.
    pub created_at: String,
}

/// `POST /api/v1/auth/register` body. Unknown fields (`role`, `id`, …) are refused.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    /// Judged as [`Password::new`] says; the schema shows its bounds.
    #[schema(value_type = Password)]
    pub password: String,
    /// A display name: 1 to [`NAME_MAX`] characters once prepared as RFC 8266's Nickname
    /// profile says; invisible and direction-changing characters are refused.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
}

/// Longest display name, in characters (the schema's `maxLength` above says the same).
pub const NAME_MAX: usize = 100;

/// `POST /api/v1/auth/login` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccessToken {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

/// What a signing key rotation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyRotation {
    /// The `kid` of the key that signs from now on.
    pub kid: String,
    /// The `kid` of the key it replaced.
    pub retired_kid: String,
    /// Until when (RFC 3339) the replaced key stays published and verifies its tokens: the
    /// token lifetime plus a grace.
    pub retired_verifies_until: String,
}

/// The published signing keys (RFC 7517 JWK set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(value_type = Object)]
#[serde(transparent)]
pub struct Jwks(pub jsonwebtoken::jwk::JwkSet);

/// A password as typed; never printed.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

// The schema is made from the same bounds as the parsing: one source.
impl utoipa::PartialSchema for Password {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::{KnownFormat, SchemaFormat};
        let description = "8 to 128 characters once prepared (RFC 8265 OpaqueString); not all \
                           spaces, not one character repeated, not a common password.";
        let format = Some(SchemaFormat::KnownFormat(KnownFormat::Password));
        kernel::schema::bounded_string(Self::MIN, Self::MAX, None, format, description)
    }
}

impl utoipa::ToSchema for Password {}

impl Password {
    /// Length bounds, in characters after preparation (NIST SP 800-63B, section 3.1.1.2:
    /// at least 8, and at least 64 allowed).
    pub const MIN: usize = 8;
    pub const MAX: usize = 128;

    /// A password for a new account. It is judged as it will be hashed, prepared as RFC
    /// 8265's OpaqueString profile says ([`Password::prepared`]), and refused when it is
    /// too short or too long, all spaces or one character repeated, or among the common
    /// and trivial passwords of zxcvbn's bundled lists (30,000 common passwords, names,
    /// words, keyboard runs and sequences; refused below 10^3 estimated guesses). Not
    /// trimmed: spaces count.
    pub fn new(s: String) -> Result<Password, TextError> {
        let length = TextError::Length { field: "password", min: Self::MIN, max: Self::MAX };
        // Bounded before the profile and the estimator do any work on it.
        if s.len() > 4 * Self::MAX {
            return Err(length);
        }
        let prepared = OpaqueString::new()
            .enforce(s.as_str())
            .map_err(|_| TextError::Characters { field: "password" })?;
        let n = prepared.chars().count();
        if !(Self::MIN..=Self::MAX).contains(&n) {
            return Err(length);
        }
        let guessable = |why| TextError::Guessable { field: "password", why };
        if prepared.trim().is_empty() {
            return Err(guessable("it is all spaces"));
        }
        let mut chars = prepared.chars();
        if let Some(first) = chars.next()
            && chars.all(|c| c == first)
        {
            return Err(guessable("it is one character repeated"));
        }
        if zxcvbn::zxcvbn(&prepared, &[]).score() == zxcvbn::Score::Zero {
            return Err(guessable("it is a common password or a simple pattern"));
        }
        Ok(Password(s))
    }

    /// A password offered at login: only bounded, so that a wrong-length password is a plain
    /// wrong password and a 10 MB one is not hashed.
    pub fn offered(s: String) -> Option<Password> {
        (s.len() <= 4 * Self::MAX).then_some(Password(s))
    }

    /// The password as hashed and verified: RFC 8265's OpaqueString profile (section 4.2:
    /// non-ASCII spaces become spaces, NFC), so that it matches however a keyboard composed
    /// its characters. One the profile refuses stays as typed: it matches no hash made
    /// from a prepared password.
    pub fn prepared(&self) -> String {
        OpaqueString::new()
            .enforce(self.0.as_str())
            .map_or_else(|_| self.0.clone(), Cow::into_owned)
    }

    /// The password as typed, byte for byte: only for hashes made before passwords were
    /// prepared.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

// On the internal wire only (login and register calls to a remote identity).
impl Serialize for Password {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Password, D::Error> {
        let s = String::deserialize(d)?;
        Password::offered(s).ok_or_else(|| serde::de::Error::custom("password is too long"))
    }
}

/// Validated input of `register`; checked again when it arrives over the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "RegisterRequest", into = "RegisterRequest")]
pub struct NewUser {
    pub email: Email,
    pub password: Password,
    pub name: String,
}

impl NewUser {
    pub fn parse(req: RegisterRequest) -> Result<NewUser, TextError> {
        Ok(NewUser {
            email: Email::parse(&req.email)?,
            password: Password::new(req.password)?,
            name: display_name("name", &req.name, 1, NAME_MAX)?,
        })
    }
}

impl TryFrom<RegisterRequest> for NewUser {
    type Error = TextError;
    fn try_from(req: RegisterRequest) -> Result<NewUser, TextError> {
        NewUser::parse(req)
    }
}

impl From<NewUser> for RegisterRequest {
    fn from(u: NewUser) -> RegisterRequest {
        RegisterRequest { email: u.email.into(), password: u.password.0, name: u.name }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema's bounds of a display name are the parser's (utoipa takes a literal).
    #[test]
    fn the_name_schema_says_the_name_rule() {
        use utoipa::PartialSchema as _;
        let schema = serde_json::to_value(RegisterRequest::schema()).unwrap();
        let name = &schema["properties"]["name"];
        assert_eq!(name["maxLength"], NAME_MAX, "{schema}");
        assert_eq!(name["minLength"], 1, "{schema}");
        let long = "n".repeat(NAME_MAX + 1);
        assert!(display_name("name", &long, 1, NAME_MAX).is_err());
    }

    /// NIST SP 800-63B's rules, on the password as prepared (issue 19's cases).
    #[test]
    fn new_passwords_follow_the_rules() {
        let refused = |p: &str| Password::new(p.to_owned()).err();
        assert!(matches!(refused("        "), Some(TextError::Guessable { .. })), "eight spaces");
        assert!(
            matches!(
                refused("\u{3000}\u{3000}\u{3000}\u{3000}\u{3000}\u{3000}\u{3000}\u{3000}"),
                Some(TextError::Guessable { .. })
            ),
            "eight ideographic spaces"
        );
        assert!(matches!(refused("aaaaaaaaaaaa"), Some(TextError::Guessable { .. })));
        for common in ["password", "12345678", "qwertyuiop", "iloveyou", "abcdefgh", "password1"] {
            assert!(matches!(refused(common), Some(TextError::Guessable { .. })), "{common}");
        }
        assert!(matches!(refused("short1!"), Some(TextError::Length { .. })));
        assert!(matches!(refused(&"x7-".repeat(43)), Some(TextError::Length { .. })), "129");
        assert!(matches!(refused("tab\there-ok-1"), Some(TextError::Characters { .. })));
        assert!(Password::new("Gr\u{fc}\u{df}e-aus-K\u{f6}ln-2024".into()).is_ok());
        assert!(Password::new("correct horse battery staple".into()).is_ok());
        let long: String = "a-long-passphrase-".repeat(7).chars().take(128).collect();
        assert!(Password::new(long).is_ok(), "128 characters are allowed");
    }

    #[test]
    fn a_password_is_prepared_as_opaque_string() {
        let composed = Password::offered("Gr\u{fc}\u{df}e".into()).unwrap();
        let decomposed = Password::offered("Gru\u{308}\u{df}e".into()).unwrap();
        assert_eq!(composed.prepared(), decomposed.prepared());
        assert_ne!(composed.expose(), decomposed.expose());
        // Non-ASCII spaces are spaces.
        assert_eq!(Password::offered("a\u{a0}b".into()).unwrap().prepared(), "a b");
    }
}
