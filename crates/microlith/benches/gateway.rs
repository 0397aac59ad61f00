//! Gateway overhead bench: what the whole Microlith stack costs on one cheap read, next to
//! a bare axum server measured in the same run on the same machine.
//!
//! What is measured: `GET /api/v1/products/{id}` answered by
//! - the real shop, `microlith up` (release build) in a child process with a fresh data
//!   directory and rate limits raised out of the way; the request is anonymous and goes
//!   through the full stack: request id and tracing span, CORS, token check, rate limiter,
//!   error shaping, the catalog module and a SQLite read;
//! - a reference: a bare axum 0.8 router with that single route answering the same product
//!   JSON (fetched from the shop at start) from memory. It is this bench binary re-executed
//!   with `--reference-server`, so that both servers are separate processes with the same
//!   tokio runtime setup and their memory and CPU can be compared.
//!
//! The load generator (this process, reqwest) keeps C keep-alive HTTP/1.1 connections busy
//! (closed loop: each connection sends the next request when the previous answer has been
//! read), first for a warm-up, then for a measured phase of fixed length. Latencies of
//! successful answers (status 200, body read) go into an HDR histogram. The servers are
//! measured alternately (reference, shop, reference, shop, ...) and the best run of each
//! (highest throughput) is reported; errors are the total over all measured runs. Memory is
//! read from `/proc/<pid>/status`: `VmRSS` when idle (after start, before any load) and
//! `VmHWM` (peak RSS) after all runs. "CPU µs/req" is the user+system CPU time the server
//! process spent during the measured phase divided by the requests it answered (from
//! `/proc/<pid>/stat`, assuming the usual Linux USER_HZ of 100).
//!
//! How to run:
//!
//! ```text
//! cargo bench -p microlith --bench gateway
//! BENCH_SECS=5 BENCH_CONNS=64 cargo bench -p microlith --bench gateway
//! ```
//!
//! Settings (environment): `BENCH_SECS` measured seconds per run (default 10),
//! `BENCH_CONNS` concurrent connections (default 32), `BENCH_WARMUP_SECS` (default 2),
//! `BENCH_ROUNDS` runs per server (default 2). Without `--bench` (which `cargo bench` passes),
//! e.g. under `cargo test --all-targets`, it only does a short smoke run.
//!
//! How to read the ratio line: shop/reference. For req/s, 0.40 means the shop serves 40% of
//! what bare axum serves on this machine (lower is worse); for latencies and CPU per request,
//! 2.5 means 2.5 times as long or as much (higher is worse). The reference is a floor, not a
//! target: it does no work at all. The load generator runs on the same cores as the server
//! under test, so absolute numbers are those of a shared machine; compare the ratio.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

const SHOP_BIN: &str = env!("CARGO_BIN_EXE_microlith");
const REFERENCE_FLAG: &str = "--reference-server";
const REFERENCE_BODY_ENV: &str = "MICROLITH_BENCH_REFERENCE_BODY";
/// Used by the reference server only if the parent passed no body.
const FALLBACK_BODY: &str = r#"{"id":"0190f3c2-5b1e-7c3a-9d2e-3f4a5b6c7d8e","sku":"BENCH-001","name":"Bench product","description":"A product that exists only to be fetched very many times by a benchmark.","price":{"amount_minor":1999,"currency":"EUR"},"category":"bench","active":true,"created_at":"2025-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00Z"}"#;
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Linux reports process CPU times in clock ticks of 1/USER_HZ s; USER_HZ is 100 on every
/// mainstream architecture.
const TICKS_PER_SEC: f64 = 100.0;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == REFERENCE_FLAG) {
        reference_server();
        return;
    }
    let settings = Settings::from_env(args.iter().any(|a| a == "--bench"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("cannot start the load generator's tokio runtime");

    eprintln!("[bench] starting the shop ({SHOP_BIN})");
    let shop = Server::shop();
    eprintln!("[bench] shop listening on {}", shop.addr);
    let (product_path, body) = rt.block_on(pick_product(shop.addr));
    eprintln!("[bench] target {product_path} ({} bytes of JSON)", body.len());

    eprintln!("[bench] starting the bare axum reference");
    let reference = Server::reference(&body);
    eprintln!("[bench] reference listening on {}", reference.addr);
    rt.block_on(check_same_answer(reference.addr, &product_path, &body));

    // Reference first, then the shop, alternately.
    let mut servers = [reference, shop];
    let idle = servers.each_ref().map(Server::memory);
    let mut runs: [Vec<RunResult>; 2] = [Vec::new(), Vec::new()];
    for round in 1..=settings.rounds {
        for (server, results) in servers.iter_mut().zip(&mut runs) {
            results.push(rt.block_on(run_load(server, &product_path, &settings, round)));
        }
    }
    let peak = servers.each_ref().map(Server::memory);

    print_report(&settings, &runs, &idle, &peak);
    eprintln!("[bench] done, stopping the servers");
}

/// Bench parameters, from the environment.
struct Settings {
    conns: usize,
    warmup: Duration,
    measure: Duration,
    rounds: usize,
}

impl Settings {
    fn from_env(full: bool) -> Self {
        // Without `--bench` (e.g. `cargo test --all-targets`): a smoke run that only shows the
        // bench still works.
        let (conns, warmup, measure, rounds) =
            if full { (32, 2.0, 10.0, 2) } else { (4, 0.3, 0.5, 1) };
        Settings {
            conns: env_number("BENCH_CONNS", conns as f64, 1.0, 1024.0) as usize,
            warmup: Duration::from_secs_f64(env_number("BENCH_WARMUP_SECS", warmup, 0.0, 600.0)),
            measure: Duration::from_secs_f64(env_number("BENCH_SECS", measure, 0.1, 600.0)),
            rounds: env_number("BENCH_ROUNDS", rounds as f64, 1.0, 10.0) as usize,
        }
    }
}

fn env_number(name: &str, default: f64, min: f64, max: f64) -> f64 {
    let Ok(raw) = std::env::var(name) else {
        return default;
    };
    match raw.trim().parse::<f64>() {
        Ok(v) if (min..=max).contains(&v) => v,
        _ => panic!("{name}={raw:?}: expected a number from {min} to {max}"),
    }
}

// ---------------------------------------------------------------------------------------
// Child processes

/// Kills the child when dropped, also when the bench panics.
struct ChildGuard {
    child: Child,
    /// Held open for the reference server, which exits when its stdin closes (so it does
    /// not outlive a bench that was killed).
    _stdin: Option<ChildStdin>,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Server {
    name: &'static str,
    addr: SocketAddr,
    // Field order matters: the child is killed before its data directory is removed.
    child: ChildGuard,
    /// The serving process: the shop's (which the supervisor, `child`, runs), or `child`.
    pid: u32,
    _data_dir: Option<tempfile::TempDir>,
}

impl Server {
    fn shop() -> Self {
        let data_dir = tempfile::tempdir().expect("cannot create a temporary data directory");
        let mut cmd = Command::new(SHOP_BIN);
        cmd.arg("up")
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(["--listen", "127.0.0.1:0"])
            .args(["--rate-limit-user", "1000000", "--rate-limit-user-burst", "1000000"])
            .args(["--rate-limit-address", "1000000", "--rate-limit-address-burst", "1000000"])
            .env("MICROLITH_ADMIN_EMAIL", "admin@bench.example")
            .env("MICROLITH_ADMIN_PASSWORD", "bench-password-123")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        let (child, addr, pid) = spawn_and_wait_for_address(cmd, "microlith up", false);
        let pid = pid.expect("the banner gives the shop process's pid");
        Server { name: "microlith monolith", addr, child, pid, _data_dir: Some(data_dir) }
    }

    fn reference(body: &str) -> Self {
        let exe = std::env::current_exe().expect("cannot find the bench executable");
        let mut cmd = Command::new(exe);
        cmd.arg(REFERENCE_FLAG).env(REFERENCE_BODY_ENV, body);
        let (child, addr, _) = spawn_and_wait_for_address(cmd, "reference server", true);
        let pid = child.child.id();
        Server { name: "bare axum (ref)", addr, child, pid, _data_dir: None }
    }

    fn pid(&self) -> u32 {
        self.pid
    }

    /// Fails loudly if the server died (a crash would otherwise show up as errors only).
    fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.child.try_wait() {
            panic!("{} exited during the bench: {status}", self.name);
        }
        // A supervised shop process that died would be restarted under a new pid.
        let alive = std::path::Path::new(&format!("/proc/{}", self.pid)).exists();
        assert!(alive, "{} (pid {}) died during the bench", self.name, self.pid);
    }

    fn memory(&self) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok();
        let field = |key: &str| -> Option<u64> {
            let line = status.as_deref()?.lines().find(|l| l.starts_with(key))?;
            line[key.len()..].split_whitespace().next()?.parse().ok()
        };
        Memory { rss_kib: field("VmRSS:"), hwm_kib: field("VmHWM:") }
    }

    fn cpu_secs(&self) -> Option<f64> {
        process_cpu_secs(self.pid())
    }
}

/// Starts `cmd` with its stdout piped and waits for the first line with `http://ADDR`. A
/// thread keeps draining stdout afterwards so that the child never blocks on a full pipe.
fn spawn_and_wait_for_address(
    mut cmd: Command,
    what: &str,
    hold_stdin: bool,
) -> (ChildGuard, SocketAddr, Option<u32>) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    if hold_stdin {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start the {what}: {e}"));
    let stdout = child.stdout.take().expect("stdout is piped");
    let stdin = child.stdin.take();
    let mut guard = ChildGuard { child, _stdin: stdin };

    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = parse_address(&line)
                && let Some(tx) = tx.take()
            {
                // The supervisor's banner: `ID  http://ADDR  pid PID  modules`.
                let pid = line.split(" pid ").nth(1).and_then(|r| r.split_whitespace().next());
                let _ = tx.send((addr, pid.and_then(|p| p.parse().ok())));
            }
        }
    });
    match rx.recv_timeout(STARTUP_TIMEOUT) {
        Ok((addr, pid)) => (guard, addr, pid),
        Err(e) => {
            let status = guard.child.try_wait().ok().flatten();
            panic!("the {what} printed no `http://` address ({e}); exit status: {status:?}");
        }
    }
}

fn parse_address(line: &str) -> Option<SocketAddr> {
    let start = line.find("http://")? + "http://".len();
    line[start..].split_whitespace().next()?.trim_end_matches('/').parse().ok()
}

#[derive(Clone, Copy)]
struct Memory {
    rss_kib: Option<u64>,
    hwm_kib: Option<u64>,
}

/// User + system CPU seconds used so far by process `pid` (all its threads, dead ones too).
fn process_cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces:
    // state is field 3, utime 14 and stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SEC)
}

// ---------------------------------------------------------------------------------------
// The reference server (this binary, re-executed)

fn reference_server() {
    let body = std::env::var(REFERENCE_BODY_ENV).unwrap_or_else(|_| FALLBACK_BODY.to_owned());
    // The parent holds our stdin: when it goes away, so do we.
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let rt = tokio::runtime::Runtime::new().expect("cannot start the reference's runtime");
    rt.block_on(async move {
        let app = axum::Router::new()
            .route("/api/v1/products/{id}", axum::routing::get(reference_product))
            .with_state(axum::body::Bytes::from(body));
        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("cannot bind the reference");
        println!("http://{}", listener.local_addr().expect("bound address"));
        axum::serve(listener, app).await.expect("reference server failed");
    });
}

async fn reference_product(
    axum::extract::State(body): axum::extract::State<axum::body::Bytes>,
    axum::extract::Path(_id): axum::extract::Path<String>,
) -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body)
}

// ---------------------------------------------------------------------------------------
// Load generation

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .pool_max_idle_per_host(1)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("cannot build the HTTP client")
}

/// The first product of the seeded catalog: its path and its JSON as the shop serves it.
async fn pick_product(addr: SocketAddr) -> (String, String) {
    let client = client();
    let list: serde_json::Value = client
        .get(format!("http://{addr}/api/v1/products"))
        .query(&[("limit", "1")])
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("GET /api/v1/products failed")
        .json()
        .await
        .expect("GET /api/v1/products: not JSON");
    let id = list["items"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no product in the seeded catalog: {list}"))
        .to_owned();
    let path = format!("/api/v1/products/{id}");
    let res = client.get(format!("http://{addr}{path}")).send().await.expect("GET product failed");
    assert_eq!(res.status(), reqwest::StatusCode::OK, "GET {path}");
    let body = res.text().await.expect("GET product: no body");
    (path, body)
}

async fn check_same_answer(addr: SocketAddr, path: &str, body: &str) {
    let res =
        client().get(format!("http://{addr}{path}")).send().await.expect("reference: GET failed");
    assert_eq!(res.status(), reqwest::StatusCode::OK, "reference: GET {path}");
    assert_eq!(
        res.text().await.expect("reference: no body"),
        body,
        "reference answers another body"
    );
}

struct RunResult {
    req_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    errors: u64,
    server_cpu_us: Option<f64>,
    client_cpu_us: Option<f64>,
}

#[derive(Default)]
struct Tally {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    latency_us: Option<Histogram<u64>>,
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

async fn run_load(server: &mut Server, path: &str, settings: &Settings, round: usize) -> RunResult {
    let url = reqwest::Url::parse(&format!("http://{}{path}", server.addr)).expect("valid URL");
    // One client per connection: each has its own pool, so exactly `conns` connections,
    // kept alive through the warm-up and the measured phase.
    let clients: Vec<reqwest::Client> = (0..settings.conns).map(|_| client()).collect();
    let label = format!("round {round}/{} {}", settings.rounds, server.name);

    eprintln!("[bench] {label}: warm-up {:.1} s", settings.warmup.as_secs_f64());
    let _ = load_phase(&clients, &url, settings.warmup).await;
    server.assert_alive();

    eprintln!("[bench] {label}: measuring {:.1} s", settings.measure.as_secs_f64());
    let server_cpu_before = server.cpu_secs();
    let client_cpu_before = process_cpu_secs(std::process::id());
    let started = Instant::now();
    let tally = load_phase(&clients, &url, settings.measure).await;
    let elapsed = started.elapsed().as_secs_f64();
    let per_request_us = |before: Option<f64>, after: Option<f64>| match (before, after) {
        (Some(b), Some(a)) if tally.ok > 0 => Some((a - b) * 1e6 / tally.ok as f64),
        _ => None,
    };
    let server_cpu_us = per_request_us(server_cpu_before, server.cpu_secs());
    let client_cpu_us = per_request_us(client_cpu_before, process_cpu_secs(std::process::id()));
    drop(clients);
    server.assert_alive();

    let hist = tally.latency_us.unwrap_or_else(histogram);
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let result = RunResult {
        req_per_sec: tally.ok as f64 / elapsed,
        p50_ms: ms(0.50),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        errors: tally.errors,
        server_cpu_us,
        client_cpu_us,
    };
    eprintln!(
        "[bench] {label}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, {} errors, \
         CPU µs/req server {} / load generator {}",
        result.req_per_sec,
        result.p50_ms,
        result.p99_ms,
        result.p999_ms,
        result.errors,
        opt(result.server_cpu_us, 1),
        opt(result.client_cpu_us, 1),
    );
    if let Some(e) = &tally.first_error {
        eprintln!("[bench] {label}: first error: {e}");
    }
    result
}

/// Keeps every client busy until `duration` is over; returns the merged tally.
async fn load_phase(clients: &[reqwest::Client], url: &reqwest::Url, duration: Duration) -> Tally {
    let deadline = Instant::now() + duration;
    let mut workers = tokio::task::JoinSet::new();
    for client in clients {
        workers.spawn(worker(client.clone(), url.clone(), deadline));
    }
    let mut total = Tally { latency_us: Some(histogram()), ..Tally::default() };
    while let Some(joined) = workers.join_next().await {
        let tally = joined.expect("a load worker panicked");
        total.ok += tally.ok;
        total.errors += tally.errors;
        if total.first_error.is_none() {
            total.first_error = tally.first_error;
        }
        if let (Some(t), Some(h)) = (total.latency_us.as_mut(), tally.latency_us) {
            t.add(h).expect("histograms with the same bounds");
        }
    }
    total
}

async fn worker(client: reqwest::Client, url: reqwest::Url, deadline: Instant) -> Tally {
    let mut tally = Tally { latency_us: Some(histogram()), ..Tally::default() };
    while Instant::now() < deadline {
        let sent = Instant::now();
        let outcome = match client.get(url.clone()).send().await {
            Ok(res) => {
                let status = res.status();
                match res.bytes().await {
                    Ok(_) if status == reqwest::StatusCode::OK => Ok(()),
                    Ok(body) => Err(format!("status {status}: {}", String::from_utf8_lossy(&body))),
                    Err(e) => Err(format!("reading the body: {e}")),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => {
                tally.ok += 1;
                let us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                if let Some(h) = tally.latency_us.as_mut() {
                    h.saturating_record(us.max(1));
                }
            }
            Err(e) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(e);
                // Do not spin if the server is gone; the phase still ends at the deadline.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    tally
}

// ---------------------------------------------------------------------------------------
// Report

fn print_report(
    settings: &Settings,
    runs: &[Vec<RunResult>; 2],
    idle: &[Memory; 2],
    peak: &[Memory; 2],
) {
    let best = |results: &[RunResult]| -> usize {
        (0..results.len())
            .max_by(|&a, &b| results[a].req_per_sec.total_cmp(&results[b].req_per_sec))
            .expect("at least one run")
    };
    let reference = &runs[0][best(&runs[0])];
    let shop = &runs[1][best(&runs[1])];
    let errors =
        [runs[0].iter().map(|r| r.errors).sum::<u64>(), runs[1].iter().map(|r| r.errors).sum()];

    println!();
    println!(
        "gateway bench: GET /api/v1/products/{{id}}, {} connections, {} s per run ({} s warm-up), best of {}",
        settings.conns,
        secs(settings.measure),
        secs(settings.warmup),
        settings.rounds,
    );
    println!(
        "{:<20}{:>10}{:>10}{:>10}{:>10}{:>10}{:>14}",
        "", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "CPU µs/req"
    );
    for (name, r, errors) in
        [("bare axum (ref)", reference, errors[0]), ("microlith monolith", shop, errors[1])]
    {
        println!(
            "{name:<20}{:>10.0}{:>10.2}{:>10.2}{:>10.2}{errors:>10}{:>14}",
            r.req_per_sec,
            r.p50_ms,
            r.p99_ms,
            r.p999_ms,
            opt(r.server_cpu_us, 1),
        );
    }
    let ratio =
        |shop: f64, reference: f64| if reference > 0.0 { shop / reference } else { f64::NAN };
    let cpu_ratio = match (shop.server_cpu_us, reference.server_cpu_us) {
        (Some(s), Some(r)) => Some(ratio(s, r)),
        _ => None,
    };
    println!(
        "{:<20}{:>10.2}{:>10.2}{:>10.2}{:>10.2}{:>10}{:>14}",
        "ratio shop/ref",
        ratio(shop.req_per_sec, reference.req_per_sec),
        ratio(shop.p50_ms, reference.p50_ms),
        ratio(shop.p99_ms, reference.p99_ms),
        ratio(shop.p999_ms, reference.p999_ms),
        "",
        opt(cpu_ratio, 2),
    );
    println!("{:<20}{:>10}{:>10}", "memory (MiB)", "idle RSS", "peak RSS");
    for (i, name) in ["bare axum", "microlith"].into_iter().enumerate() {
        println!("{name:<20}{:>10}{:>10}", mib(idle[i].rss_kib), mib(peak[i].hwm_kib));
    }
    println!(
        "load generator CPU µs/req (same machine): {} during ref runs, {} during shop runs",
        opt(reference.client_cpu_us, 1),
        opt(shop.client_cpu_us, 1),
    );
    println!(
        "(best run = highest req/s; errors = all measured runs; CPU = server process user+sys / answered requests)"
    );
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 { format!("{s:.0}") } else { format!("{s:.1}") }
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "n/a".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0))
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.decimals$}"))
}
