//! The life of one process that `up` or an orchestrator runs, once for every role: follow the
//! registry, start its part of the shop, announce it (NATS discovery), wait until what it
//! calls can be reached, say it is ready ([`READY_LINE`]), serve until told to stop, and
//! close. The binary only parses its arguments, binds its listeners and prints a banner.
//!
//! A supervised process (its parent set [`SUPERVISED_ENV`]) also stops when its stdin
//! closes: the supervisor's lifeline, which closes even if the supervisor is killed.

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{DiscoveryKind, ProcessRole, Registry, SUPERVISED_ENV, Shop, ShopConfig};

/// The line a child prints when it is listening: `MICROLITH_READY <address>`.
pub const READY_LINE: &str = "MICROLITH_READY";

/// How long a service waits at start for the services it calls before it says it is ready.
const CALLEES_AT_START: Duration = Duration::from_secs(10);
/// How long the gateway alone waits at start for every service.
const SERVICES_AT_START: Duration = Duration::from_secs(30);

/// A started process of a distributed topology, not yet serving.
pub struct Started {
    /// What start-up did (the admin's bootstrap, the seeded products), for the banner.
    pub shop: Shop,
    internal: Option<TcpListener>,
    public: Option<TcpListener>,
    /// `/metrics` apart from the public API ([`ShopConfig::metrics_apart`]).
    metrics: Option<TcpListener>,
    /// Stops following the registry and announcing this instance.
    watching: CancellationToken,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started").field("shop", &self.shop).finish_non_exhaustive()
    }
}

/// Starts `config.role`'s part of the shop. A service instance gets `internal` for its
/// internal routes and `public` if the topology puts the gateway in it; the gateway alone
/// gets `public`, once every service has a healthy instance (so seeding finds them).
///
/// Errors: the registry cannot be followed, a service instance of a distributed topology
/// has no internal listener,
/// the gateway waited [`SERVICES_AT_START`] in vain, or [`Shop::start`] failed.
pub async fn start(
    mut config: ShopConfig,
    internal: Option<TcpListener>,
    public: Option<TcpListener>,
) -> anyhow::Result<Started> {
    config.registry = Registry::new();
    let watching = CancellationToken::new();
    follow_registry(&config, &watching).await?;
    let role = config.role.clone();
    let discovery = config.topology.infra.discovery.clone();
    let namespace = config.bus_namespace.clone();
    let registry = config.registry.clone();
    let shop_is_single_process = config.topology.is_single_process();
    let callees: Vec<String> = match &role {
        ProcessRole::Service { name, .. } => {
            config.topology.callees(name).iter().map(|s| s.name.clone()).collect()
        }
        ProcessRole::Gateway => {
            let all: Vec<String> =
                config.topology.services.iter().map(|s| s.name.clone()).collect();
            wait_for_services(&registry, &all, SERVICES_AT_START).await?;
            Vec::new()
        }
        ProcessRole::Function { .. } => Vec::new(),
    };
    let shop = Shop::start(config).await?;
    // The monolith's one process has no internal routes: nothing else calls it.
    if let ProcessRole::Service { name, .. } = &role
        && !shop_is_single_process
    {
        let internal =
            internal.as_ref().context("a service instance needs an internal listener")?;
        if let DiscoveryKind::Nats(url) = &discovery {
            announce(url, &namespace, name, &role, internal, &watching).await?;
        }
        // Ready only once what this service calls can be reached, so the first request
        // routed here finds its dependencies (discovery may still be spreading their news).
        // Later outages of a dependency do not make this service unready: that would spread
        // them.
        if let Err(e) = wait_for_services(&registry, &callees, CALLEES_AT_START).await {
            tracing::warn!(error = %e, "starting without every service it calls");
        }
    }
    Ok(Started { shop, internal, public, metrics: None, watching })
}

impl Started {
    /// Serves `/metrics` on `listener` too (with [`ShopConfig::metrics_apart`], the only
    /// place it is served besides a service's internal listener).
    pub fn serve_metrics_on(mut self, listener: TcpListener) -> Started {
        self.metrics = Some(listener);
        self
    }

    /// Prints the ready line and serves until `shutdown` completes (the public API, if
    /// any, stopping with the internal routes), then closes the shop.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Started { shop, internal, public, metrics, watching } = self;
        let metrics = metrics.map(|l| (l, shop.metrics.clone()));
        let stop = CancellationToken::new();
        let public = match (public, shop.router.clone()) {
            (Some(listener), Some(router)) => Some((listener, router)),
            (Some(_), None) => anyhow::bail!("this process has no public API to serve"),
            _ => None,
        };
        let internal = match (internal, shop.internal.clone()) {
            (Some(listener), Some(router)) => Some((listener, router)),
            (Some(_), None) => anyhow::bail!("this process has no internal routes to serve"),
            _ => None,
        };
        // What the supervisor routes to: the internal routes, or the gateway alone's API.
        let announced = match (&internal, &public) {
            (Some((l, _)), _) | (None, Some((l, _))) => l.local_addr()?,
            (None, None) => anyhow::bail!("this process serves nothing"),
        };
        let mut servers = tokio::task::JoinSet::new();
        for (listener, router) in [public, internal, metrics].into_iter().flatten() {
            let stopping = stop.clone().cancelled_owned();
            servers.spawn(async move { gateway::serve(listener, router, stopping).await });
        }
        println!("{READY_LINE} {announced}");
        let mut result: anyhow::Result<()> = Ok(());
        tokio::select! {
            () = shutdown => {}
            Some(ended) = servers.join_next() => {
                // Servers end only when told to: one that ends first failed.
                result = Err(outcome(ended).err().unwrap_or_else(|| anyhow::anyhow!("stopped")))
                    .context("a server stopped on its own");
            }
        }
        stop.cancel();
        while let Some(ended) = servers.join_next().await {
            result = result.and(outcome(ended));
        }
        watching.cancel();
        shop.close().await;
        result
    }
}

fn outcome(ended: Result<std::io::Result<()>, tokio::task::JoinError>) -> anyhow::Result<()> {
    ended.context("a server panicked")?.context("a server failed")
}

/// Publishes this service instance in the NATS key-value registry, healthy while its own
/// `/readyz` says so, until `cancel`.
async fn announce(
    url: &str,
    namespace: &str,
    service: &str,
    role: &ProcessRole,
    internal: &TcpListener,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let address = internal.local_addr()?;
    let instance = crate::Instance {
        service: service.to_owned(),
        id: role.instance_id(),
        address,
        healthy: false,
        pid: Some(std::process::id()),
    };
    let http = reqwest::Client::builder().timeout(Duration::from_secs(1)).build()?;
    let probe = format!("http://{address}/readyz");
    let healthy = move || {
        let (http, probe) = (http.clone(), probe.clone());
        Box::pin(
            async move { http.get(&probe).send().await.is_ok_and(|r| r.status().is_success()) },
        ) as futures::future::BoxFuture<'static, bool>
    };
    crate::nats_registry::announce(url, namespace, instance, healthy, cancel.clone()).await?;
    Ok(())
}

/// Keeps `config.registry` up to date from wherever the topology's discovery lives: the
/// local supervisor's file in the data directory, or the NATS key-value bucket; until
/// `cancel`.
pub async fn follow_registry(
    config: &ShopConfig,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    match &config.topology.infra.discovery {
        DiscoveryKind::Local => {
            let file = crate::registry_file(&config.data_dir);
            // Only `up`'s supervisor writes the local registry: a process started by hand
            // (or by an orchestrator) beside no running `up` would wait for instances that
            // nobody will ever list. Say what to do instead, now.
            let supervised = std::env::var_os(SUPERVISED_ENV).is_some();
            let calls_others = !config.topology.is_single_process()
                && !matches!(config.role, ProcessRole::Function { .. });
            if !supervised && calls_others && !file.exists() {
                anyhow::bail!(
                    "local discovery finds instances through the registry file that `microlith up` \
                     keeps in the data directory, and there is none in {}: start the shop with \
                     `microlith up --topology ...`, or give every process `--discovery \
                     nats://HOST:4222` (NATS key-value discovery) so that processes started by \
                     hand or by an orchestrator find each other",
                    config.data_dir.display()
                );
            }
            config.registry.watch_file(file, cancel.clone());
        }
        DiscoveryKind::Nats(url) => {
            crate::nats_registry::follow(
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

/// Waits until every one of `services` has a healthy instance in `registry`; errs naming
/// the missing ones after `patience`.
async fn wait_for_services(
    registry: &Registry,
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
    let supervised = std::env::var_os(SUPERVISED_ENV).is_some();
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

/// Ctrl-C (SIGINT), or SIGTERM as sent by service managers and orchestrators. The
/// handlers are installed when this is called, not when the future is first polled: a
/// signal in between (just after the banner, say) would end the process ungracefully.
/// Call it inside the runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    };
    async move {
        #[cfg(unix)]
        match signals {
            (Ok(mut term), Ok(mut interrupt)) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = interrupt.recv() => {},
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM and Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
        #[cfg(not(unix))]
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("shutting down");
    }
}
