use kernel::{Email, Role, TextError, UserId, display_name};
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
    /// 8 to 128 characters.
    pub password: String,
    /// 1 to 100 characters.
    pub name: String,
}

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

impl Password {
    pub const MIN: usize = 8;
    pub const MAX: usize = 128;

    /// A password for a new account: 8 to 128 characters, not trimmed.
    pub fn new(s: String) -> Result<Password, TextError> {
        let n = s.chars().count();
        if (Self::MIN..=Self::MAX).contains(&n) {
            Ok(Password(s))
        } else {
            Err(TextError::Length { field: "password", min: Self::MIN, max: Self::MAX })
        }
    }

    /// A password offered at login: only bounded, so that a wrong-length password is a plain
    /// wrong password and a 10 MB one is not hashed.
    pub fn offered(s: String) -> Option<Password> {
        (s.len() <= 4 * Self::MAX).then_some(Password(s))
    }

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
            name: display_name("name", &req.name, 1, 100)?,
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
