use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use gateway::RateQuota;
use identity::AdminBootstrap;
use kernel::Email;
use runtime::lifecycle::{self, shutdown_signal};
use runtime::{AdminCredentials, ProcessRole, ShopConfig, Topology};

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

    /// Also send every process's spans to this OpenTelemetry collector over OTLP/HTTP
    /// (protobuf), e.g. `http://localhost:4318` (Jaeger, Tempo, the Aspire dashboard);
    /// `/v1/traces` is appended. Without it, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` if set. The built-in trace store keeps them either way.
    #[arg(long, value_name = "URL", value_parser = parse_endpoint)]
    otlp_endpoint: Option<String>,

    /// The share of new traces kept, 0 to 1 (a client's sampled flag is followed).
    /// Without it, `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`, else 1 (all).
    #[arg(long, value_name = "RATIO", value_parser = parse_ratio)]
    trace_sample_ratio: Option<f64>,

    /// Where a process without the built-in trace store (every one but the gateway's) sends
    /// its spans: the gateway's receiver, `http://GATEWAY/v1/traces`. `up` sets it for the
    /// processes it starts; set it for processes started some other way.
    #[arg(long, value_name = "URL", value_parser = parse_endpoint)]
    trace_store: Option<String>,

    /// Log lines as plain text, or as JSON objects (one per line; a line logged inside a
    /// span has its ids in `openTelemetry.traceId` and `.spanId`). `RUST_LOG` filters both.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// What the public edge (and the process that seeds the catalog) is started with: not a
/// function instance's flags.
#[derive(Debug, Args, Clone)]
pub struct EdgeArgs {
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
}

impl EdgeArgs {
    /// Sets the edge's part of `config` from these flags.
    fn apply(&self, config: &mut ShopConfig) -> anyhow::Result<()> {
        let quota =
            |rate, burst| RateQuota::new(rate, burst).context("rate limits must be at least 1");
        config.seed = !self.no_seed;
        config.gateway.per_user = quota(self.rate_limit_user, self.rate_limit_user_burst)?;
        config.gateway.per_address = quota(self.rate_limit_address, self.rate_limit_address_burst)?;
        config.gateway.body_limit = self.body_limit;
        config.gateway.cors_origins = self.cors_origins.clone();
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn parse_endpoint(s: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(s).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("an OTLP/HTTP endpoint is an http:// or https:// URL with a host".into());
    }
    Ok(s.to_owned())
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("a ratio between 0 and 1, not {s:?}")),
    }
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

    /// The configuration these flags (and `edge`'s, for a process with the public edge)
    /// describe, as `role`.
    pub fn config(
        &self,
        edge: Option<&EdgeArgs>,
        topology: Topology,
        role: ProcessRole,
    ) -> anyhow::Result<ShopConfig> {
        let mut config = ShopConfig::new(&self.data_dir, admin_from_env()?);
        config.topology = topology;
        config.role = role;
        if let Some(edge) = edge {
            edge.apply(&mut config)?;
        }
        config.identity.token_ttl = Duration::from_secs(self.token_ttl);
        config.orders.saga_deadline = self.saga_deadline;
        config.bus_namespace = self.namespace.clone();
        config.telemetry = runtime::TelemetryConfig {
            otlp_endpoint: self.otlp_endpoint.clone(),
            sample_ratio: self.trace_sample_ratio,
            store_endpoint: self.trace_store.clone(),
            json_logs: self.log_format == LogFormat::Json,
        };
        config.functions.program = std::env::current_exe().ok();
        Ok(config)
    }

    /// This process's configuration as `role`: the one its parent (the supervisor or the
    /// function host) handed over whole, or else the one these flags describe.
    pub fn resolve(
        &self,
        edge: Option<&EdgeArgs>,
        role: ProcessRole,
    ) -> anyhow::Result<ShopConfig> {
        match ShopConfig::from_parent(role.clone())? {
            Some(mut config) => {
                config.functions.program = std::env::current_exe().ok();
                Ok(config)
            }
            None => self.config(edge, self.topology()?, role),
        }
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

    #[command(flatten)]
    edge: EdgeArgs,

    /// Address the shop's public API listens on. Port 0 picks a free port (printed at start).
    #[arg(long, default_value = "127.0.0.1:8080", env = "MICROLITH_LISTEN", value_name = "ADDR")]
    listen: SocketAddr,

    /// Serve `/metrics` on this address only, not on the public listener (for Prometheus on
    /// a private network). Default: `/metrics` is on the public listener.
    #[arg(long, env = "MICROLITH_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,

    /// Keep the faults a previous run left in force (until they expire). Without it, a
    /// start clears them: an experiment does not outlive its run.
    #[arg(long)]
    keep_faults: bool,
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

    /// Serve the process's `/metrics` here rather than on the public listener (it stays on
    /// the internal one).
    #[arg(long, value_name = "ADDR", requires = "listen")]
    metrics_listen: Option<SocketAddr>,

    #[command(flatten)]
    shop: ShopArgs,

    #[command(flatten)]
    edge: EdgeArgs,
}

/// The flags of `microlith gateway`: the public edge alone, every module remote.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Address the public API listens on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "MICROLITH_LISTEN", value_name = "ADDR")]
    listen: SocketAddr,

    /// Serve `/metrics` on this address only, not on the public listener.
    #[arg(long, env = "MICROLITH_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,

    #[command(flatten)]
    shop: ShopArgs,

    #[command(flatten)]
    edge: EdgeArgs,
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

pub(crate) fn admin_from_env() -> anyhow::Result<AdminCredentials> {
    let email =
        std::env::var("MICROLITH_ADMIN_EMAIL").unwrap_or_else(|_| DEFAULT_ADMIN_EMAIL.into());
    let email =
        Email::parse(&email).context("MICROLITH_ADMIN_EMAIL is not a valid email address")?;
    Ok(AdminCredentials { email, password: runtime::admin_password_from_env()? })
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let topology = args.shop.topology()?;
    // Every topology runs supervised, the monolith too: its one process is restarted with
    // backoff when it crashes, as a service's would be.
    // The role of the supervisor's own configuration is unused: each child gets its own.
    let config = args.shop.config(Some(&args.edge), topology, ProcessRole::Gateway)?;
    crate::observe::logs_only(config.telemetry.json_logs);
    let exe = std::env::current_exe().context("cannot find the microlith binary")?;
    let ports = runtime::Ports { public: args.listen, metrics: args.metrics_listen };
    runtime::supervise(config, exe, ports, args.keep_faults, shutdown_signal()).await
}

fn print_admin(email: &Email, admin: Option<&AdminBootstrap>) {
    for line in admin.map(|done| runtime::admin_lines(email, done)).unwrap_or_default() {
        println!("{line}");
    }
}

/// Binds `addr`, naming it in the error.
async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))
}

/// [`bind`]s `addr` if there is one.
async fn bind_if(addr: Option<SocketAddr>) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    match addr {
        Some(addr) => Ok(Some(bind(addr).await?)),
        None => Ok(None),
    }
}

/// One instance of a service: its modules' internal routes (and the public gateway if the
/// topology puts it here). Started by `up`'s supervisor, or by an orchestrator.
pub async fn run_service(args: ServiceArgs) -> anyhow::Result<()> {
    let role = ProcessRole::Service { name: args.name.clone(), replica: args.replica };
    let mut config = args.shop.resolve(Some(&args.edge), role)?;
    config.metrics_apart |= args.metrics_listen.is_some();
    crate::observe::process(&config)?;
    let admin_email = config.admin.email.clone();
    // The monolith's one process is called by no other: it needs no internal listener.
    let internal = if config.topology.is_single_process() {
        None
    } else {
        Some(bind(args.internal_listen).await?)
    };
    let public = bind_if(args.listen).await?;
    let metrics = bind_if(args.metrics_listen).await?;
    let mut started = lifecycle::start(config, internal, public).await?;
    if let Some(l) = metrics {
        started = started.serve_metrics_on(l);
    }
    // Under `up` the supervisor made the admin already; an orchestrator's instance shows
    // a password it generated.
    let created =
        started.shop.admin.as_ref().filter(|a| matches!(a, AdminBootstrap::Created { .. }));
    print_admin(&admin_email, created);
    started.serve(lifecycle::child_shutdown()).await
}

/// The public edge alone; every module is called in the service that hosts it.
pub async fn run_gateway(args: GatewayArgs) -> anyhow::Result<()> {
    let mut config = args.shop.resolve(Some(&args.edge), ProcessRole::Gateway)?;
    config.metrics_apart |= args.metrics_listen.is_some();
    crate::observe::process(&config)?;
    let public = bind(args.listen).await?;
    let metrics = bind_if(args.metrics_listen).await?;
    let mut started = lifecycle::start(config, None, Some(public)).await?;
    if let Some(l) = metrics {
        started = started.serve_metrics_on(l);
    }
    started.serve(lifecycle::child_shutdown()).await
}
