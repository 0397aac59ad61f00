//! The local process supervisor behind `microlith up`, in every topology: one child
//! process per service instance (the monolith's one included) and one for the gateway when
//! it runs alone (the same binary in another role),
//! readiness before routing, health checks feeding the registry, restart with backoff on
//! crash, and a clean stop of every child on Ctrl-C.
//!
//! A child reports where it listens with one stdout line, `MICROLITH_READY <address>`,
//! once its modules are built; it counts as healthy only when its `/readyz` answers 200.
//! Everything else a child prints is relayed with its instance id in front, its log lines
//! (stderr) too unless they are JSON.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::lifecycle::READY_LINE;
use crate::registry::{Instance, registry_file, write_file};

/// Set for supervised children: they stop when their stdin closes.
pub const SUPERVISED_ENV: &str = "MICROLITH_SUPERVISED";
/// Asks a program to colour its output though it does not go to a terminal
/// (<https://bixense.com/clicolors/>); set for children whose logs the supervisor relays
/// to a terminal.
pub const FORCE_COLOUR_ENV: &str = "CLICOLOR_FORCE";

const HEALTH_EVERY: Duration = Duration::from_millis(500);
const HEALTH_TIMEOUT: Duration = Duration::from_millis(400);
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long a child's last log lines may take to be relayed once it has exited.
const RELAY_DRAIN: Duration = Duration::from_millis(500);
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A child that ran this long healthy starts its next backoff from the beginning.
const STABLE_AFTER: Duration = Duration::from_secs(30);

/// The wait before restarting a child that died: doubles from [`BACKOFF_FIRST`] up to
/// [`BACKOFF_MAX`], and starts over after a run that stayed up [`STABLE_AFTER`].
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff { next: BACKOFF_FIRST }
    }

    /// The wait after a run that lasted `ran`.
    fn after(&mut self, ran: Duration) -> Duration {
        if ran > STABLE_AFTER {
            self.next = BACKOFF_FIRST;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        wait
    }
}

/// One child: how to start it and, once up, where it listens.
#[derive(Debug, Clone)]
struct Spec {
    id: String,
    service: Option<String>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    env_remove: Vec<OsString>,
    /// Relay its stderr (its logs) line by line with its id in front; off for JSON logs,
    /// which a prefix would make unparsable.
    prefix_logs: bool,
    /// The ports this process will listen on, held by the supervisor until it is spawned
    /// (then released, just before): empty for the others.
    reserved: Arc<Mutex<Vec<std::net::TcpListener>>>,
}

/// The registry as the supervisor knows it; every change is written to the file the other
/// processes follow.
#[derive(Clone)]
struct Book {
    path: PathBuf,
    instances: Arc<Mutex<Vec<Instance>>>,
}

impl Book {
    fn update(&self, f: impl FnOnce(&mut Vec<Instance>)) {
        let mut list = self.instances.lock().unwrap_or_else(|p| p.into_inner());
        let before = list.clone();
        f(&mut list);
        if *list != before
            && let Err(e) = write_file(&self.path, &list)
        {
            tracing::error!(error = %e, "cannot write the registry file");
        }
    }
}

/// A child's public state, for the start-up summary.
#[derive(Debug, Clone, PartialEq)]
enum State {
    Starting,
    Ready(SocketAddr, u32),
    Failed(String),
}

/// Where `up` listens: the public API, and `/metrics` apart if given.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub public: SocketAddr,
    pub metrics: Option<SocketAddr>,
}

/// Runs the processes of `config.topology`'s plan until `shutdown` completes, then stops
/// them all; the faults a last run left in force are cleared first unless `keep_faults`. Each child is `exe` with its [`crate::plan::Process::command`], the one that
/// serves the public API with `--listen public` (and, given `metrics`, with
/// `--metrics-listen metrics`, leaving `/metrics` off the public listener), and `config`
/// handed over whole.
pub async fn supervise(
    config: crate::ShopConfig,
    exe: PathBuf,
    ports: Ports,
    keep_faults: bool,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut config = config;
    // The ports first: one in use fails here, before anything is written. Every child is
    // told where the public edge will be before it starts, for the spans it sends to the
    // trace store there: port 0 is resolved here, once.
    // Held until the process that serves them is spawned: no other program, and none of
    // this shop's own children binding port 0, can be handed them meanwhile.
    let metrics = ports.metrics.map(reserve_port).transpose()?;
    let public = reserve_port(ports.public)?;
    let (public_addr, metrics_addr) = (public.addr, metrics.as_ref().map(|m| m.addr));
    let held = std::iter::once(public.listener).chain(metrics.map(|m| m.listener)).collect();
    let reserved = Arc::new(Mutex::new(held));
    let (public, metrics) = (public_addr, metrics_addr);
    config.metrics_apart = metrics.is_some();
    let data_dir = config.data_dir.clone();
    crate::create_private_dir(&data_dir)?;
    crate::faults::faults_of_the_last_run(&data_dir, keep_faults)?;
    if config.telemetry.store_endpoint.is_none() {
        config.telemetry.store_endpoint =
            Some(telemetry::traces_url(&format!("http://{}", reachable(public))));
    }
    // Created here, before any child races to create it.
    crate::Keyring::open(&data_dir)?.create_all(&config.topology)?;
    // The admin, here and once, whichever process hosts identity (a function starts only
    // on demand): its children are handed no password.
    let admin = crate::bootstrap_admin(&config).await?;
    config.admin.password = None;
    let book = Book { path: registry_file(&data_dir), instances: Arc::default() };
    write_file(&book.path, &[]).context("cannot write the registry file")?;

    let cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();
    // The processes to start come from the plan: service instances first, the gateway
    // (when it runs alone) once they are all ready.
    let placement = crate::Plan::of(&config.topology);
    let mut services = Vec::new();
    let mut gateway = None;
    for p in placement.at_start() {
        let mut args: Vec<OsString> = p.command.iter().map(OsString::from).collect();
        if p.public {
            args.extend(["--listen".into(), public.to_string().into()]);
            if let Some(m) = metrics {
                args.extend(["--metrics-listen".into(), m.to_string().into()]);
            }
        }
        let crate::ChildEnv { set: env, remove: env_remove } = config.child_env(p)?;
        let service = match &p.role {
            crate::ProcessRole::Service { name, .. } => Some(name.clone()),
            _ => None,
        };
        let spec = Spec {
            id: p.id.clone(),
            service,
            args,
            env,
            env_remove,
            prefix_logs: !config.telemetry.json_logs,
            reserved: if p.public { reserved.clone() } else { Arc::default() },
        };
        match p.role {
            crate::ProcessRole::Gateway => gateway = Some(spec),
            _ => services.push(spec),
        }
    }
    let mut states = Vec::new();
    for spec in services {
        let (tx, rx) = watch::channel(State::Starting);
        states.push((spec.id.clone(), rx));
        tasks.spawn(keep_running(exe.clone(), spec, book.clone(), tx, cancel.clone()));
    }
    // Readiness before routing: the gateway starts once every instance answered /readyz.
    let ready = wait_all(&mut states, START_TIMEOUT).await;
    if let Err(e) = ready {
        cancel.cancel();
        while tasks.join_next().await.is_some() {}
        return Err(e);
    }
    if let Some(spec) = gateway {
        let (tx, rx) = watch::channel(State::Starting);
        tasks.spawn(keep_running(exe.clone(), spec, book.clone(), tx, cancel.clone()));
        let mut gateway = vec![("gateway".to_owned(), rx)];
        if let Err(e) = wait_all(&mut gateway, START_TIMEOUT).await {
            cancel.cancel();
            while tasks.join_next().await.is_some() {}
            return Err(e);
        }
        states.extend(gateway);
    }

    let modules = |id: &str| {
        placement
            .process(id)
            .filter(|p| !p.modules.is_empty())
            .map(|p| p.modules.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", "))
            .unwrap_or_else(|| "public edge".into())
    };
    let functions: Vec<_> =
        placement.processes.iter().filter(|p| p.start == crate::plan::Start::OnDemand).collect();
    println!(
        "Microlith is running (topology: {}, {} {}, {} {})",
        config.topology,
        states.len(),
        if states.len() == 1 { "process" } else { "processes" },
        functions.len(),
        if functions.len() == 1 { "function" } else { "functions" },
    );
    for (id, rx) in &states {
        if let State::Ready(addr, pid) = &*rx.borrow() {
            println!("  {id:<16} http://{addr:<22} pid {pid:<7} {}", modules(id));
        }
    }
    for f in functions {
        // Its instances start on demand, in the function host of the public process.
        println!("  {:<16} {:<34} {}", f.id, "function, started on demand", modules(&f.id));
    }
    let public = states
        .iter()
        .find(|(id, _)| id == "gateway")
        .and_then(|(_, rx)| match &*rx.borrow() {
            State::Ready(addr, _) => Some(*addr),
            _ => None,
        })
        .unwrap_or(public);
    println!("  shop:            http://{public}  (API under /api/v1)");
    if let Some(m) = metrics {
        println!("  metrics:         http://{m}/metrics");
    }
    println!("  data:            {}", data_dir.display());
    for line in crate::admin_lines(&config.admin.email, &admin) {
        println!("{line}");
    }
    println!("Press Ctrl-C to stop.");

    shutdown.await;
    println!(
        "Stopping {} {}…",
        states.len(),
        if states.len() == 1 { "process" } else { "processes" }
    );
    cancel.cancel();
    while tasks.join_next().await.is_some() {}
    let _ = std::fs::remove_file(&book.path);
    println!("Stopped.");
    Ok(())
}

/// A port the supervisor holds for the process that will serve it.
struct Reserved {
    addr: SocketAddr,
    listener: std::net::TcpListener,
}

/// `addr` bound (a port in use fails here, before anything is written), with a free port
/// in place of port 0, and held until the process that serves it is spawned
/// ([`Spec::reserved`]). A crashed process's port is free until its restart.
fn reserve_port(addr: SocketAddr) -> anyhow::Result<Reserved> {
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    Ok(Reserved { addr: listener.local_addr()?, listener })
}

/// An address a client can connect to for a listener on `addr` (an unspecified IP means
/// every interface, loopback included).
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, addr.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

async fn wait_all(
    states: &mut [(String, watch::Receiver<State>)],
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    for (id, rx) in states.iter_mut() {
        let outcome = tokio::time::timeout_at(
            deadline,
            rx.wait_for(|s| matches!(s, State::Ready(..) | State::Failed(_))),
        )
        .await;
        match outcome {
            Ok(Ok(s)) => {
                if let State::Failed(why) = &*s {
                    anyhow::bail!("{id} did not start: {why}");
                }
            }
            Ok(Err(_)) => anyhow::bail!("{id} stopped while starting"),
            Err(_) => anyhow::bail!("{id} was not ready within {}s", timeout.as_secs()),
        }
    }
    Ok(())
}

/// Starts the child, health-checks it, restarts it with backoff when it dies, and stops it
/// when `cancel` fires.
async fn keep_running(
    exe: PathBuf,
    spec: Spec,
    book: Book,
    state: watch::Sender<State>,
    cancel: CancellationToken,
) {
    let http = reqwest::Client::builder().timeout(HEALTH_TIMEOUT).build().unwrap_or_default();
    let mut backoff = Backoff::new();
    let mut ever_ready = false;
    loop {
        let started = Instant::now();
        match run_once(&exe, &spec, &book, &state, &http, &cancel).await {
            Ok(Ended::Stopped) => return,
            Ok(Ended::Exited(status)) => {
                tracing::warn!(instance = %spec.id, %status, "process exited; restarting");
                ever_ready = true;
            }
            Err(e) => {
                tracing::error!(instance = %spec.id, error = %format!("{e:#}"), "process failed");
                if !ever_ready {
                    // A child that never came up will not come up by retrying (bad flags,
                    // a taken port): report it and let `up` stop.
                    state.send_replace(State::Failed(format!("{e:#}")));
                    return;
                }
            }
        }
        let wait = backoff.after(started.elapsed());
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

enum Ended {
    Stopped,
    Exited(std::process::ExitStatus),
}

async fn run_once(
    exe: &PathBuf,
    spec: &Spec,
    book: &Book,
    state: &watch::Sender<State>,
    http: &reqwest::Client,
    cancel: &CancellationToken,
) -> anyhow::Result<Ended> {
    let mut command = Command::new(exe);
    // Only the process that bootstraps the admin account (the one with identity, or the
    // function host that starts identity's instances) gets its password.
    for name in &spec.env_remove {
        command.env_remove(name);
    }
    if spec.prefix_logs && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        // Its stderr is a pipe now; the terminal at the end of it still takes colour.
        command.env(FORCE_COLOUR_ENV, "1");
    } else {
        // Not one the user exported for `up`: the lines go to a file or a pipe.
        command.env_remove(FORCE_COLOUR_ENV);
    }
    // The reserved ports are released now, for the child to bind a moment later.
    spec.reserved.lock().unwrap_or_else(|p| p.into_inner()).clear();
    let mut child = command
        .args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        // The child stops when this pipe closes: if the supervisor dies, even by SIGKILL,
        // its children do not live on as orphans.
        .env(SUPERVISED_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(if spec.prefix_logs { Stdio::piped() } else { Stdio::inherit() })
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    let relay = child.stderr.take().map(|stderr| {
        let id = spec.id.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                eprintln!("[{id}] {l}");
            }
        })
    });
    let ended = watch_child(&mut child, spec, book, state, http, cancel).await;
    // Its last lines (why it crashed, how it stopped) are relayed before anything else
    // happens; bounded, for a pipe some process it started may still hold.
    if let Some(relay) = relay {
        let _ = tokio::time::timeout(RELAY_DRAIN, relay).await;
    }
    ended
}

/// Relays `child`'s output until it is ready, then health-checks it into the registry,
/// until it exits or `cancel` stops it.
async fn watch_child(
    child: &mut Child,
    spec: &Spec,
    book: &Book,
    state: &watch::Sender<State>,
    http: &reqwest::Client,
    cancel: &CancellationToken,
) -> anyhow::Result<Ended> {
    let pid = child.id().unwrap_or(0);
    let _lifeline = child.stdin.take();
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();

    // Until the ready line: relay output, watch for an early exit.
    let addr = loop {
        tokio::select! {
            () = cancel.cancelled() => {
                stop(child, &spec.id).await;
                return Ok(Ended::Stopped);
            }
            status = child.wait() => {
                let status = status?;
                anyhow::bail!("exited with {status} before it was ready");
            }
            line = lines.next_line() => match line? {
                Some(l) => match l.strip_prefix(READY_LINE) {
                    Some(rest) => break rest.trim().parse::<SocketAddr>()
                        .with_context(|| format!("bad ready line {l:?}"))?,
                    None => println!("[{}] {l}", spec.id),
                },
                None => {
                    let status = child.wait().await?;
                    anyhow::bail!("exited with {status} before it was ready");
                }
            }
        }
    };
    let id = spec.id.clone();
    tokio::spawn(async move {
        while let Ok(Some(l)) = lines.next_line().await {
            println!("[{id}] {l}");
        }
    });

    let mut healthy = false;
    let mut tick = tokio::time::interval(HEALTH_EVERY);
    let ended = loop {
        tokio::select! {
            () = cancel.cancelled() => {
                unregister(book, &spec.id);
                stop(child, &spec.id).await;
                break Ended::Stopped;
            }
            status = child.wait() => {
                unregister(book, &spec.id);
                state.send_replace(State::Starting);
                break Ended::Exited(status?);
            }
            _ = tick.tick() => {
                let now = http
                    .get(format!("http://{addr}/readyz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if now != healthy {
                    healthy = now;
                    tracing::info!(instance = %spec.id, healthy, "health changed");
                    if let Some(service) = &spec.service {
                        let instance = Instance {
                            service: service.clone(),
                            id: spec.id.clone(),
                            address: addr,
                            healthy,
                            pid: Some(pid),
                        };
                        book.update(|list| {
                            list.retain(|i| i.id != instance.id);
                            list.push(instance);
                        });
                    }
                    if healthy {
                        state.send_replace(State::Ready(addr, pid));
                    }
                }
            }
        }
    };
    Ok(ended)
}

fn unregister(book: &Book, id: &str) {
    book.update(|list| list.retain(|i| i.id != id));
}

/// SIGTERM, then SIGKILL if the child has not stopped within the grace period.
async fn stop(child: &mut Child, id: &str) {
    if let Some(pid) = child.id() {
        let pid = nix::unistd::Pid::from_raw(pid as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_ok() {
            return;
        }
        tracing::warn!(instance = id, "did not stop in time; killing it");
    }
    let _ = child.kill().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_back_off_and_start_over_after_a_stable_run() {
        let mut b = Backoff::new();
        let crash = Duration::from_millis(50);
        let waits: Vec<u128> = (0..8).map(|_| b.after(crash).as_millis()).collect();
        assert_eq!(waits, [200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
        assert_eq!(b.after(STABLE_AFTER + Duration::from_secs(1)), BACKOFF_FIRST, "a fresh start");
        assert_eq!(b.after(crash), BACKOFF_FIRST * 2);
    }
}
