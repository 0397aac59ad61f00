//! What a function costs: cold starts of a shop function (this package's `microlith` binary
//! as `function catalog`, started by the function host) and a warm invocation next to the
//! same contract call made in process and over one HTTP hop, all in the same run.
//!
//! 1. Cold starts: each sample a fresh host and the function's first call, `catalog.get`:
//!    spawn → ready (the instance's first `/invocation/next`: Lambda's INIT phase) and the
//!    caller's first response; every other sample with the binary evicted from the page
//!    cache first, as a sandbox's first start reads its code from storage. Against AWS Lambda's published Rust INIT, about 16–18 ms
//!    (lambda-perf, 2026; our aim is under 10 ms), and against the same binary spawned to
//!    print its version (the floor a process start sets on this machine, measured here).
//! 2. Warm calls: `catalog.get` of one product from one SQLite catalog, alternating
//!    in process (`CatalogClient::local`), over one HTTP hop (`CatalogClient::remote`, as
//!    between microservices) and through the function host to a warm instance
//!    (`Remote::function`, as in the serverless topology): p50, p99 and the ratios.
//!
//! ```text
//! cargo bench -p microlith --bench functions
//! BENCH_COLD=100 BENCH_WARM=10000 cargo bench -p microlith --bench functions
//! ```
//!
//! The bench shares the two cores with the instances it starts; compare the ratios,
//! measured in the same run, not the absolutes.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use catalog_api::{CatalogClient, Category, NewProduct};
use function_host::{FunctionConfig, FunctionHost, Launch, Prices};
use hdrhistogram::Histogram;
use kernel::{Currency, Money, ProductId, RequestContext};

const BIN: &str = env!("CARGO_BIN_EXE_microlith");
/// AWS Lambda's Rust cold start (INIT duration), lambda-perf 2026: about 16–18 ms.
const AWS_RUST_INIT_MS: f64 = 17.0;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    // `cargo test --benches` makes a smoke run.
    let (cold, warm) =
        if bench { (env("BENCH_COLD", 40), env("BENCH_WARM", 3000)) } else { (3, 50) };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let shop = Prepared::prepare().await;
        cold_starts(&shop, cold).await;
        warm_calls(&shop, warm).await;
    });
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram")
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn record(h: &mut Histogram<u64>, d: Duration) {
    h.record((d.as_micros() as u64).max(1)).expect("in range");
}

/// A data directory with a catalog of one product, the service keys, and this process's
/// own handle on the same catalog.
struct Prepared {
    _dir: tempfile::TempDir,
    data: std::path::PathBuf,
    edge: rpc::CredentialIssuer,
    local: CatalogClient,
    product: ProductId,
}

impl Prepared {
    async fn prepare() -> Prepared {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        runtime::create_private_dir(&data).expect("data dir");
        let db = store::Db::open_sqlite(&data.join("catalog.db")).await.expect("catalog db");
        let local = CatalogClient::local(catalog::Catalog::new(db).await.expect("catalog"));
        let new = NewProduct {
            name: "Bench product".into(),
            description: "A product fetched very many times by a benchmark.".into(),
            category: Category::parse("bench").expect("category"),
            price: Money::new(1999, Currency::USD),
        };
        let product = local.create(&RequestContext::system(), new).await.expect("product").id;
        // This process calls the function as the serverless topology's edge does.
        let topology = runtime::Topology::load("serverless").expect("serverless preset");
        let edge = runtime::Trust::open(&data, &topology, &runtime::ProcessRole::Gateway)
            .expect("service keys")
            .issuer();
        Prepared { _dir: dir, data, edge, local, product }
    }

    /// A host with the `catalog` function of the serverless topology on this data directory.
    fn host(&self) -> FunctionHost {
        let host = FunctionHost::new(Prices::default());
        let mut config = FunctionConfig::new("catalog");
        config.max_concurrency = 1;
        host.register(config, launch(&self.data));
        host
    }

    /// The contract's client, calling the function through `host`.
    fn through(&self, host: &FunctionHost) -> CatalogClient {
        let invoker = Arc::new(runtime::FunctionInvoker::Local(host.clone()));
        CatalogClient::remote(rpc::Remote::function(
            "catalog",
            invoker,
            self.edge.clone(),
            Duration::from_secs(30),
        ))
    }
}

fn launch(data: &Path) -> Launch {
    Launch {
        program: BIN.into(),
        args: vec![
            "function".into(),
            "catalog".into(),
            "--topology".into(),
            "serverless".into(),
            "--data-dir".into(),
            data.into(),
            "--no-seed".into(),
        ],
        env: vec![
            ("MICROLITH_ADMIN_EMAIL".into(), "bench@test.example".into()),
            ("MICROLITH_ADMIN_PASSWORD".into(), "bench-admin-password".into()),
            ("RUST_LOG".into(), "warn".into()),
            (runtime::SUPERVISED_ENV.into(), "1".into()),
        ],
        env_remove: Vec::new(),
        lifeline: true,
    }
}

// ---------------------------------------------------------------------------------------
// 1. Cold starts

/// Asks the kernel to drop the binary's pages from the page cache (`POSIX_FADV_DONTNEED`),
/// so the next start reads it from disk, as a Lambda sandbox's first start fetches its code.
/// Pages a running process maps stay; every instance of the previous sample has stopped.
fn evict_from_page_cache(path: &str) {
    use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
    if let Ok(file) = std::fs::File::open(path) {
        let _ = posix_fadvise(&file, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED);
    }
}

async fn cold_starts(shop: &Prepared, n: usize) {
    let ctx = RequestContext::anonymous();
    let (mut init_h, mut first_h, mut spawn_h) = (histogram(), histogram(), histogram());
    let mut evicted_h = histogram();
    let mut memory_mb = 0;
    // The first sample pages the binary in: not counted. Then the samples alternate: the
    // binary in the page cache (a start on a warm machine), or just evicted from it.
    for i in 0..=n {
        let t = Instant::now();
        let out = std::process::Command::new(BIN).arg("--version").output().expect("spawn");
        let spawned = t.elapsed();
        assert!(out.status.success());
        let evicted = i % 2 == 0 && i > 0;
        if evicted {
            evict_from_page_cache(BIN);
        }

        let host = shop.host();
        let client = shop.through(&host);
        let t = Instant::now();
        let got = client.get(&ctx, shop.product).await.expect("the cold call answers");
        let first = t.elapsed();
        assert_eq!(got.id, shop.product);
        let stats = host.stats().pop().expect("the function's stats");
        assert_eq!((stats.cold_starts, stats.invocations), (1, 1), "one cold invocation");
        host.shutdown().await;
        let init = Duration::from_secs_f64(stats.init_ms_mean / 1000.0);
        if evicted {
            record(&mut evicted_h, init);
        } else if i > 0 {
            record(&mut init_h, init);
            record(&mut first_h, first);
            record(&mut spawn_h, spawned);
            memory_mb = memory_mb.max(stats.max_memory_mb);
        }
        if i % 10 == 0 {
            eprintln!("   cold start {i}/{n}");
        }
    }
    println!("1. cold starts of the catalog function ({n} samples, a fresh host each)");
    let line = |what: &str, h: &Histogram<u64>| {
        println!("   {what:<32} p50 {:>7.2} ms  p99 {:>7.2} ms", ms(h, 0.5), ms(h, 0.99));
    };
    line("spawn -> ready (INIT)", &init_h);
    line("INIT, binary not in page cache", &evicted_h);
    line("spawn -> first response", &first_h);
    line("reference: `microlith --version`", &spawn_h);
    println!(
        "   INIT p50 / AWS Lambda Rust INIT (~{AWS_RUST_INIT_MS} ms, lambda-perf 2026): {:.2}x (aim: under 10 ms)",
        ms(&init_h, 0.5) / AWS_RUST_INIT_MS
    );
    println!(
        "   INIT p50 / a bare start of the same binary: {:.2}x; peak memory of an instance: {memory_mb} MB",
        ms(&init_h, 0.5) / ms(&spawn_h, 0.5)
    );
    println!(
        "   INIT p50, binary read from disk / from the page cache (same run): {:.2}x",
        ms(&evicted_h, 0.5) / ms(&init_h, 0.5)
    );
}

// ---------------------------------------------------------------------------------------
// 2. Warm calls

async fn warm_calls(shop: &Prepared, n: usize) {
    let ctx = RequestContext::anonymous();
    let host = shop.host();
    let function = shop.through(&host);
    let (remote, _server) =
        testkit::serve_internal("catalog", catalog_api::internal_routes(shop.local.clone())).await;
    let hop = CatalogClient::remote(remote);
    let legs =
        [("in process", &shop.local), ("one HTTP hop", &hop), ("function (warm)", &function)];
    let mut hs = [histogram(), histogram(), histogram()];
    for round in 0..2 {
        for i in 0..n {
            // Interleaved, so every path sees the same machine state.
            for ((_, client), h) in legs.iter().zip(hs.iter_mut()) {
                let t = Instant::now();
                let got = client.get(&ctx, shop.product).await.expect("get");
                let took = t.elapsed();
                assert_eq!(got.id, shop.product);
                if round == 1 || i >= n / 2 {
                    record(h, took);
                }
            }
        }
    }
    let stats = host.stats().pop().expect("the function's stats");
    assert_eq!(stats.cold_starts, 1, "one instance served every warm call");
    host.shutdown().await;
    println!("2. warm calls: catalog.get of one product, sequential, interleaved");
    for ((name, _), h) in legs.iter().zip(&hs) {
        println!("   {name:<16} p50 {:>7.3} ms  p99 {:>7.3} ms", ms(h, 0.5), ms(h, 0.99));
    }
    let [local, hop, function] = &hs;
    for (what, reference) in [("in process", local), ("one HTTP hop", hop)] {
        println!(
            "   function / {what:<13} p50 {:>6.2}x  p99 {:>6.2}x  (+{:.3} ms at p50)",
            ms(function, 0.5) / ms(reference, 0.5),
            ms(function, 0.99) / ms(reference, 0.99),
            ms(function, 0.5) - ms(reference, 0.5),
        );
    }
    println!(
        "   metered: {} invocations, {:.3} ms mean duration, ${:.8} at Lambda's list prices",
        stats.invocations, stats.duration_ms_mean, stats.cost_usd
    );
}
