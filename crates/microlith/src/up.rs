use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use gateway::RateQuota;
use identity::AdminBootstrap;
use identity_api::Password;
use kernel::Email;
use runtime::{AdminCredentials, Shop, ShopConfig, Topology};

const DEFAULT_ADMIN_EMAIL: &str = "admin@microlith.local";

#[derive(Debug, Args)]
#[command(after_help = "\
Environment:
  MICROLITH_ADMIN_EMAIL     admin account to create or promote [default: admin@microlith.local]
  MICROLITH_ADMIN_PASSWORD  its password (8 to 128 characters); without it, a first start
                            generates one and prints it once
  RUST_LOG                  log filter, e.g. `debug` or `info,gateway=debug` [default: info]

Example:
  microlith up --data-dir ./data --listen 127.0.0.1:8080")]
pub struct UpArgs {
    /// Which placement to run. Only `monolith` (every module in this process) exists so far.
    #[arg(long, default_value = "monolith", value_name = "NAME")]
    topology: String,

    /// Directory for the databases (one SQLite file per module) and the token signing key.
    /// Created if missing; reused on the next start.
    #[arg(long, default_value = "./data", env = "MICROLITH_DATA_DIR", value_name = "DIR")]
    data_dir: PathBuf,

    /// Address the shop listens on. Port 0 picks a free port (printed at start).
    #[arg(long, default_value = "127.0.0.1:8080", env = "MICROLITH_LISTEN", value_name = "ADDR")]
    listen: SocketAddr,

    /// Do not create the demo catalog on a first start (an empty catalog).
    #[arg(long)]
    no_seed: bool,

    /// Requests per second allowed to each signed-in user.
    #[arg(long, default_value_t = 20, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    rate_limit_user: u32,

    /// Burst allowed to each signed-in user above the per-second rate.
    #[arg(long, default_value_t = 60, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    rate_limit_user_burst: u32,

    /// Requests per second allowed to each client address without a token.
    #[arg(long, default_value_t = 50, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    rate_limit_address: u32,

    /// Burst allowed to each client address without a token.
    #[arg(long, default_value_t = 100, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    rate_limit_address_burst: u32,

    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, default_value_t = 64 * 1024, value_name = "BYTES")]
    body_limit: usize,

    /// Origin allowed to call the API from a browser (repeatable). Default: any origin.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    cors_origins: Vec<String>,

    /// Lifetime of access tokens, in seconds.
    #[arg(long, default_value_t = 3600, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(60..=86_400))]
    token_ttl: u64,

    /// How long a checkout may take before the order is cancelled (`deadline_exceeded`)
    /// and its stock released; orders wait `pending` this long while payments is down.
    #[arg(long, default_value_t = 900, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    saga_deadline: u64,
}

fn admin_from_env() -> anyhow::Result<AdminCredentials> {
    let email =
        std::env::var("MICROLITH_ADMIN_EMAIL").unwrap_or_else(|_| DEFAULT_ADMIN_EMAIL.into());
    let email =
        Email::parse(&email).context("MICROLITH_ADMIN_EMAIL is not a valid email address")?;
    let password = match std::env::var("MICROLITH_ADMIN_PASSWORD") {
        Ok(p) => Some(Password::new(p).context("MICROLITH_ADMIN_PASSWORD is not acceptable")?),
        Err(_) => None,
    };
    Ok(AdminCredentials { email, password })
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let topology = Topology::parse(&args.topology)?;
    let quota = |rate, burst| RateQuota::new(rate, burst).context("rate limits must be at least 1");
    let mut config = ShopConfig::new(&args.data_dir, admin_from_env()?);
    config.topology = topology;
    config.seed = !args.no_seed;
    config.gateway.per_user = quota(args.rate_limit_user, args.rate_limit_user_burst)?;
    config.gateway.per_address = quota(args.rate_limit_address, args.rate_limit_address_burst)?;
    config.gateway.body_limit = args.body_limit;
    config.gateway.cors_origins = args.cors_origins;
    config.identity.token_ttl = Duration::from_secs(args.token_ttl);
    config.orders.saga_deadline = Duration::from_secs(args.saga_deadline);
    let admin_email = config.admin.email.clone();

    // Bind first: a taken port should fail before anything is written.
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let shop = Shop::start(config).await?;
    let data_dir = std::fs::canonicalize(&shop.data_dir).unwrap_or_else(|_| shop.data_dir.clone());

    println!("Microlith is running (topology: {topology})");
    println!("  shop:   http://{addr}  (API under /api/v1, OpenAPI at /openapi.json)");
    println!("  data:   {}  (one SQLite database per module)", data_dir.display());
    match &shop.admin {
        AdminBootstrap::Created { generated_password: Some(p) } => {
            println!("  admin:  {admin_email}  password: {p}");
            println!("          (generated now and shown only this once: keep it)");
        }
        AdminBootstrap::Created { generated_password: None } => {
            println!("  admin:  {admin_email}  (password from MICROLITH_ADMIN_PASSWORD)");
        }
        AdminBootstrap::Existing => println!("  admin:  {admin_email}  (existing account)"),
    }
    if shop.seeded > 0 {
        println!("  seeded: {} demo products with stock", shop.seeded);
    }
    println!("Press Ctrl-C to stop.");

    gateway::serve(listener, shop.router.clone(), shutdown_signal()).await?;
    shop.close().await;
    println!("Stopped.");
    Ok(())
}

/// Ctrl-C, or SIGTERM as sent by service managers and orchestrators.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
