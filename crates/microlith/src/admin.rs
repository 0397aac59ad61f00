//! `microlith admin`: the admin account, read and written in the shop's own data, so it
//! works with the shop stopped (and with it running: logins read the same database).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use identity_api::Password;
use runtime::{ShopConfig, Topology};

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Give the admin account a new password (creating the account if missing, and giving
    /// it the admin role back): MICROLITH_ADMIN_PASSWORD, or a generated one printed once.
    /// The way back in when the admin's password is lost.
    #[command(after_help = "\
Environment:
  MICROLITH_ADMIN_EMAIL     the admin's email [default: admin@microlith.local]
  MICROLITH_ADMIN_PASSWORD  the new password (8 to 128 characters); without it, one is
                            generated and printed once

Example:
  microlith admin reset-password --data-dir ./data")]
    ResetPassword(ResetArgs),
}

#[derive(Debug, Args)]
struct ResetArgs {
    /// The shop's data directory.
    #[arg(long, default_value = "./data", env = "MICROLITH_DATA_DIR", value_name = "DIR")]
    data_dir: PathBuf,

    /// The shop's topology (a preset or a TOML file): where identity's database is.
    #[arg(long, default_value = "monolith", env = "MICROLITH_TOPOLOGY", value_name = "NAME|FILE")]
    topology: String,

    /// The database the shop runs with, if not the topology's: `sqlite` or `postgres://…`.
    #[arg(long, env = "MICROLITH_DATABASE", value_name = "URL")]
    database: Option<String>,
}

pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let AdminCommand::ResetPassword(args) = args.command;
    anyhow::ensure!(
        args.data_dir.is_dir(),
        "no shop data in {} (pass --data-dir)",
        args.data_dir.display()
    );
    let mut topology = Topology::load(&args.topology)?;
    if let Some(db) = &args.database {
        topology.set_database(db)?;
    }
    let mut admin = crate::up::admin_from_env()?;
    let generated = match admin.password {
        Some(_) => None,
        None => {
            let p = identity::generate_password();
            admin.password = Some(Password::new(p.clone()).map_err(anyhow::Error::msg)?);
            Some(p)
        }
    };
    let email = admin.email.clone();
    let mut config = ShopConfig::new(&args.data_dir, admin);
    config.topology = topology;
    runtime::bootstrap_admin(&config).await.context("cannot reset the admin's password")?;
    match generated {
        Some(p) => {
            println!("admin: {email}  password: {p}");
            println!("       (generated now and shown only this once: keep it)");
        }
        None => println!("admin: {email}  password set from MICROLITH_ADMIN_PASSWORD"),
    }
    Ok(())
}
