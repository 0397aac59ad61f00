use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use gateway::RateQuota;
use identity::AdminBootstrap;
use identity_api::Password;
use kernel::Email;
use runtime::{AdminCredentials, DiscoveryKind, Role, Shop, ShopConfig, Topology};

const DEFAULT_ADMIN_EMAIL: &str = "admin@microlith.local";

/// What every process of a topology is started with; `up` hands these flags on to the
/// processes it supervises.
#[derive(Debug, Args, Clone)]
pub struct ShopArgs {
    /// Where each module runs: a preset (`monolith`: one process; `microservices`: one
    /// process per module plus the gateway, supervised by this command; `serverless`;
    /// `hybrid`) or the path of a topology TOML file.
    #[arg(long, default_value = "monolith", env = "MICROLITH_TOPOLOGY", value_name = "NAME|FILE")]
    pub(crate) topology: String,

    /// Override the topology's database: `sqlite` (one file per module in the data
    /// directory) or `postgres://…` (one schema per module).
    #[arg(long, env = "MICROLITH_DATABASE", value_name = "URL")]
    database: Option<String>,

    /// Override the topology's bus: `embedded` or `nats://…` (JetStream).
    #[arg(long, env = "MICROLITH_BUS", value_name = "URL")]
    bus: Option<String>,

    /// Override the topology's discovery: `local` (a registry file in the data directory,
    /// for processes on one machine) or `nats://…` (a JetStream key-value bucket).
    #[arg(long, env = "MICROLITH_DISCOVERY", value_name = "URL")]
    discovery: Option<String>,

    /// Prefix of this shop's NATS streams, consumers and discovery bucket, so several
    /// shops can share one NATS server.
    #[arg(long, default_value = "microlith", env = "MICROLITH_NAMESPACE", value_name = "NAME", value_parser = parse_namespace)]
    namespace: String,

    /// Directory for the SQLite databases, the key files and the local registry. Created if
    /// missing; reused on the next start.
    #[arg(long, default_value = "./data", env = "MICROLITH_DATA_DIR", value_name = "DIR")]
    pub(crate) data_dir: PathBuf,

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
    /// Seconds, or a number with a unit: `500ms`, `90s`, `15m`, `2h` (at most 24 h).
    #[arg(long, default_value = "900", value_name = "DURATION", value_parser = parse_duration)]
    saga_deadline: Duration,

    /// The longest a call between modules may take, retries included, in ms: overrides
    /// the topology's `policy.timeout_ms` [default: 10000]. Per-target timeouts stay.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=600_000))]
    call_timeout: Option<u64>,
}

impl ShopArgs {
    pub fn topology(&self) -> anyhow::Result<Topology> {
        let mut t = Topology::load(&self.topology)?;
        if let Some(db) = &self.database {
            t.set_database(db)?;
        }
        if let Some(bus) = &self.bus {
            t.set_bus(bus)?;
        }
        if let Some(discovery) = &self.discovery {
            t.set_discovery(discovery)?;
        }
        if let Some(ms) = self.call_timeout {
            t.policies.default.timeout = Duration::from_millis(ms);
        }
        Ok(t)
    }

    pub fn config(&self, topology: Topology, role: Role) -> anyhow::Result<ShopConfig> {
        let quota =
            |rate, burst| RateQuota::new(rate, burst).context("rate limits must be at least 1");
        let mut config = ShopConfig::new(&self.data_dir, admin_from_env()?);
        config.topology = topology;
        config.role = role;
        config.seed = !self.no_seed;
        config.gateway.per_user = quota(self.rate_limit_user, self.rate_limit_user_burst)?;
        config.gateway.per_address = quota(self.rate_limit_address, self.rate_limit_address_burst)?;
        config.gateway.body_limit = self.body_limit;
        config.gateway.cors_origins = self.cors_origins.clone();
        config.identity.token_ttl = Duration::from_secs(self.token_ttl);
        config.orders.saga_deadline = self.saga_deadline;
        config.bus_namespace = self.namespace.clone();
        config.functions = runtime::FunctionLaunch {
            program: std::env::current_exe().ok(),
            args: self.forward(),
            env: Vec::new(),
        };
        Ok(config)
    }

    /// The same flags, for a child process (the environment is inherited as it is).
    fn forward(&self) -> Vec<OsString> {
        let mut out: Vec<OsString> = Vec::new();
        let mut flag = |name: &str, value: String| {
            out.push(format!("--{name}").into());
            out.push(value.into());
        };
        flag("topology", self.topology.clone());
        if let Some(db) = &self.database {
            flag("database", db.clone());
        }
        if let Some(bus) = &self.bus {
            flag("bus", bus.clone());
        }
        if let Some(discovery) = &self.discovery {
            flag("discovery", discovery.clone());
        }
        flag("namespace", self.namespace.clone());
        flag("data-dir", self.data_dir.display().to_string());
        flag("rate-limit-user", self.rate_limit_user.to_string());
        flag("rate-limit-user-burst", self.rate_limit_user_burst.to_string());
        flag("rate-limit-address", self.rate_limit_address.to_string());
        flag("rate-limit-address-burst", self.rate_limit_address_burst.to_string());
        flag("body-limit", self.body_limit.to_string());
        for origin in &self.cors_origins {
            flag("cors-origin", origin.clone());
        }
        flag("token-ttl", self.token_ttl.to_string());
        flag("saga-deadline", format!("{}ms", self.saga_deadline.as_millis()));
        if let Some(ms) = self.call_timeout {
            flag("call-timeout", ms.to_string());
        }
        if self.no_seed {
            out.push("--no-seed".into());
        }
        out
    }
}

#[derive(Debug, Args)]
#[command(after_help = "\
Topologies:
  monolith       every module and the gateway in this one process (default)
  microservices  one process per module and one for the gateway; this command starts them,
                 waits until each answers /readyz before the gateway routes to it, restarts
                 a process that dies (with backoff), and stops them all on Ctrl-C
  serverless     every module a function, started on demand by a local AWS Lambda (the
                 function host in the gateway's process): cold starts, scale to zero,
                 max_concurrency, 429 beyond the queue, metering and cost
  hybrid         identity, catalog, inventory, cart and orders in one core service with the
                 gateway; payments a service; notifications as functions
  FILE.toml      your own placement: see crates/runtime/topologies/*.toml for the format

Environment:
  MICROLITH_ADMIN_EMAIL     admin account to create or promote [default: admin@microlith.local]
  MICROLITH_ADMIN_PASSWORD  its password (8 to 128 characters); without it, a first start
                            generates one and prints it once
  RUST_LOG                  log filter, e.g. `debug` or `info,gateway=debug` [default: info]

Examples:
  microlith up --data-dir ./data --listen 127.0.0.1:8080
  microlith up --topology microservices
  microlith up --topology microservices --database postgres://127.0.0.1/shop --bus nats://127.0.0.1:4222")]
pub struct UpArgs {
    #[command(flatten)]
    shop: ShopArgs,

    /// Address the shop's public API listens on. Port 0 picks a free port (printed at start).
    #[arg(long, default_value = "127.0.0.1:8080", env = "MICROLITH_LISTEN", value_name = "ADDR")]
    listen: SocketAddr,
}

/// The flags of `microlith service`: one instance of one service of the topology.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// The service to run (a `[[service]]` name of the topology).
    name: String,

    /// Which instance of the service this is (1 to its replica count).
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    replica: u16,

    /// Where the internal routes listen; port 0 picks one (reported on stdout).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    internal_listen: SocketAddr,

    /// Where the public API listens, if the topology puts the gateway in this service.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,

    #[command(flatten)]
    shop: ShopArgs,
}

/// The flags of `microlith gateway`: the public edge alone, every module remote.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Address the public API listens on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "MICROLITH_LISTEN", value_name = "ADDR")]
    listen: SocketAddr,

    #[command(flatten)]
    shop: ShopArgs,
}

/// `90` (seconds), `500ms`, `90s`, `15m` or `2h`; 1 ms to 24 h.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("{s:?} is not a duration such as 90s"))?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("unknown unit {unit:?}: use ms, s, m or h")),
    };
    if d < Duration::from_millis(1) || d > Duration::from_secs(86_400) {
        return Err("must be 1 ms to 24 h".into());
    }
    Ok(d)
}

/// NATS names are built from it: letters, digits, `_` and `-` only.
fn parse_namespace(s: &str) -> Result<String, String> {
    let ok = (1..=32).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok { Ok(s.to_owned()) } else { Err("1 to 32 of a-z, A-Z, 0-9, _ and -".into()) }
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
    let topology = args.shop.topology()?;
    if topology.is_single_process() {
        return run_monolith(args, topology).await;
    }
    let plan = runtime::SupervisorPlan {
        topology,
        data_dir: args.shop.data_dir.clone(),
        exe: std::env::current_exe().context("cannot find the microlith binary")?,
        common_args: args.shop.forward(),
        public: args.listen,
    };
    runtime::supervise(plan, shutdown_signal()).await
}

async fn run_monolith(args: UpArgs, topology: Topology) -> anyhow::Result<()> {
    let name = topology.services[0].name.clone();
    let config = args.shop.config(topology.clone(), Role::Service { name, replica: 1 })?;
    let admin_email = config.admin.email.clone();

    // Bind first: a taken port should fail before anything is written.
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let shop = Shop::start(config).await?;
    let router = shop.router.clone().context("the monolith has no gateway")?;
    let data_dir = std::fs::canonicalize(&shop.data_dir).unwrap_or_else(|_| shop.data_dir.clone());

    println!("Microlith is running (topology: {topology})");
    println!("  shop:   http://{addr}  (API under /api/v1, OpenAPI at /openapi.json)");
    println!("  data:   {}  (one SQLite database per module)", data_dir.display());
    print_admin(&admin_email, shop.admin.as_ref());
    if shop.seeded > 0 {
        println!("  seeded: {} demo products with stock", shop.seeded);
    }
    println!("Press Ctrl-C to stop.");

    gateway::serve(listener, router, shutdown_signal()).await?;
    shop.close().await;
    println!("Stopped.");
    Ok(())
}

fn print_admin(email: &Email, admin: Option<&AdminBootstrap>) {
    match admin {
        Some(AdminBootstrap::Created { generated_password: Some(p) }) => {
            println!("  admin:  {email}  password: {p}");
            println!("          (generated now and shown only this once: keep it)");
        }
        Some(AdminBootstrap::Created { generated_password: None }) => {
            println!("  admin:  {email}  (password from MICROLITH_ADMIN_PASSWORD)");
        }
        Some(AdminBootstrap::Existing) => println!("  admin:  {email}  (existing account)"),
        None => {}
    }
}

/// One instance of a service: its modules' internal routes (and the public gateway if the
/// topology puts it here). Started by `up`'s supervisor, or by an orchestrator.
pub async fn run_service(args: ServiceArgs) -> anyhow::Result<()> {
    let topology = args.shop.topology()?;
    let role = Role::Service { name: args.name.clone(), replica: args.replica };
    let mut config = args.shop.config(topology, role)?;
    config.registry = runtime::Registry::new();
    let admin_email = config.admin.email.clone();
    let watching = tokio_util::sync::CancellationToken::new();
    follow_registry(&config, &args.shop.data_dir, &watching).await?;

    let internal = tokio::net::TcpListener::bind(args.internal_listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.internal_listen))?;
    let public = match args.listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?,
        ),
        None => None,
    };
    let config_discovery = config.topology.infra.discovery.clone();
    let namespace = config.bus_namespace.clone();
    let registry = config.registry.clone();
    let callees: Vec<String> =
        config.topology.callees(&args.name).iter().map(|s| s.name.clone()).collect();
    let shop = Shop::start(config).await?;
    print_admin(&admin_email, shop.admin.as_ref());
    let internal_router = shop.internal.clone().context("this service has no internal routes")?;
    let addr = internal.local_addr()?;
    let stop = tokio_util::sync::CancellationToken::new();
    let public_task = match (public, shop.router.clone()) {
        (Some(listener), Some(router)) => {
            let stop = stop.clone();
            Some(tokio::spawn(async move {
                gateway::serve(listener, router, stop.cancelled_owned()).await
            }))
        }
        _ => None,
    };
    if let DiscoveryKind::Nats(url) = &config_discovery {
        // Across machines: announce this instance, healthy while its own /readyz says so.
        let instance = runtime::Instance {
            service: args.name.clone(),
            id: format!("{}-{}", args.name, args.replica),
            address: addr,
            healthy: false,
            pid: Some(std::process::id()),
        };
        let http = reqwest::Client::builder().timeout(Duration::from_secs(1)).build()?;
        let probe = format!("http://{addr}/readyz");
        let healthy = move || {
            let (http, probe) = (http.clone(), probe.clone());
            Box::pin(
                async move { http.get(&probe).send().await.is_ok_and(|r| r.status().is_success()) },
            ) as futures::future::BoxFuture<'static, bool>
        };
        runtime::nats_registry::announce(url, &namespace, instance, healthy, watching.clone())
            .await?;
    }
    // Ready only once what this service calls can be reached, so the first request routed
    // here finds its dependencies (discovery may still be spreading their news). Later
    // outages of a dependency do not make this service unready: that would spread them.
    if let Err(e) = wait_for_services(&registry, &callees, CALLEES_AT_START).await {
        tracing::warn!(error = %e, "starting without every service it calls");
    }
    println!("{} {addr}", runtime::READY_LINE);
    let stopping = stop.clone();
    let result = gateway::serve(internal, internal_router, async move {
        child_shutdown().await;
        stopping.cancel();
    })
    .await;
    stop.cancel();
    if let Some(task) = public_task {
        task.await??;
    }
    result?;
    watching.cancel();
    shop.close().await;
    Ok(())
}

/// The public edge alone; every module is called in the service that hosts it.
pub async fn run_gateway(args: GatewayArgs) -> anyhow::Result<()> {
    let topology = args.shop.topology()?;
    let mut config = args.shop.config(topology, Role::Gateway)?;
    config.registry = runtime::Registry::new();
    let watching = tokio_util::sync::CancellationToken::new();
    follow_registry(&config, &args.shop.data_dir, &watching).await?;
    // Wait for the registry's first healthy list, so seeding finds the services.
    let all: Vec<String> = config.topology.services.iter().map(|s| s.name.clone()).collect();
    wait_for_services(&config.registry, &all, Duration::from_secs(30)).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let shop = Shop::start(config).await?;
    let router = shop.router.clone().context("the gateway role has no router")?;
    if shop.seeded > 0 {
        println!("seeded {} demo products with stock", shop.seeded);
    }
    println!("{} {addr}", runtime::READY_LINE);
    gateway::serve(listener, router, child_shutdown()).await?;
    watching.cancel();
    shop.close().await;
    Ok(())
}

/// Keeps `config.registry` up to date from wherever the topology's discovery lives: the
/// local supervisor's file, or the NATS key-value bucket.
pub async fn follow_registry(
    config: &ShopConfig,
    data_dir: &std::path::Path,
    cancel: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    match &config.topology.infra.discovery {
        DiscoveryKind::Local => {
            config.registry.watch_file(runtime::registry_file(data_dir), cancel.clone());
        }
        DiscoveryKind::Nats(url) => {
            runtime::nats_registry::follow(
                url,
                &config.bus_namespace,
                config.registry.clone(),
                cancel.clone(),
            )
            .await?;
        }
    }
    Ok(())
}

/// How long a service waits at start for the services it calls before it says it is ready.
const CALLEES_AT_START: Duration = Duration::from_secs(10);

/// Waits until every one of `services` has a healthy instance in `registry`.
async fn wait_for_services(
    registry: &runtime::Registry,
    services: &[String],
    patience: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let missing: Vec<&str> =
            services.iter().filter(|s| registry.healthy(s) == 0).map(|s| s.as_str()).collect();
        if missing.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("no healthy instance of: {}", missing.join(", "));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// For a process of a supervised topology: Ctrl-C, SIGTERM, or the supervisor gone (its
/// end of our stdin closed).
pub async fn child_shutdown() {
    let supervised = std::env::var_os(runtime::SUPERVISED_ENV).is_some();
    let orphaned = async {
        if !supervised {
            return std::future::pending::<()>().await;
        }
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        loop {
            match tokio::io::AsyncReadExt::read(&mut stdin, &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        tracing::warn!("the supervisor is gone; stopping");
    };
    tokio::select! {
        () = shutdown_signal() => {},
        () = orphaned => {},
    }
}

/// Ctrl-C, or SIGTERM as sent by service managers and orchestrators.
pub async fn shutdown_signal() {
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
