use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use bus::{BusClient, EmbeddedBus, Retention};
use gateway::Probe;
use identity::AdminBootstrap;
use store::Db;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::edges::Targets;
use crate::metrics::MetricsState;
use crate::storage::{create_private_dir, open_db};
use crate::wiring::{Clients, Remotes, Wired};
use crate::{BusKind, Database, ProcessRole, Registry, ShopConfig, seed_demo_catalog};

/// A started process of the shop: the routers it serves and what start-up did.
pub struct Shop {
    /// The public edge, if this process hosts the gateway.
    pub router: Option<axum::Router>,
    /// The internal routes of its modules (behind the service credential guard) plus
    /// `/healthz` and `/readyz`, if other processes call this one.
    pub internal: Option<axum::Router>,
    /// `/metrics` alone, for a listener of its own when [`ShopConfig::metrics_apart`].
    pub metrics: axum::Router,
    /// The admin account's start-up, if this process hosts identity.
    pub admin: Option<AdminBootstrap>,
    /// Products seeded by this start (0 when the catalog already had some).
    pub seeded: usize,
    pub data_dir: PathBuf,
    /// In a function instance: what its request loop runs.
    pub function: Option<crate::FunctionWork>,
    /// In the process with the gateway, when the topology has functions: their host.
    pub host: Option<function_host::FunctionHost>,
    bus: Option<BusClient>,
    /// The built-in trace store, in the process with the gateway.
    traces: Option<Arc<trace_store::TraceStore>>,
    /// Relays, the deadline sweeper: stopped by `close`.
    background: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    dbs: Vec<Db>,
}

impl std::fmt::Debug for Shop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shop").field("data_dir", &self.data_dir).finish_non_exhaustive()
    }
}

pub(crate) struct DbProbe {
    pub(crate) name: &'static str,
    pub(crate) db: Db,
}

#[async_trait]
impl Probe for DbProbe {
    fn name(&self) -> &str {
        self.name
    }
    async fn check(&self) -> Result<(), String> {
        self.db.ping().await.map_err(|e| e.to_string())
    }
}

/// Whether a service this process calls has a healthy instance: reported by `/readyz`
/// (as `degraded`), never making this process unready.
struct ServiceProbe {
    name: String,
    registry: Registry,
}

#[async_trait]
impl Probe for ServiceProbe {
    fn name(&self) -> &str {
        &self.name
    }
    async fn check(&self) -> Result<(), String> {
        match self.registry.healthy(&self.name) {
            0 => Err(format!("no healthy instance of {}", self.name)),
            _ => Ok(()),
        }
    }
    fn gates_readiness(&self) -> bool {
        false
    }
}

impl Shop {
    /// Starts this process's part of `config.topology`: opens the databases of its own
    /// modules, builds them with a client for every module they call (local when the module
    /// is in this process, remote otherwise), subscribes their handlers, starts their
    /// relays, and builds the gateway and/or the internal routes it serves.
    pub async fn start(config: ShopConfig) -> anyhow::Result<Shop> {
        let topology = &config.topology;
        // This process's entry of the placement plan: what it hosts and what it runs. The
        // plan decides; this function carries it out.
        let plan = crate::Plan::of(topology);
        let process = plan.process_of(&config.role).with_context(|| {
            let known: Vec<&str> = plan.processes.iter().map(|p| p.id.as_str()).collect();
            format!(
                "topology {topology} has no process {:?}; its processes: {}",
                config.role,
                known.join(", ")
            )
        })?;
        let local = process.modules.clone();
        let hosts_gateway = process.runs_gateway;
        let function = match &config.role {
            ProcessRole::Function { name } => topology.function(name).cloned(),
            _ => None,
        };
        let distributed = !topology.is_single_process();
        create_private_dir(&config.data_dir)?;

        crate::metrics::init();
        let background = CancellationToken::new();
        let (host, remotes) =
            connect(&config, &plan, process.hosts_functions, distributed, &background).await?;
        // Faults persist in the data directory: a restarted process finds them again.
        crate::faults::watch(
            config.faults.clone(),
            &config.data_dir,
            config.role.instance_id(),
            background.clone(),
        );
        crate::faults::crash_when_told(config.faults.clone(), local.clone(), background.clone());
        let targets = Targets::new(topology.policies.clone(), config.faults.clone());
        let mut wired = Wired::build(&config, &local, remotes.as_ref(), &targets).await?;

        // A function instance gets its events by invocation and publishes its outbox
        // itself; the host's process subscribes for it.
        let function_subscriptions =
            if function.is_some() { std::mem::take(&mut wired.subscriptions) } else { Vec::new() };
        let function_outboxes =
            if function.is_some() { std::mem::take(&mut wired.outboxes) } else { Vec::new() };
        if let (Some(host), Some(remotes)) = (&host, &remotes) {
            for f in topology.functions.iter().filter(|f| f.trigger == crate::Trigger::Events) {
                wired.subscriptions.push(crate::functions::event_source(
                    host.clone(),
                    remotes.trust().issuer.clone(),
                    f,
                ));
            }
        }
        // The outboxes this process relays, for `/metrics` (the relays take them).
        let outboxes = wired.outboxes.clone();
        let (bus, mut tasks) = start_bus_work(
            &config,
            distributed,
            hosts_gateway || !function_outboxes.is_empty(),
            &mut wired,
            function.is_none(),
            &background,
        )
        .await?;

        // Opened before seeding, so the seeding calls are traced too.
        let traces = if hosts_gateway {
            Some(open_traces(&config, &background, &mut tasks).await?)
        } else {
            None
        };
        // What the public edge calls, each module through the gateway's edge to it.
        let clients = &wired.clients.as_called_by("gateway", &targets);
        let seeded = if hosts_gateway && config.seed { seed_if_empty(clients).await? } else { 0 };
        let metrics = MetricsState {
            targets: targets.clone(),
            faults: config.faults.clone(),
            bus: bus.clone(),
            outboxes,
        };
        let probes: Vec<Arc<dyn Probe>> = wired
            .dbs
            .iter()
            .map(|(name, db)| Arc::new(DbProbe { name, db: db.clone() }) as Arc<dyn Probe>)
            .collect();
        let router = match (&bus, &traces) {
            (Some(bus), Some(traces)) => {
                let system = crate::system::router(
                    topology.clone(),
                    config.registry.clone(),
                    config.role.clone(),
                    metrics.clone(),
                    remotes.as_ref().map(Remotes::peers),
                    host.clone(),
                )
                .merge(crate::traces::router(traces.clone()));
                // Outside authentication and rate limits: `/metrics` and, in a distributed
                // topology, the receiver of the other processes' spans (signed by them).
                let mut ops = utoipa_axum::router::OpenApiRouter::new();
                if !config.metrics_apart {
                    ops = ops.merge(
                        utoipa_axum::router::OpenApiRouter::new()
                            .routes(utoipa_axum::routes!(crate::metrics::metrics))
                            .with_state(metrics.clone()),
                    );
                }
                if let Some(r) = &remotes {
                    let verifier = r.verifier(crate::otlp::TRACES_AUDIENCE);
                    ops = ops.merge(crate::otlp::receiver(traces.clone(), verifier));
                }
                Some(
                    public_router(&config, &local, clients, bus, probes.clone(), system, ops)
                        .await?,
                )
            }
            _ => None,
        };
        let metrics_router = crate::metrics::router(metrics.clone());
        let internal = match (&remotes, &config.role) {
            (Some(remotes), ProcessRole::Service { name, .. }) if !local.is_empty() => {
                Some(internal_router(&config, &wired, remotes, name, metrics, probes))
            }
            _ => None,
        };
        let function = match (function, &remotes) {
            (Some(f), Some(remotes)) => {
                let router = (f.trigger == crate::Trigger::Http).then(|| {
                    wired.internal_routes(remotes.verifier(&f.name), remotes.trust().issuer())
                });
                Some(crate::FunctionWork::new(
                    &f,
                    remotes.trust().clone(),
                    router,
                    function_subscriptions,
                    function_outboxes,
                    bus.clone(),
                    std::mem::take(&mut wired.jobs),
                ))
            }
            _ => None,
        };
        let dbs = wired.dbs.into_iter().map(|(_, db)| db).collect();
        Ok(Shop {
            router,
            internal,
            metrics: metrics_router,
            admin: wired.admin,
            seeded,
            data_dir: config.data_dir,
            function,
            host,
            bus,
            traces,
            background,
            tasks,
            dbs,
        })
    }

    /// Stops the relays, the sweeper and the bus's deliveries, then closes the databases
    /// (after the server stopped), checkpointing SQLite's WAL. Whatever was in flight is
    /// redelivered on the next start.
    pub async fn close(mut self) {
        self.background.cancel();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        if let Some(host) = &self.host {
            host.shutdown().await;
        }
        if let Some(bus) = &self.bus {
            bus.shutdown().await;
        }
        for db in &self.dbs {
            db.close().await;
        }
        if let Some(traces) = &self.traces {
            traces.close().await;
        }
    }
}

/// What a process of a distributed topology needs to reach the others: its trust (keys and
/// the call graph), the function host if it hosts functions, and the remote transports
/// (invoking functions through that host, or through the one in the gateway's process).
/// Nothing in a single-process topology.
async fn connect(
    config: &ShopConfig,
    plan: &crate::Plan,
    hosts_functions: bool,
    distributed: bool,
    background: &CancellationToken,
) -> anyhow::Result<(Option<function_host::FunctionHost>, Option<Remotes>)> {
    if !distributed {
        return Ok((None, None));
    }
    let trust = crate::Trust::open(&config.data_dir, &config.topology, &config.role)?;
    let host = if hosts_functions {
        Some(crate::functions::start_host(config, plan, &trust, background.clone()).await?)
    } else {
        None
    };
    let invoker = match &host {
        Some(h) => crate::functions::FunctionInvoker::Local(h.clone()),
        None => crate::functions::FunctionInvoker::remote(&config.data_dir, trust.issuer.clone()),
    };
    Ok((host, Some(Remotes::new(config, trust, Arc::new(invoker)))))
}

/// The built-in trace store (`<data>/traces.db`), fed with every span this process
/// finishes until the shop closes.
async fn open_traces(
    config: &ShopConfig,
    background: &CancellationToken,
    tasks: &mut Vec<JoinHandle<()>>,
) -> anyhow::Result<Arc<trace_store::TraceStore>> {
    let path = config.data_dir.join(format!("{}.db", crate::plan::TRACES_DATABASE));
    let store = Arc::new(
        trace_store::TraceStore::open(&path, trace_store::DEFAULT_MAX_TRACES)
            .await
            .context("cannot open the trace store")?,
    );
    let (writer, spans, stop) = (store.clone(), telemetry::subscribe(), background.clone());
    tasks.push(tokio::spawn(async move {
        tokio::select! {
            () = stop.cancelled() => {}
            () = writer.write_from(spans) => {}
        }
    }));
    Ok(store)
}

/// The bus work of this process, when it has any (the gateway's dead-letter API, handlers,
/// outboxes, or a function instance's outbox): the bus, its subscriptions (first, so
/// nothing a relay publishes finds a subscriber missing), a relay per outbox and, outside
/// a function instance (whose schedule invokes it), the modules' jobs.
async fn start_bus_work(
    config: &ShopConfig,
    distributed: bool,
    needs_bus: bool,
    wired: &mut Wired,
    runs_jobs: bool,
    background: &CancellationToken,
) -> anyhow::Result<(Option<BusClient>, Vec<JoinHandle<()>>)> {
    let needs_bus = needs_bus || !wired.subscriptions.is_empty() || !wired.outboxes.is_empty();
    let bus =
        if needs_bus { Some(open_bus(config, distributed, &mut wired.dbs).await?) } else { None };
    let mut tasks = Vec::new();
    if let Some(bus) = &bus {
        for subscription in std::mem::take(&mut wired.subscriptions) {
            bus.subscribe(subscription).await?;
        }
        for outbox in std::mem::take(&mut wired.outboxes) {
            tasks.push(bus::spawn_relay(
                outbox,
                bus.clone(),
                Retention::default(),
                background.clone(),
            ));
        }
    }
    if runs_jobs {
        for job in std::mem::take(&mut wired.jobs) {
            tasks.push(bus::spawn_job(job, background.clone()));
        }
    }
    Ok((bus, tasks))
}

/// The public edge: every module's public routes through the gateway's edge to it, the
/// dead-letter, topology and faults APIs, `ops` (outside authentication and rate limits),
/// and a readiness probe per database of this process and per service it does not host.
async fn public_router(
    config: &ShopConfig,
    local: &[crate::Module],
    clients: &Clients,
    bus: &BusClient,
    mut probes: Vec<Arc<dyn Probe>>,
    system: utoipa_axum::router::OpenApiRouter,
    ops: utoipa_axum::router::OpenApiRouter,
) -> anyhow::Result<axum::Router> {
    let topology = &config.topology;
    if !matches!(config.role, ProcessRole::Service { .. }) || !topology.is_single_process() {
        for s in &topology.services {
            if local.iter().all(|m| !s.modules.contains(m)) {
                probes.push(Arc::new(ServiceProbe {
                    name: s.name.clone(),
                    registry: config.registry.clone(),
                }));
            }
        }
    }
    let modules = clients
        .public_routes(catalog_api::http::ProductCache::default())
        .merge(bus::http::router(bus.clone()))
        .merge(system)
        .merge(crate::faults::router(config.faults.clone(), &config.data_dir));
    let known_keys = crate::keys::known_token_keys(&config.data_dir);
    gateway::build(
        config.gateway.clone(),
        clients.identity.clone(),
        known_keys,
        modules,
        probes,
        ops,
    )
    .await
}

/// What other processes call on this service instance: its modules' internal routes and its
/// topology view behind the credential guard, its health probes and `/metrics`.
fn internal_router(
    config: &ShopConfig,
    wired: &Wired,
    remotes: &Remotes,
    service: &str,
    metrics: MetricsState,
    probes: Vec<Arc<dyn Probe>>,
) -> axum::Router {
    let verifier = remotes.verifier(service);
    let signer = remotes.trust().issuer();
    wired
        .internal_routes(verifier.clone(), signer.clone())
        .merge(rpc::internal::guard(
            crate::system::internal_router(config.role.clone(), metrics.clone()),
            verifier,
            signer,
        ))
        .merge(gateway::ops_router(probes))
        .merge(crate::metrics::router(metrics))
}

async fn open_bus(
    config: &ShopConfig,
    distributed: bool,
    dbs: &mut Vec<(&'static str, Db)>,
) -> anyhow::Result<BusClient> {
    match &config.topology.infra.bus {
        BusKind::Embedded => {
            // The embedded broker is a SQLite file even when modules use PostgreSQL.
            let db =
                open_db(&Database::Sqlite, &config.data_dir, crate::plan::BUS_DATABASE).await?;
            // Other processes' publishes do not wake this one's dispatchers: poll often.
            let poll =
                if distributed { Duration::from_millis(25) } else { EmbeddedBus::DEFAULT_POLL };
            let embedded = EmbeddedBus::open_with_poll(db.clone(), poll)
                .await
                .context("cannot open the bus")?;
            dbs.push((crate::plan::BUS_DATABASE, db));
            Ok(BusClient::new(embedded))
        }
        BusKind::Nats(url) => Ok(BusClient::new(
            bus::NatsBus::connect(url, &config.bus_namespace)
                .await
                .context("cannot open the NATS JetStream bus")?,
        )),
    }
}

async fn seed_if_empty(clients: &Clients) -> anyhow::Result<usize> {
    let sys = kernel::RequestContext::system();
    let first = clients
        .catalog
        .list(&sys, catalog_api::ProductQuery::default())
        .await
        .context("cannot read the catalog")?;
    if !first.items.is_empty() {
        return Ok(0);
    }
    let seeded = seed_demo_catalog(&clients.catalog, &clients.inventory)
        .await
        .context("cannot seed the demo catalog")?;
    // One line for the whole catalog: each product's own lines are at debug.
    tracing::info!(products = seeded, "seeded the demo catalog with stock");
    Ok(seeded)
}
