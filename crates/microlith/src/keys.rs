//! `microlith keys`: the token signing keys in the shop's data directory. Works with the
//! shop stopped or running: identity reads the key files again when they change.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use identity::{IdentityConfig, KeyStore as _};

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Make a new key sign access tokens. The old key stays published (and verifies the
    /// tokens it signed) until they have all expired plus a grace, then it is gone. A
    /// running shop signs with the new key from its next login. The same is
    /// `POST /api/v1/system/keys/rotate` (admin).
    #[command(after_help = "\
Example:
  microlith keys rotate --data-dir ./data")]
    Rotate(RotateArgs),
}

#[derive(Debug, Args)]
struct RotateArgs {
    /// The shop's data directory.
    #[arg(long, default_value = "./data", env = "MICROLITH_DATA_DIR", value_name = "DIR")]
    data_dir: PathBuf,

    /// How long the old key keeps verifying, in seconds: at least the shop's access token
    /// lifetime [default: the default token lifetime plus the default grace, 3900].
    #[arg(long, value_name = "SECONDS")]
    keep_old_for: Option<u64>,
}

pub fn run(args: KeysArgs) -> anyhow::Result<()> {
    let KeysCommand::Rotate(args) = args.command;
    anyhow::ensure!(
        args.data_dir.is_dir(),
        "no shop data in {} (pass --data-dir)",
        args.data_dir.display()
    );
    let keep_for = args
        .keep_old_for
        .map_or_else(|| IdentityConfig::default().retired_key_lifetime(), Duration::from_secs);
    let keys = runtime::FileKeys::open(&args.data_dir)?;
    let ring = keys.rotate(keep_for).context("cannot rotate the token signing key")?;
    let retired = ring.retired.last().context("no key was retired")?;
    println!("signing key:  {}", ring.active.kid());
    println!(
        "retired key:  {}  (verifies until {})",
        retired.jwk.common.key_id.as_deref().unwrap_or_default(),
        kernel::ms_to_rfc3339(retired.verify_until_ms)
    );
    Ok(())
}
