use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bus::{Outbox, TraceContext};
use identity_api::events::RegistrationAttempted;
use identity_api::token::{Claims, TOKEN_TYPE, TokenAudience};
use identity_api::{
    AccessToken, IdentityError, IdentityService, Jwks, KeyRotation, NewUser, Password, User,
};
use jsonwebtoken::{Algorithm, Header};
use kernel::{Email, RequestContext, Role, UserId};
use sqlx::Row as _;
use store::Db;

use crate::{KeyStore, password, throttle};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct IdentityConfig {
    pub audience: TokenAudience,
    /// Lifetime of an access token.
    pub token_ttl: Duration,
    /// How long a rotated-out key is still published after its last token has expired:
    /// time for clocks that differ and for verifiers whose copy of the keys is older.
    #[serde(default = "IdentityConfig::default_retired_key_grace")]
    pub retired_key_grace: Duration,
}

impl IdentityConfig {
    fn default_retired_key_grace() -> Duration {
        Duration::from_secs(300)
    }

    /// How long a key keeps verifying once rotated out: no token it signed outlives it.
    pub fn retired_key_lifetime(&self) -> Duration {
        self.token_ttl + self.retired_key_grace
    }
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            audience: TokenAudience::default(),
            token_ttl: Duration::from_secs(3600),
            retired_key_grace: Self::default_retired_key_grace(),
        }
    }
}

/// What `bootstrap_admin` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminBootstrap {
    /// A new admin account; `generated_password` is set when none was supplied and is the
    /// only copy of it anywhere.
    Created { generated_password: Option<String> },
    /// The account existed; it has the admin role (and the supplied password, if any).
    Existing,
}

/// The identity module.
pub struct Identity {
    db: Db,
    keys: Arc<dyn KeyStore>,
    config: IdentityConfig,
    outbox: Outbox,
}

impl Identity {
    /// Applies identity's migrations to `db` and returns the module.
    pub async fn new(
        db: Db,
        keys: Arc<dyn KeyStore>,
        config: IdentityConfig,
    ) -> anyhow::Result<Identity> {
        db.migrate(&MIGRATOR).await?;
        crate::email_forms::prepare_stored_emails(&db).await?;
        let outbox = Outbox::new(db.clone(), "identity").await?;
        Ok(Identity { db, keys, config, outbox })
    }

    pub fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }

    /// Tells the owner of `email` that someone tried to register with it.
    async fn tell_owner(&self, ctx: &RequestContext, email: &Email) -> Result<(), IdentityError> {
        let mut tx = self.db.begin_write().await.map_err(IdentityError::internal)?;
        let row = sqlx::query("SELECT id FROM users WHERE email = $1")
            .bind(email.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(IdentityError::internal)?;
        let Some(row) = row else { return Ok(()) };
        let id: String = row.try_get("id").map_err(IdentityError::internal)?;
        let user_id =
            UserId::parse(&id).ok_or_else(|| IdentityError::internal("corrupt user id"))?;
        let event = RegistrationAttempted { user_id };
        self.outbox
            .add(&mut tx, &event, TraceContext::from_request(ctx))
            .await
            .map_err(IdentityError::internal)?;
        tx.commit().await.map_err(IdentityError::internal)?;
        self.outbox.wake();
        Ok(())
    }

    /// Makes sure `email` is an admin. Run by the composition root at start-up.
    /// Whether an account with this email exists.
    pub async fn has_user(&self, email: &Email) -> anyhow::Result<bool> {
        let row = sqlx::query("SELECT id FROM users WHERE email = $1")
            .bind(email.as_str())
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.is_some())
    }

    pub async fn bootstrap_admin(
        &self,
        email: &Email,
        password: Option<Password>,
    ) -> anyhow::Result<AdminBootstrap> {
        if let Some(row) = sqlx::query("SELECT id FROM users WHERE email = $1")
            .bind(email.as_str())
            .fetch_optional(self.db.pool())
            .await?
        {
            let id: String = row.try_get("id")?;
            sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
                .bind(Role::Admin.as_str())
                .bind(&id)
                .execute(self.db.pool())
                .await?;
            if let Some(p) = password {
                self.set_password(&id, &p).await?;
            }
            return Ok(AdminBootstrap::Existing);
        }
        let (password, generated) = match password {
            Some(p) => (p, None),
            None => {
                let g = generate_password();
                (Password::new(g.clone()).map_err(anyhow::Error::msg)?, Some(g))
            }
        };
        let new = NewUser { email: email.clone(), password, name: "Administrator".into() };
        self.insert_user(new, Role::Admin).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(AdminBootstrap::Created { generated_password: generated })
    }

    /// Stores `p`'s hash, prepared ([`PREPARED`]), as the password of user `id`.
    async fn set_password(&self, id: &str, p: &Password) -> anyhow::Result<()> {
        let hash = password::hash(p.prepared()).await?;
        sqlx::query("UPDATE users SET password_hash = $1, password_scheme = $2 WHERE id = $3")
            .bind(hash)
            .bind(PREPARED)
            .bind(id)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    async fn insert_user(&self, new: NewUser, role: Role) -> Result<User, IdentityError> {
        let hash =
            password::hash(new.password.prepared()).await.map_err(IdentityError::internal)?;
        let id = UserId::new();
        let now = kernel::now_ms();
        sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, role, created_at, password_scheme) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id.to_string())
        .bind(new.email.as_str())
        .bind(&new.name)
        .bind(hash)
        .bind(role.as_str())
        .bind(now)
        .bind(PREPARED)
        .execute(self.db.pool())
        .await
        .map_err(|e| {
            if store::is_unique_violation(&e) {
                IdentityError::EmailTaken
            } else {
                IdentityError::internal(e)
            }
        })?;
        Ok(User {
            id,
            email: new.email,
            name: new.name,
            roles: roles_of(role),
            created_at: kernel::ms_to_rfc3339(now),
        })
    }

    fn issue(&self, user_id: UserId, roles: Vec<Role>) -> Result<AccessToken, IdentityError> {
        let now = kernel::now_ms() as u64 / 1000;
        let ttl = self.config.token_ttl.as_secs();
        let claims = Claims {
            iss: self.config.audience.issuer.clone(),
            aud: self.config.audience.audience.clone(),
            sub: user_id.to_string(),
            exp: now + ttl,
            nbf: now,
            iat: now,
            jti: uuid::Uuid::now_v7().to_string(),
            roles,
        };
        let keys = self.keys.current().map_err(IdentityError::internal)?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(TOKEN_TYPE.into());
        header.kid = Some(keys.active.kid().to_owned());
        let token = jsonwebtoken::encode(&header, &claims, keys.active.encoding_key())
            .map_err(IdentityError::internal)?;
        Ok(AccessToken { access_token: token, token_type: "Bearer".into(), expires_in: ttl })
    }
}

fn roles_of(role: Role) -> Vec<Role> {
    match role {
        Role::Admin => vec![Role::Admin, Role::Customer],
        Role::Customer => vec![Role::Customer],
    }
}

/// `users.password_scheme` of a hash made from the password prepared as RFC 8265's
/// OpaqueString profile says; 0 is the bytes as typed (migration 0003).
const PREPARED: i64 = 1;

/// A new random password: 24 ASCII letters and digits (about 143 bits).
pub fn generate_password() -> String {
    use rand::Rng as _;
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

fn user_from_row(row: &sqlx::any::AnyRow) -> Result<User, IdentityError> {
    let id: String = row.try_get("id").map_err(IdentityError::internal)?;
    let email: String = row.try_get("email").map_err(IdentityError::internal)?;
    let role: String = row.try_get("role").map_err(IdentityError::internal)?;
    Ok(User {
        id: UserId::parse(&id).ok_or_else(|| IdentityError::internal("corrupt user id"))?,
        email: Email::parse(&email).map_err(IdentityError::internal)?,
        name: row.try_get("name").map_err(IdentityError::internal)?,
        roles: roles_of(Role::parse(&role).ok_or_else(|| IdentityError::internal("corrupt role"))?),
        created_at: kernel::ms_to_rfc3339(
            row.try_get("created_at").map_err(IdentityError::internal)?,
        ),
    })
}

#[async_trait]
impl IdentityService for Identity {
    /// Registers a customer. An email that already has an account gets the same answer
    /// (a user that was not stored, with a fresh id), after the same password-hashing
    /// work, and its owner a notification: the caller cannot tell which emails have
    /// accounts.
    async fn register(&self, ctx: &RequestContext, user: NewUser) -> Result<User, IdentityError> {
        let (email, name) = (user.email.clone(), user.name.clone());
        match self.insert_user(user, Role::Customer).await {
            Ok(user) => {
                tracing::info!(user_id = %user.id, "user registered");
                Ok(user)
            }
            Err(IdentityError::EmailTaken) => {
                self.tell_owner(ctx, &email).await?;
                tracing::info!("registration with an existing email: the owner was told");
                Ok(User {
                    id: UserId::new(),
                    email,
                    name,
                    roles: roles_of(Role::Customer),
                    created_at: kernel::ms_to_rfc3339(kernel::now_ms()),
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn login(
        &self,
        _ctx: &RequestContext,
        email: Email,
        password: Password,
    ) -> Result<AccessToken, IdentityError> {
        let standing =
            throttle::standing(&self.db, &email).await.map_err(IdentityError::internal)?;
        if let Some(retry_after_s) = standing.wait_s {
            return Err(IdentityError::TooManyAttempts { retry_after_s });
        }
        let row = sqlx::query(
            "SELECT id, password_hash, password_scheme, role FROM users WHERE email = $1",
        )
        .bind(email.as_str())
        .fetch_optional(self.db.pool())
        .await
        .map_err(IdentityError::internal)?;
        let (stored, scheme) = match &row {
            Some(r) => (
                Some(r.try_get::<String, _>("password_hash").map_err(IdentityError::internal)?),
                r.try_get::<i64, _>("password_scheme").map_err(IdentityError::internal)?,
            ),
            None => (None, PREPARED),
        };
        // A hash from before passwords were prepared was made of the bytes as typed.
        let offered =
            if scheme == PREPARED { password.prepared() } else { password.expose().to_owned() };
        let ok = password::verify(offered, stored).await.map_err(IdentityError::internal)?;
        let row = match row {
            Some(r) if ok => r,
            _ => {
                throttle::failed(&self.db, &email).await.map_err(IdentityError::internal)?;
                return Err(IdentityError::InvalidCredentials);
            }
        };
        if standing.has_failures {
            throttle::succeeded(&self.db, &email).await.map_err(IdentityError::internal)?;
        }
        let id: String = row.try_get("id").map_err(IdentityError::internal)?;
        if scheme != PREPARED {
            // The one login that can still use the hash of the bytes as typed: from now on
            // the password matches however it is composed.
            if let Err(e) = self.set_password(&id, &password).await {
                tracing::warn!(error = %format!("{e:#}"), "cannot rehash a password prepared");
            }
        }
        let role: String = row.try_get("role").map_err(IdentityError::internal)?;
        let id = UserId::parse(&id).ok_or_else(|| IdentityError::internal("corrupt user id"))?;
        let role = Role::parse(&role).ok_or_else(|| IdentityError::internal("corrupt role"))?;
        self.issue(id, roles_of(role))
    }

    async fn user(&self, ctx: &RequestContext, id: UserId) -> Result<User, IdentityError> {
        let caller = ctx.user()?;
        // Another user's account is "not found", not "forbidden": ids are not confirmed.
        if caller.user_id != id && !caller.is_admin() {
            return Err(IdentityError::UserNotFound);
        }
        let row = sqlx::query("SELECT id, email, name, role, created_at FROM users WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(self.db.pool())
            .await
            .map_err(IdentityError::internal)?
            .ok_or(IdentityError::UserNotFound)?;
        user_from_row(&row)
    }

    async fn jwks(&self, _ctx: &RequestContext) -> Result<Jwks, IdentityError> {
        let keys = self.keys.current().map_err(IdentityError::internal)?;
        Ok(keys.jwks(kernel::now_ms()))
    }

    async fn rotate_signing_key(&self, ctx: &RequestContext) -> Result<KeyRotation, IdentityError> {
        let admin = ctx.admin()?.user_id;
        let keep_for = self.config.retired_key_lifetime();
        let keys = self.keys.rotate(keep_for).map_err(IdentityError::internal)?;
        // `rotate` retires the key it replaces last.
        let retired =
            keys.retired.last().ok_or_else(|| IdentityError::internal("no retired key"))?;
        let retired_kid = retired.jwk.common.key_id.clone().unwrap_or_default();
        tracing::info!(%admin, kid = keys.active.kid(), %retired_kid, "token signing key rotated");
        Ok(KeyRotation {
            kid: keys.active.kid().to_owned(),
            retired_kid,
            retired_verifies_until: kernel::ms_to_rfc3339(retired.verify_until_ms),
        })
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
