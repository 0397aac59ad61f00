//! Checkout and event-bus bench: what the asynchronous, durable checkout costs on this
//! machine, each figure next to a reference measured in the same run.
//!
//! 1. Events/s through outbox → relay → embedded bus → consumer inbox. N events are staged
//!    in a producer's outbox (committed, as a module would), then the relay and a consumer
//!    subscription are started and the clock runs until the consumer has handled all N.
//!    The consumer's handler does what every module's does: one transaction with the inbox
//!    claim and one insert. Reference: the same handler called directly N times with the
//!    same concurrency (16), no outbox, relay or bus: the ratio is the price of durable,
//!    deduplicated delivery.
//! 2. Checkouts, end to end, on the real shop (`runtime::Shop` in this process, on a port-0
//!    listener, rate limits out of the way, one product with ample stock): a shopper puts
//!    one unit in the cart, `POST /api/v1/orders` (202), then polls the order every 5 ms
//!    until it is `confirmed` (stock reserved, card charged, order confirmed: four events
//!    through the bus). "Time to confirmed" runs from sending the POST to seeing
//!    `confirmed`; the reference is the POST's own 202 latency in the same run.
//!    a. Capacity, open loop: checkouts started at a fixed rate whatever the earlier ones
//!    are doing, each by a free shopper from a pool, the rate rising 25% a step; the
//!    capacity is the highest rate the shop kept up with (every start found a shopper,
//!    95% confirmed). A closed loop would measure the load generator's patience instead.
//!    b. Fixed offered load: checkouts started at a fixed rate (default: half the measured
//!    capacity), each by a free shopper from a pool; p50/p99 of time to confirmed.
//!
//! How to run:
//!
//! ```text
//! cargo bench -p microlith --bench checkout
//! BENCH_SECS=20 BENCH_RATE=40 cargo bench -p microlith --bench checkout
//! ```
//!
//! Settings (environment): `BENCH_SECS` measured seconds per phase (default 10; a ramp step
//! is a quarter of it), `BENCH_EVENTS` events for the bus phase (default 5000),
//! `BENCH_SHOPPERS` (default 16; the pool holds four times as many shoppers), `BENCH_RATE` offered checkouts/s for phase 2b (default: half the
//! capacity measured in 2a). Without `--bench` it does a short smoke run. The load generator
//! shares the process and the two cores with the shop; compare ratios, not absolutes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bus::{
    BusClient, DeliveryPolicy, EmbeddedBus, Envelope, Event, HandleError, Handler, Outbox,
    Retention, Subscription, TraceContext,
};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use store::Db;
use testkit::{StatusCode, TestApp, TestUser};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const POLL: Duration = Duration::from_millis(5);

struct Settings {
    secs: u64,
    events: usize,
    shoppers: usize,
    rate: Option<f64>,
}

fn env(name: &str) -> Option<f64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).filter(|v: &f64| *v > 0.0)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let s = if full {
        Settings {
            secs: env("BENCH_SECS").map_or(10, |v| v as u64),
            events: env("BENCH_EVENTS").map_or(5000, |v| v as usize),
            shoppers: env("BENCH_SHOPPERS").map_or(16, |v| v as usize),
            rate: env("BENCH_RATE"),
        }
    } else {
        eprintln!("[bench] smoke run (pass --bench, as `cargo bench` does, for the real one)");
        Settings { secs: 1, events: 200, shoppers: 4, rate: None }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        bus_phase(s.events).await;
        checkout_phase(&s).await;
    });
}

// ---- 1. the bus ----------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct Ticked {
    n: usize,
}
impl Event for Ticked {
    const TYPE: &'static str = "bench.ticked";
}

/// A consumer shaped like every module's: inbox claim and effect in one transaction.
struct Sink {
    db: Db,
    handled: AtomicUsize,
}

#[async_trait]
impl Handler for Sink {
    async fn handle(&self, event: &Envelope) -> Result<(), HandleError> {
        let t: Ticked = event.decode()?;
        let mut tx = self.db.begin_write().await?;
        if bus::inbox::claim(&mut tx, "sink", event).await? {
            sqlx::query("INSERT INTO ticks (n) VALUES ($1)")
                .bind(t.n as i64)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.handled.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

async fn sink(dir: &std::path::Path, name: &str) -> Arc<Sink> {
    let db = Db::open_sqlite(&dir.join(format!("{name}.db"))).await.expect("sink db");
    bus::install(&db).await.expect("inbox");
    sqlx::query("CREATE TABLE ticks (n BIGINT NOT NULL)").execute(db.pool()).await.expect("ticks");
    Arc::new(Sink { db, handled: AtomicUsize::new(0) })
}

async fn bus_phase(n: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = DeliveryPolicy::default();

    // Reference: the handler alone, `concurrency` at a time.
    let direct = sink(dir.path(), "direct").await;
    let envelopes: Vec<Envelope> =
        (0..n).map(|i| Envelope::new("bench", &Ticked { n: i }, TraceContext::default())).collect();
    let t0 = Instant::now();
    let mut next = 0;
    while next < envelopes.len() {
        let mut set = tokio::task::JoinSet::new();
        for env in envelopes.iter().skip(next).take(policy.concurrency) {
            let env = env.clone();
            let direct = direct.clone();
            set.spawn(async move { direct.handle(&env).await.expect("direct handle") });
        }
        next += set.len();
        set.join_all().await;
    }
    let direct_secs = t0.elapsed().as_secs_f64();

    // Measured: staged in an outbox, relayed, delivered, handled.
    let producer = Db::open_sqlite(&dir.path().join("producer.db")).await.expect("producer db");
    let outbox = Outbox::new(producer.clone(), "bench").await.expect("outbox");
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let mut tx = producer.begin_write().await.expect("tx");
        for &i in chunk {
            outbox.add(&mut tx, &Ticked { n: i }, TraceContext::default()).await.expect("add");
        }
        tx.commit().await.expect("commit");
    }
    let consumer = sink(dir.path(), "consumer").await;
    let broker = Db::open_sqlite(&dir.path().join("bus.db")).await.expect("bus db");
    let bus = BusClient::new(EmbeddedBus::open(broker).await.expect("bus"));
    let t0 = Instant::now();
    bus.subscribe(Subscription::new("sink", vec![Ticked::TYPE], consumer.clone()))
        .await
        .expect("subscribe");
    let cancel = CancellationToken::new();
    let relay = bus::spawn_relay(outbox, bus.clone(), Retention::default(), cancel.clone());
    while consumer.handled.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let bus_secs = t0.elapsed().as_secs_f64();
    cancel.cancel();
    let _ = relay.await;
    bus.shutdown().await;

    let (bus_rate, direct_rate) = (n as f64 / bus_secs, n as f64 / direct_secs);
    println!("== events: outbox -> relay -> embedded bus -> inbox ({n} events)");
    println!("  through the bus:        {bus_rate:>9.0} events/s  ({bus_secs:.2} s)");
    println!("  reference, direct call: {direct_rate:>9.0} events/s  ({direct_secs:.2} s)");
    println!("  ratio bus/direct: {:.2}", bus_rate / direct_rate);
}

// ---- 2. checkouts --------------------------------------------------------------------

struct Checkout {
    accepted: Duration,
    confirmed: Duration,
}

/// One purchase by `user`: cart, order, then poll until confirmed.
async fn checkout(app: &TestApp, user: &TestUser, product: &str) -> Option<Checkout> {
    app.add_to_cart(user, product, 1).await;
    let key = uuid::Uuid::new_v4().to_string();
    let t0 = Instant::now();
    let res = app.place_order(user, "tok_visa", &key).await;
    let accepted = t0.elapsed();
    if res.status() != StatusCode::ACCEPTED {
        eprintln!("[bench] order refused: {}", res.status());
        return None;
    }
    let body: serde_json::Value = res.json().await.ok()?;
    let id = body["id"].as_str()?.to_owned();
    loop {
        let res = app.get(&format!("/api/v1/orders/{id}")).bearer_auth(&user.token).send().await;
        let order: serde_json::Value = res.ok()?.json().await.ok()?;
        match order["status"].as_str() {
            Some("confirmed") => return Some(Checkout { accepted, confirmed: t0.elapsed() }),
            Some("pending") => tokio::time::sleep(POLL).await,
            other => {
                eprintln!("[bench] order ended {other:?}");
                return None;
            }
        }
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds")
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// What one stretch of offered load did.
struct Offered {
    started: usize,
    /// Starts that found no free shopper: the shop was too slow to give them back.
    unserved: usize,
    accepted: Histogram<u64>,
    confirmed: Histogram<u64>,
}

impl Offered {
    /// Whether the shop kept up: every start found a shopper and at least 95% confirmed.
    fn kept_up(&self) -> bool {
        self.unserved == 0 && self.confirmed.len() as f64 >= 0.95 * self.started as f64
    }
}

/// Starts a checkout every `1/rate` s for `secs`, each by a free shopper from `free`, no
/// matter how the earlier ones are doing (open loop), and waits for them all.
async fn offer(
    app: &Arc<TestApp>,
    product: &str,
    free: &mut mpsc::UnboundedReceiver<TestUser>,
    free_tx: &mpsc::UnboundedSender<TestUser>,
    rate: f64,
    secs: f64,
) -> Offered {
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let (mut started, mut unserved) = (0usize, 0usize);
    let mut set = tokio::task::JoinSet::new();
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        ticker.tick().await;
        let Ok(user) = free.try_recv() else {
            unserved += 1;
            continue;
        };
        started += 1;
        let (app, product, free_tx) = (app.clone(), product.to_owned(), free_tx.clone());
        set.spawn(async move {
            let c = checkout(&app, &user, &product).await;
            let _ = free_tx.send(user);
            c
        });
    }
    let (mut accepted, mut confirmed) = (histogram(), histogram());
    for c in set.join_all().await.into_iter().flatten() {
        let _ = accepted.record(c.accepted.as_micros() as u64);
        let _ = confirmed.record(c.confirmed.as_micros() as u64);
    }
    Offered { started, unserved, accepted, confirmed }
}

async fn checkout_phase(s: &Settings) {
    let app = Arc::new(TestApp::spawn().await);
    let admin = app.admin_token().await;
    let product = app.any_product_id().await;
    app.set_stock(&admin, &product, 1_000_000_000).await;
    let pool_size = (s.shoppers * 4).max(32);
    eprintln!("[bench] registering {pool_size} shoppers");
    let (free_tx, mut free) = mpsc::unbounded_channel::<TestUser>();
    for _ in 0..pool_size {
        let _ = free_tx.send(app.register_login().await);
    }

    // a. capacity, open loop: offered rates rising by a quarter a step; the capacity is the
    // highest rate the shop kept up with (every start served, 95% confirmed).
    let step_secs = (s.secs as f64 / 4.0).max(1.0);
    let (mut rate, mut capacity, mut ceiling) = (4.0_f64, None::<(f64, Offered)>, true);
    println!("== checkouts, open loop, offered rates rising 25% per {step_secs:.0} s step");
    for _ in 0..16 {
        let o = offer(&app, &product, &mut free, &free_tx, rate, step_secs).await;
        println!(
            "  offered {rate:>6.1}/s: started {:>4}, confirmed {:>4}, unserved {:>3}, time to confirmed p99 {:.1} ms",
            o.started,
            o.confirmed.len(),
            o.unserved,
            ms(&o.confirmed, 0.99)
        );
        if !o.kept_up() {
            ceiling = false;
            break;
        }
        capacity = Some((rate, o));
        rate *= 1.25;
    }
    let Some((capacity, at)) = capacity else {
        println!("  the shop did not keep up with the lowest offered rate ({rate:.1}/s)");
        return;
    };
    let at_least = if ceiling { "at least " } else { "" };
    println!(
        "  capacity: {at_least}{capacity:.1} confirmed checkouts/s (the highest rate it kept up with)"
    );
    println!(
        "  there: time to confirmed p50 {:.1} ms, p99 {:.1} ms; reference (202) p50 {:.1} ms, p99 {:.1} ms",
        ms(&at.confirmed, 0.5),
        ms(&at.confirmed, 0.99),
        ms(&at.accepted, 0.5),
        ms(&at.accepted, 0.99)
    );

    // b. fixed offered load, open loop
    let rate = s.rate.unwrap_or((capacity / 2.0).max(1.0));
    let o = offer(&app, &product, &mut free, &free_tx, rate, s.secs as f64).await;
    let (acc, conf) = (&o.accepted, &o.confirmed);
    println!("== checkouts, fixed offered load {rate:.1}/s for {} s", s.secs);
    println!(
        "  started {}, confirmed {}, not started (no free shopper) {}",
        o.started,
        conf.len(),
        o.unserved
    );
    println!(
        "  time to confirmed p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(conf, 0.5),
        ms(conf, 0.99),
        conf.max() as f64 / 1000.0
    );
    println!("  reference, POST 202:  p50 {:.1} ms, p99 {:.1} ms", ms(acc, 0.5), ms(acc, 0.99));
    println!(
        "  ratio confirmed/202: p50 {:.1}, p99 {:.1}",
        ms(conf, 0.5) / ms(acc, 0.5).max(0.001),
        ms(conf, 0.99) / ms(acc, 0.99).max(0.001)
    );
}
