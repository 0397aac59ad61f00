//! What a placement costs: the same workload on `monolith` and on `microservices`, each
//! run as `microlith up` (release binary, real processes) side by side in the same bench
//! run, every load phase alternating between the two in rounds (A B B A), failures
//! counted and reported; and one internal call next to a bare hyper echo round trip.
//!
//! 1. One remote call (`CatalogClient::remote` → internal route → an in-memory catalog:
//!    credential, context headers, JSON both ways) against a bare hyper HTTP/1.1 echo of a
//!    body of the same size, both on loopback, sequential, same keep-alive client settings.
//! 2. Product reads: `GET /api/v1/products/{id}`, C clients in a closed loop for the
//!    measured time: requests/s, p50, p99 (on microservices: gateway → catalog).
//! 3. Checkouts: S shoppers in a closed loop (cart PUT, POST 202, poll every 5 ms until
//!    `confirmed`): confirmed checkouts/s and time from POST to `confirmed`, p50, p99.
//! 4. Memory: resident set (VmRSS) of every process after the load, and its peak (VmHWM).
//! 5. Tracing: phases 2 and 3 on the monolith keeping every trace (the default) against
//!    tracing off (`OTEL_TRACES_SAMPLER=always_off`: nothing recorded), as a ratio in the
//!    same run; then the trace store's size per trace and its write rate.
//!
//! ```text
//! cargo bench -p microlith --bench topologies
//! BENCH_SECS=20 cargo bench -p microlith --bench topologies
//! ```
//!
//! Settings: `BENCH_SECS` seconds per load phase (default 8), `BENCH_CLIENTS` read clients
//! (default 16), `BENCH_SHOPPERS` (default 8); `BENCH_ONLY=tracing` runs phase 5 alone.
//! The load generator shares the two cores with the shop; compare the ratios, measured in
//! the same run, not the absolutes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod common;

use common::ADMIN_PASSWORD;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

const POLL: Duration = Duration::from_millis(5);

struct Settings {
    secs: u64,
    clients: usize,
    shoppers: usize,
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let settings = if bench {
        Settings {
            secs: env("BENCH_SECS", 8),
            clients: env("BENCH_CLIENTS", 16) as usize,
            shoppers: env("BENCH_SHOPPERS", 8) as usize,
        }
    } else {
        // `cargo test --benches`: a smoke run.
        Settings { secs: 1, clients: 2, shoppers: 2 }
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let only_tracing = std::env::var("BENCH_ONLY").is_ok_and(|v| v == "tracing");
    rt.block_on(async {
        if !only_tracing {
            remote_call_phase(if bench { 5000 } else { 200 }).await;
            let [mono, micro] = alternating(
                &settings,
                [Shop::new("monolith", "monolith"), Shop::new("microservices", "microservices")],
            )
            .await;
            compare(&mono, &micro);
        }
        // 5. What recording every trace costs: the monolith keeping every trace (spans to
        //    the built-in store) against recording none.
        let off = Shop {
            env: &[("OTEL_TRACES_SAMPLER", "always_off")],
            ..Shop::new("monolith, tracing off", "monolith")
        };
        let on = Shop::new("monolith, tracing on", "monolith");
        let ([off, on], [_, traced]) = alternating_kept(&settings, [off, on]).await;
        ratios("tracing on / off (monolith, same run):", &on, &off);
        trace_store(&traced, &on).await;
    });
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram")
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

// ---------------------------------------------------------------------------------------
// 1. One remote call against a bare hyper echo

async fn hyper_echo() -> std::net::SocketAddr {
    use http_body_util::{BodyExt as _, Full};
    use hyper::body::{Bytes, Incoming};
    use hyper::{Request, Response};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let body = req.into_body().collect().await?.to_bytes();
                    Ok::<_, hyper::Error>(Response::new(Full::<Bytes>::new(body)))
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    addr
}

async fn remote_call_phase(n: usize) {
    let product = catalog_api::Product {
        id: kernel::ProductId::new(),
        name: "Bench product".into(),
        description: "A product fetched very many times by a benchmark.".into(),
        category: "bench".into(),
        price: kernel::Money::new(1999, kernel::Currency::USD),
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
    };
    let body = serde_json::to_vec(&product).expect("json");
    let fake = catalog_api::CatalogClient::fake(vec![product.clone()]);
    let (remote, _server) =
        testkit::serve_internal("catalog", catalog_api::internal_routes(fake)).await;
    let client = catalog_api::CatalogClient::remote(remote);
    let ctx = kernel::RequestContext::anonymous();
    let echo = format!("http://{}/echo", hyper_echo().await);
    let http = rpc::http_pool();

    let (mut remote_h, mut echo_h) = (histogram(), histogram());
    for round in 0..2 {
        for i in 0..n {
            // Alternate, so both see the same machine state.
            let t = Instant::now();
            let got = client.get(&ctx, product.id).await.expect("remote get");
            let remote_us = t.elapsed().as_micros() as u64;
            assert_eq!(got.id, product.id);
            let t = Instant::now();
            let res = http.post(&echo).body(body.clone()).send().await.expect("echo");
            let bytes = res.bytes().await.expect("echo body");
            let echo_us = t.elapsed().as_micros() as u64;
            assert_eq!(bytes.len(), body.len());
            if round == 1 || i >= n / 2 {
                remote_h.record(remote_us.max(1)).ok();
                echo_h.record(echo_us.max(1)).ok();
            }
        }
    }
    println!(
        "1. one internal call vs a bare hyper echo ({} bytes), loopback, sequential",
        body.len()
    );
    println!(
        "   hyper echo:   p50 {:.3} ms  p99 {:.3} ms\n   remote call:  p50 {:.3} ms  p99 {:.3} ms\n   ratio remote/echo: p50 {:.2}x  p99 {:.2}x",
        ms(&echo_h, 0.5),
        ms(&echo_h, 0.99),
        ms(&remote_h, 0.5),
        ms(&remote_h, 0.99),
        ms(&remote_h, 0.5) / ms(&echo_h, 0.5),
        ms(&remote_h, 0.99) / ms(&echo_h, 0.99),
    );
}

// ---------------------------------------------------------------------------------------
// 2-4. The shop in each topology

fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// What a load phase measured: the latency of every success, and the failures.
struct Load {
    ok: u64,
    errors: u64,
    secs: f64,
    h: Histogram<u64>,
}

impl Load {
    fn empty() -> Load {
        Load { ok: 0, errors: 0, secs: 0.0, h: histogram() }
    }

    fn per_sec(&self) -> f64 {
        self.ok as f64 / self.secs.max(f64::EPSILON)
    }

    fn add(&mut self, other: Load) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.secs += other.secs;
        self.h.add(other.h).ok();
    }
}

struct TopologyResult {
    reads: Load,
    checkouts: Load,
    memory: Vec<(String, u64, u64)>,
}

async fn json(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.expect("an answer");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A running shop, ready for load: a product with ample stock, shoppers signed in.
struct Prepared {
    shop: common::Running,
    http: reqwest::Client,
    base: String,
    product: String,
    tokens: Arc<Vec<String>>,
    next: Arc<std::sync::atomic::AtomicUsize>,
}

/// A shop to start: its label, topology and environment.
struct Shop {
    label: &'static str,
    topology: &'static str,
    env: &'static [(&'static str, &'static str)],
}

impl Shop {
    fn new(label: &'static str, topology: &'static str) -> Shop {
        Shop { label, topology, env: &[] }
    }
}

async fn prepare(shop: &Shop, s: &Settings) -> Prepared {
    let shop = common::up_with_env(shop.topology, &[], shop.env);
    let base = shop.base.clone();
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("client");
    let (_, page) = json(http.get(format!("{base}/api/v1/products?limit=1"))).await;
    let product = page["items"][0]["id"].as_str().expect("a seeded product").to_owned();
    let login = json!({"email": common::ADMIN_EMAIL, "password": ADMIN_PASSWORD});
    let (_, token) = json(http.post(format!("{base}/api/v1/auth/login")).json(&login)).await;
    let admin = token["access_token"].as_str().expect("admin token").to_owned();
    let stock = json!({"available": 1_000_000});
    let put = http.put(format!("{base}/api/v1/inventory/{product}")).bearer_auth(&admin);
    assert_eq!(json(put.json(&stock)).await.0, 200);
    // One shopper per checkout worker, registered up front.
    let mut tokens = Vec::new();
    for n in 0..s.shoppers {
        let email = format!("bench{n}@test.example");
        let body = json!({"email": email, "password": "bench-password", "name": "Bench"});
        let register = http.post(format!("{base}/api/v1/auth/register")).json(&body);
        assert_eq!(json(register).await.0, 201);
        let login = json!({"email": email, "password": "bench-password"});
        let (_, t) = json(http.post(format!("{base}/api/v1/auth/login")).json(&login)).await;
        tokens.push(t["access_token"].as_str().expect("token").to_owned());
    }
    let tokens = Arc::new(tokens);
    Prepared { shop, http, base, product, tokens, next: Arc::default() }
}

/// 2. Product reads, C clients in a closed loop.
async fn reads(p: &Prepared, s: &Settings, time: Duration) -> Load {
    let url = format!("{}/api/v1/products/{}", p.base, p.product);
    closed_loop(s.clients, time, {
        let http = p.http.clone();
        move || {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let res = http.get(&url).send().await.ok()?;
                (res.status() == 200 && res.bytes().await.is_ok()).then_some(())
            }
        }
    })
    .await
}

/// 3. Checkouts, one shopper per worker.
async fn checkouts(p: &Prepared, s: &Settings, time: Duration) -> Load {
    closed_loop(s.shoppers, time, {
        let (http, base, product) = (p.http.clone(), p.base.clone(), p.product.clone());
        let (tokens, next) = (p.tokens.clone(), p.next.clone());
        move || {
            let (http, base, product) = (http.clone(), base.clone(), product.clone());
            let token = tokens[next.fetch_add(1, Ordering::Relaxed) % tokens.len()].clone();
            async move { checkout(&http, &base, &token, &product).await }
        }
    })
    .await
}

/// 4. Memory of every process of the shop, now.
fn memory(p: &Prepared) -> Vec<(String, u64, u64)> {
    p.shop
        .pids
        .iter()
        .map(|(id, pid)| {
            let (rss, hwm) = memory_kib(*pid);
            (id.clone(), rss, hwm)
        })
        .collect()
}

/// Two shops run side by side, and each load phase alternates between them in rounds
/// (A B B A …), so both see the same machine: a slow minute hits both alike. Each is
/// `(label, topology, extra flags of microlith up)`.
async fn alternating(s: &Settings, shops: [Shop; 2]) -> [TopologyResult; 2] {
    alternating_kept(s, shops).await.0
}

/// [`alternating`], handing back the shops still running.
async fn alternating_kept(s: &Settings, shops: [Shop; 2]) -> ([TopologyResult; 2], [Prepared; 2]) {
    const ROUNDS: u32 = 4;
    let prepared = [prepare(&shops[0], s).await, prepare(&shops[1], s).await];
    let slice = Duration::from_secs(s.secs) / ROUNDS;
    let (mut r, mut c) = ([Load::empty(), Load::empty()], [Load::empty(), Load::empty()]);
    for round in 0..ROUNDS {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            r[i].add(reads(&prepared[i], s, slice).await);
        }
    }
    for round in 0..ROUNDS {
        let order = if round % 2 == 0 { [1, 0] } else { [0, 1] };
        for i in order {
            c[i].add(checkouts(&prepared[i], s, slice).await);
        }
    }
    let [r0, r1] = r;
    let [c0, c1] = c;
    let a = TopologyResult { reads: r0, checkouts: c0, memory: memory(&prepared[0]) };
    let b = TopologyResult { reads: r1, checkouts: c1, memory: memory(&prepared[1]) };
    report(shops[0].label, &a);
    report(shops[1].label, &b);
    ([a, b], prepared)
}

/// 6. The trace store of `p` after its load: bytes on disk per trace and per span, and how
///    fast a store takes those very spans, against the rate the shop made them in the same
///    run (read requests/s of `load` times spans per trace): the store's headroom.
async fn trace_store(p: &Prepared, load: &TopologyResult) {
    // Give the last batches time to land.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let path = p.shop.data_dir().join("traces.db");
    let store = trace_store::TraceStore::open(&path, trace_store::DEFAULT_MAX_TRACES)
        .await
        .expect("the shop's trace store");
    let traces = store.trace_count().await.expect("count");
    let mut spans = Vec::new();
    let mut filter =
        trace_store::TraceFilter { limit: trace_store::MAX_PAGE, ..Default::default() };
    while spans.len() < 20_000 {
        let page = store.list(&filter).await.expect("list");
        let Some(last) = page.last() else { break };
        filter.before = Some(last.seq);
        for t in &page {
            spans.extend(store.trace(&t.trace_id).await.expect("trace"));
        }
    }
    // Closing checkpoints the write-ahead log into the file, so its size is the store's.
    store.close().await;
    let bytes: u64 = ["", "-wal"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", path.display())).ok())
        .map(|m| m.len())
        .sum();
    let sampled =
        spans.iter().map(|s| s.trace_id.as_str()).collect::<std::collections::HashSet<_>>().len();
    let per_trace = spans.len() as f64 / sampled.max(1) as f64;
    println!(
        "trace store: {traces} traces, {:.0} KiB on disk: {:.0} bytes per trace, {:.0} per span ({per_trace:.1} spans per trace)",
        bytes as f64 / 1024.0,
        bytes as f64 / traces.max(1) as f64,
        bytes as f64 / (traces.max(1) as f64 * per_trace),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let fresh = trace_store::TraceStore::open(
        &dir.path().join("traces.db"),
        trace_store::DEFAULT_MAX_TRACES,
    )
    .await
    .expect("a fresh store");
    let started = Instant::now();
    // In the exporter's batches (its default maximum, 512 spans).
    for batch in spans.chunks(512) {
        fresh.insert(batch).await.expect("insert");
    }
    let rate = spans.len() as f64 / started.elapsed().as_secs_f64();
    // The read phase has the highest request rate: one trace per request.
    let produced = load.reads.per_sec() * per_trace;
    println!(
        "   write rate: {rate:.0} spans/s into a fresh store; the shop made about {produced:.0} spans/s in the read phase: headroom {:.1}x",
        rate / produced.max(f64::EPSILON)
    );
    fresh.close().await;
}

/// One checkout; the time is from the POST to seeing `confirmed`.
async fn checkout(http: &reqwest::Client, base: &str, token: &str, product: &str) -> Option<()> {
    let put = http
        .put(format!("{base}/api/v1/cart/items/{product}"))
        .bearer_auth(token)
        .json(&json!({"quantity": 1}));
    if put.send().await.ok()?.status() != 200 {
        return None;
    }
    let post = http
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(token)
        .header("idempotency-key", uuid::Uuid::new_v4().to_string())
        .json(&json!({"payment_token": "tok_visa"}));
    let (status, order) = json(post).await;
    if status != 202 {
        return None;
    }
    let id = order["id"].as_str()?.to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let (_, o) = json(http.get(format!("{base}/api/v1/orders/{id}")).bearer_auth(token)).await;
        match o["status"].as_str() {
            Some("confirmed") => return Some(()),
            Some("cancelled") => return None,
            _ => tokio::time::sleep(POLL).await,
        }
    }
    None
}

/// `workers` loops of `op` for `time`; the latency of every success goes in the histogram.
async fn closed_loop<F, Fut>(workers: usize, time: Duration, op: F) -> Load
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Option<()>> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (op, stop) = (op.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let (mut h, mut errors) = (histogram(), 0);
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match op().await {
                    Some(()) => h.record((t.elapsed().as_micros() as u64).max(1)).ok(),
                    None => {
                        errors += 1;
                        None
                    }
                };
            }
            (h, errors)
        }));
    }
    tokio::time::sleep(time).await;
    stop.store(true, Ordering::Relaxed);
    let mut load = Load::empty();
    for t in tasks {
        let (h, errors) = t.await.expect("worker");
        load.errors += errors;
        load.ok += h.len();
        load.h.add(h).ok();
    }
    load.secs = started.elapsed().as_secs_f64();
    load
}

fn report(name: &str, r: &TopologyResult) {
    println!("{name}:");
    println!(
        "   product reads: {:>8.0}/s  p50 {:.2} ms  p99 {:.2} ms  errors {}",
        r.reads.per_sec(),
        ms(&r.reads.h, 0.5),
        ms(&r.reads.h, 0.99),
        r.reads.errors
    );
    println!(
        "   checkouts:     {:>8.1}/s  time to confirmed p50 {:.1} ms  p99 {:.1} ms  errors {}",
        r.checkouts.per_sec(),
        ms(&r.checkouts.h, 0.5),
        ms(&r.checkouts.h, 0.99),
        r.checkouts.errors
    );
    let total: u64 = r.memory.iter().map(|m| m.1).sum();
    for (id, rss, hwm) in &r.memory {
        println!(
            "   {id:<16} RSS {:>6.1} MiB  peak {:>6.1} MiB",
            *rss as f64 / 1024.0,
            *hwm as f64 / 1024.0
        );
    }
    println!("   all processes  RSS {:>6.1} MiB", total as f64 / 1024.0);
}

/// `a` against `b`, measured in the same run: throughput, p50 and p99 of reads and checkouts.
fn ratios(title: &str, a: &TopologyResult, b: &TopologyResult) {
    println!("{title}");
    for (what, x, y) in
        [("product reads", &a.reads, &b.reads), ("checkouts", &a.checkouts, &b.checkouts)]
    {
        println!(
            "   {:<15}throughput {:.2}x  p50 {:.2}x  p99 {:.2}x",
            format!("{what}:"),
            x.per_sec() / y.per_sec(),
            ms(&x.h, 0.5) / ms(&y.h, 0.5),
            ms(&x.h, 0.99) / ms(&y.h, 0.99)
        );
    }
}

fn compare(mono: &TopologyResult, micro: &TopologyResult) {
    let rss = |r: &TopologyResult| r.memory.iter().map(|m| m.1).sum::<u64>() as f64 / 1024.0;
    let per_service = micro.memory.iter().filter(|m| m.0 != "gateway").map(|m| m.1).sum::<u64>()
        as f64
        / 1024.0
        / micro.memory.iter().filter(|m| m.0 != "gateway").count().max(1) as f64;
    ratios("microservices / monolith (same run):", micro, mono);
    println!(
        "   memory: one service process {:.1} MiB vs the monolith {:.1} MiB ({:.2}x); all processes {:.2}x",
        per_service,
        rss(mono),
        per_service / rss(mono),
        rss(micro) / rss(mono)
    );
}
