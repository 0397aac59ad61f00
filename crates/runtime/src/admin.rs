//! The admin account. Wherever identity runs, the account is created (or reset) by one
//! function, [`bootstrap_admin`], that opens identity's database directly: `up` calls it
//! before it starts any process, so every placement shows a generated password the same
//! way and `MICROLITH_ADMIN_PASSWORD` resets it at any start; a process that hosts
//! identity and was started some other way (an orchestrator) calls it as it wires
//! identity; `microlith admin reset-password` calls it with the shop stopped.

use anyhow::Context as _;
use identity::{AdminBootstrap, Identity};
use kernel::Email;

use crate::topology::Module;
use crate::{ShopConfig, open_db};

/// Creates `config`'s admin account if missing, with `config.admin.password` or a
/// generated one (returned, its only copy); an existing account gets the admin role back,
/// and the password when one is given.
///
/// # Errors
/// Identity's database or the token signing key cannot be opened or created.
pub async fn bootstrap_admin(config: &ShopConfig) -> anyhow::Result<AdminBootstrap> {
    crate::create_private_dir(&config.data_dir)?;
    let database = &config.topology.infra.database;
    let db = open_db(database, &config.data_dir, Module::Identity.as_str()).await?;
    let keys = crate::keys::FileKeys::open(&config.data_dir)?;
    let identity = Identity::new(db.clone(), keys, config.identity.clone()).await?;
    let done = identity
        .bootstrap_admin(&config.admin.email, config.admin.password.clone())
        .await
        .context("cannot create the admin account");
    db.close().await;
    done
}

/// The lines that tell the operator what [`bootstrap_admin`] did: the only place a
/// generated password is ever shown.
pub fn admin_lines(email: &Email, done: &AdminBootstrap) -> Vec<String> {
    match done {
        AdminBootstrap::Created { generated_password: Some(p) } => vec![
            format!("  admin:  {email}  password: {p}"),
            "          (generated now and shown only this once: keep it; \
             `microlith admin reset-password` sets a new one)"
                .to_owned(),
        ],
        AdminBootstrap::Created { generated_password: None } => {
            vec![format!("  admin:  {email}  (password from MICROLITH_ADMIN_PASSWORD)")]
        }
        AdminBootstrap::Existing => vec![format!("  admin:  {email}  (existing account)")],
    }
}
