//! Handing a process's configuration to the processes it starts (the supervisor's
//! children, the function host's instances): the whole resolved [`ShopConfig`] as one JSON
//! value in the environment, not re-printed flag by flag, so that a child runs with exactly
//! its parent's topology and settings.

use std::ffi::OsString;

use anyhow::Context as _;
use identity_api::Password;

use crate::{ProcessRole, ShopConfig};

/// The environment variable that hands a child process its [`ShopConfig`], as JSON.
pub const CONFIG_ENV: &str = "MICROLITH_RESOLVED_CONFIG";
/// The environment variable with the admin's password.
pub const ADMIN_PASSWORD_ENV: &str = "MICROLITH_ADMIN_PASSWORD";

/// The environment a child process is started with, on top of its parent's.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildEnv {
    /// Variables to set.
    pub set: Vec<(OsString, OsString)>,
    /// Variables of the parent's environment the child must not inherit (secrets).
    pub remove: Vec<OsString>,
}

impl ShopConfig {
    /// What a child process started as `process` is given: this configuration as JSON, and
    /// the admin's password if it bootstraps the admin (removed otherwise).
    pub fn child_env(&self, process: &crate::plan::Process) -> anyhow::Result<ChildEnv> {
        let json = serde_json::to_string(self).context("cannot encode the configuration")?;
        let mut env: Vec<(OsString, OsString)> = vec![(CONFIG_ENV.into(), json.into())];
        let mut remove: Vec<OsString> = Vec::new();
        match (&self.admin.password, process.bootstraps_admin) {
            (Some(p), true) => env.push((ADMIN_PASSWORD_ENV.into(), p.expose().into())),
            _ => remove.push(ADMIN_PASSWORD_ENV.into()),
        }
        Ok(ChildEnv { set: env, remove })
    }

    /// The configuration a parent handed this process in [`CONFIG_ENV`], if any, as
    /// `role`. Its topology is checked again, as a file's would be.
    pub fn from_parent(role: ProcessRole) -> anyhow::Result<Option<ShopConfig>> {
        let Some(json) = std::env::var_os(CONFIG_ENV) else { return Ok(None) };
        let json = json.into_string().map_err(|_| anyhow::anyhow!("{CONFIG_ENV} is not UTF-8"))?;
        let mut config: ShopConfig =
            serde_json::from_str(&json).with_context(|| format!("{CONFIG_ENV} does not decode"))?;
        config.topology.validate().context("the topology handed over is not valid")?;
        config.role = role;
        config.admin.password = admin_password_from_env()?;
        Ok(Some(config))
    }
}

/// The admin's password from [`ADMIN_PASSWORD_ENV`], if set; an unacceptable one is an
/// error rather than ignored.
pub fn admin_password_from_env() -> anyhow::Result<Option<Password>> {
    match std::env::var(ADMIN_PASSWORD_ENV) {
        Ok(p) => Ok(Some(
            Password::new(p).with_context(|| format!("{ADMIN_PASSWORD_ENV} is not acceptable"))?,
        )),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AdminCredentials, Plan, Topology};

    fn config() -> ShopConfig {
        let admin = AdminCredentials {
            email: kernel::Email::parse("boss@example.com").unwrap(),
            password: Some(Password::new("a secret password".into()).unwrap()),
        };
        let mut c = ShopConfig::new("/srv/shop data", admin);
        c.topology = Topology::hybrid();
        c.topology.set_database("postgres://db.internal/shop").unwrap();
        c.orders.saga_deadline = std::time::Duration::from_millis(1500);
        c.gateway.cors_origins = vec!["https://shop.example".into()];
        c.bus_namespace = "tenant-7".into();
        c
    }

    fn decode(env: &[(OsString, OsString)]) -> ShopConfig {
        let json = &env.iter().find(|(k, _)| k == CONFIG_ENV).unwrap().1;
        serde_json::from_str(json.to_str().unwrap()).unwrap()
    }

    #[test]
    fn a_child_gets_the_resolved_configuration_whole() {
        let parent = config();
        let plan = Plan::of(&parent.topology);
        let payments = plan.process("payments-1").unwrap();
        let ChildEnv { set: env, remove } = parent.child_env(payments).unwrap();
        let child = decode(&env);
        assert_eq!(child.topology, parent.topology, "overrides included");
        assert_eq!(child.data_dir, parent.data_dir);
        assert_eq!(child.orders.saga_deadline, parent.orders.saga_deadline);
        assert_eq!(child.gateway.cors_origins, parent.gateway.cors_origins);
        assert_eq!(child.gateway.per_user, parent.gateway.per_user);
        assert_eq!(child.identity.token_ttl, parent.identity.token_ttl);
        assert_eq!(child.bus_namespace, "tenant-7");
        assert_eq!(child.admin.email, parent.admin.email);
        child.topology.validate().unwrap();

        // The password is a secret: only for the process that bootstraps the admin.
        assert!(child.admin.password.is_none());
        assert!(!env.iter().any(|(k, _)| k == ADMIN_PASSWORD_ENV));
        assert_eq!(remove, [OsString::from(ADMIN_PASSWORD_ENV)], "not even inherited");
        let json = &env[0].1;
        assert!(!json.to_str().unwrap().contains("a secret password"));

        let core = plan.process("core-1").unwrap();
        let ChildEnv { set: env, remove } = parent.child_env(core).unwrap();
        let given = env.iter().find(|(k, _)| k == ADMIN_PASSWORD_ENV).map(|(_, v)| v.clone());
        assert_eq!(given, Some("a secret password".into()));
        assert!(remove.is_empty());
    }
}
