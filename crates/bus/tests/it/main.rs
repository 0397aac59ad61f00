//! The delivery contract of outbox → relay → embedded bus → inbox, on real SQLite files
//! (and, in `ack`, on NATS JetStream too).

mod ack;
mod nats;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bus::{
    BusClient, DeliveryPolicy, EmbeddedBus, Envelope, Event, HandleError, Handler, Outbox,
    Retention, Subscription, TraceContext,
};
use kernel::RequestContext;
use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use store::Db;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Serialize, Deserialize)]
struct Deposited {
    account: String,
    amount: i64,
}
impl Event for Deposited {
    const TYPE: &'static str = "bank.deposited";
}

/// A consumer with its own database: it adds each deposit to a balance, once per event.
struct Ledger {
    db: Db,
    calls: AtomicUsize,
    failing: AtomicBool,
}

impl Ledger {
    async fn new(db: Db) -> Arc<Ledger> {
        bus::install(&db).await.unwrap();
        sqlx::query("CREATE TABLE balance (account TEXT PRIMARY KEY, amount BIGINT NOT NULL)")
            .execute(db.pool())
            .await
            .unwrap();
        Arc::new(Ledger { db, calls: AtomicUsize::new(0), failing: AtomicBool::new(false) })
    }

    async fn balance(&self, account: &str) -> i64 {
        sqlx::query("SELECT amount FROM balance WHERE account = $1")
            .bind(account)
            .fetch_optional(self.db.pool())
            .await
            .unwrap()
            .map(|r| r.get::<i64, _>("amount"))
            .unwrap_or(0)
    }
}

#[async_trait]
impl Handler for Ledger {
    async fn handle(&self, event: &Envelope) -> Result<(), HandleError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(HandleError::retry("ledger is down"));
        }
        let d: Deposited = event.decode()?;
        let mut tx = self.db.begin_write().await?;
        if bus::inbox::claim(&mut tx, "ledger", event).await? {
            sqlx::query(
                "INSERT INTO balance (account, amount) VALUES ($1, $2) \
                 ON CONFLICT (account) DO UPDATE SET amount = balance.amount + excluded.amount",
            )
            .bind(&d.account)
            .bind(d.amount)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

struct World {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        World { path: dir.path().to_owned(), _dir: dir }
    }
    async fn db(&self, name: &str) -> Db {
        Db::open_sqlite(&self.path.join(format!("{name}.db"))).await.unwrap()
    }
}

/// A page of ten.
fn ten() -> kernel::Limit {
    kernel::Limit::new(Some(10)).expect("10 is a limit")
}

fn fast_policy() -> DeliveryPolicy {
    DeliveryPolicy {
        max_deliver: 3,
        backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(50),
        ack_wait: Duration::from_secs(5),
        concurrency: 4,
    }
}

async fn subscribe_fast(bus: &BusClient, ledger: &Arc<Ledger>) {
    let sub = Subscription::new("ledger", vec![Deposited::TYPE], ledger.clone());
    bus.subscribe(sub.with_policy(fast_policy())).await.unwrap();
}

fn deposited(account: &str, amount: i64) -> Envelope {
    let d = Deposited { account: account.into(), amount };
    Envelope::new("bank", &d, TraceContext::default())
}

async fn deposit(outbox: &Outbox, db: &Db, account: &str, amount: i64) {
    let mut tx = db.begin_write().await.unwrap();
    let trace = TraceContext::from_request(&RequestContext::anonymous());
    outbox.add(&mut tx, &Deposited { account: account.into(), amount }, trace).await.unwrap();
    tx.commit().await.unwrap();
    outbox.wake();
}

/// The NATS server of the tests (`MICROLITH_TEST_NATS`, default the local one); `None`
/// with a notice when it does not answer, except under `CI`, where that fails.
async fn test_nats() -> Option<String> {
    let url =
        std::env::var("MICROLITH_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    match tokio::time::timeout(Duration::from_secs(3), async_nats::connect(&url)).await {
        Ok(Ok(_)) => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!("NATS at {url} is required under CI"),
        _ => {
            // Straight to the terminal: the test runner swallows `eprintln!` of a passing test.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "notice: skipped, NATS at {url} is unreachable");
            None
        }
    }
}

/// Deletes the streams of a test's namespace.
async fn delete_namespace(url: &str, ns: &str) {
    use futures::StreamExt as _;
    let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
    let prefix = format!("{}_", ns.to_uppercase());
    let names: Vec<String> = js.stream_names().filter_map(async |n| n.ok()).collect().await;
    for name in names.into_iter().filter(|n| n.starts_with(&prefix)) {
        js.delete_stream(&name).await.unwrap();
    }
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test]
async fn committed_events_reach_the_consumer_once() {
    let w = World::new();
    let bank_db = w.db("bank").await;
    let outbox = Outbox::new(bank_db.clone(), "bank").await.unwrap();
    let embedded = EmbeddedBus::open(w.db("bus").await).await.unwrap();
    let bus = BusClient::new(embedded.clone());
    let ledger = Ledger::new(w.db("ledger").await).await;
    subscribe_fast(&bus, &ledger).await;
    let cancel = CancellationToken::new();
    let relay = bus::spawn_relay(outbox.clone(), bus.clone(), Retention::default(), cancel.clone());

    for _ in 0..50 {
        deposit(&outbox, &bank_db, "alice", 10).await;
    }
    eventually("50 deposits", async || ledger.balance("alice").await == 500).await;
    eventually("bus drained", async || embedded.backlog().await.unwrap() == 0).await;
    assert_eq!(outbox.pending().await.unwrap(), 0);
    assert_eq!(ledger.calls.load(Ordering::SeqCst), 50);

    // A rolled-back transaction publishes nothing.
    let mut tx = bank_db.begin_write().await.unwrap();
    let trace = TraceContext::default();
    outbox.add(&mut tx, &Deposited { account: "alice".into(), amount: 1 }, trace).await.unwrap();
    drop(tx);
    outbox.wake();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ledger.balance("alice").await, 500);

    cancel.cancel();
    relay.await.unwrap();
    bus.shutdown().await;
}

#[tokio::test]
async fn a_redelivered_or_republished_event_has_one_effect() {
    let w = World::new();
    let embedded = EmbeddedBus::open(w.db("bus").await).await.unwrap();
    let bus = BusClient::new(embedded.clone());
    let ledger = Ledger::new(w.db("ledger").await).await;
    subscribe_fast(&bus, &ledger).await;

    let env = deposited("bob", 7);
    // The relay crashed after publishing but before marking the row sent: it publishes
    // again. The bus stores the id once.
    bus.publish(&env).await.unwrap();
    bus.publish(&env).await.unwrap();
    eventually("first delivery", async || ledger.balance("bob").await == 7).await;
    eventually("bus drained", async || embedded.backlog().await.unwrap() == 0).await;
    assert_eq!(ledger.calls.load(Ordering::SeqCst), 1);

    // Force the same event onto the consumer again (a lost ack looks exactly like this):
    // the handler runs a second time, the inbox makes it a no-op.
    bus.replay("ledger", env.id).await.unwrap();
    eventually("second delivery", async || ledger.calls.load(Ordering::SeqCst) == 2).await;
    eventually("bus drained", async || embedded.backlog().await.unwrap() == 0).await;
    assert_eq!(ledger.balance("bob").await, 7);

    // Replay of something unknown is refused.
    assert!(matches!(
        bus.replay("ledger", kernel::EventId::new()).await,
        Err(bus::BusError::NotFound(_))
    ));
    assert!(matches!(bus.replay("nobody", env.id).await, Err(bus::BusError::NotFound(_))));
    bus.shutdown().await;
}

#[tokio::test]
async fn failures_back_off_then_dead_letter_and_replay_recovers() {
    let w = World::new();
    let embedded = EmbeddedBus::open(w.db("bus").await).await.unwrap();
    let bus = BusClient::new(embedded.clone());
    let ledger = Ledger::new(w.db("ledger").await).await;
    ledger.failing.store(true, Ordering::SeqCst);
    subscribe_fast(&bus, &ledger).await;
    let env = deposited("carol", 3);
    bus.publish(&env).await.unwrap();

    eventually("dead letter", async || {
        !bus.dead_letters(ten(), None).await.unwrap().items.is_empty()
    })
    .await;
    let dead = bus.dead_letters(ten(), None).await.unwrap().items;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].event_id, env.id);
    assert_eq!(dead[0].subscriber, "ledger");
    assert_eq!(dead[0].attempts, 3, "max_deliver runs, then parked");
    assert!(dead[0].last_error.contains("ledger is down"));
    assert_eq!(ledger.calls.load(Ordering::SeqCst), 3);
    assert_eq!(embedded.backlog().await.unwrap(), 0);

    // An event that cannot be decoded is parked at once, without retries.
    let mut garbage = env.clone();
    garbage.id = kernel::EventId::new();
    garbage.payload = serde_json::json!({"nonsense": true});
    ledger.failing.store(false, Ordering::SeqCst);
    bus.publish(&garbage).await.unwrap();
    eventually("garbage parked", async || {
        bus.dead_letters(ten(), None).await.unwrap().items.len() == 2
    })
    .await;
    assert_eq!(ledger.calls.load(Ordering::SeqCst), 4);
    // Paged one at a time, oldest first, each once.
    let one = kernel::Limit::new(Some(1)).unwrap();
    let first = bus.dead_letters(one, None).await.unwrap();
    assert_eq!(first.items[0].event_id, env.id);
    let second = bus.dead_letters(one, first.next.clone()).await.unwrap();
    assert_eq!(second.items.iter().map(|d| d.event_id).collect::<Vec<_>>(), [garbage.id]);
    assert!(second.next.is_none(), "{:?}", second.next);

    // The operator fixes the consumer and replays: delivered, and no longer dead.
    bus.replay("ledger", env.id).await.unwrap();
    eventually("replayed", async || ledger.balance("carol").await == 3).await;
    let dead = bus.dead_letters(ten(), None).await.unwrap().items;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].event_id, garbage.id);
    bus.shutdown().await;
}

#[tokio::test]
async fn events_committed_before_a_crash_are_delivered_after_restart() {
    let w = World::new();
    let bank_db = w.db("bank").await;
    let outbox = Outbox::new(bank_db.clone(), "bank").await.unwrap();
    // "Before the crash": events committed, no relay ran, the bus owes nothing yet.
    for _ in 0..5 {
        deposit(&outbox, &bank_db, "dave", 2).await;
    }
    // A message published but not delivered before the crash is owed after it too.
    {
        let embedded = EmbeddedBus::open(w.db("bus").await).await.unwrap();
        let bus = BusClient::new(embedded);
        let ledger = Ledger::new(w.db("ledger").await).await;
        ledger.failing.store(true, Ordering::SeqCst);
        bus.subscribe(Subscription::new("ledger", vec![Deposited::TYPE], ledger.clone()))
            .await
            .unwrap();
        let env = deposited("dave", 100);
        bus.publish(&env).await.unwrap();
        eventually("one failed try", async || ledger.calls.load(Ordering::SeqCst) >= 1).await;
        bus.shutdown().await;
    }

    // "After the restart": the same files, a fresh bus, relay and consumer.
    let embedded = EmbeddedBus::open(w.db("bus").await).await.unwrap();
    let bus = BusClient::new(embedded.clone());
    let ledger = Arc::new(Ledger {
        db: w.db("ledger").await,
        calls: AtomicUsize::new(0),
        failing: AtomicBool::new(false),
    });
    subscribe_fast(&bus, &ledger).await;
    let cancel = CancellationToken::new();
    let relay = bus::spawn_relay(outbox.clone(), bus.clone(), Retention::default(), cancel.clone());
    eventually("all delivered", async || ledger.balance("dave").await == 110).await;
    eventually("bus drained", async || embedded.backlog().await.unwrap() == 0).await;
    cancel.cancel();
    relay.await.unwrap();
    bus.shutdown().await;
}

#[tokio::test]
async fn subscriptions_are_validated() {
    let w = World::new();
    let bus = BusClient::new(EmbeddedBus::open(w.db("bus").await).await.unwrap());
    let ledger = Ledger::new(w.db("ledger").await).await;
    let sub = Subscription::new("ledger", vec![Deposited::TYPE], ledger.clone());
    bus.subscribe(sub.clone()).await.unwrap();
    assert!(bus.subscribe(sub).await.is_err(), "one dispatcher per subscriber");
    assert!(
        bus.subscribe(Subscription::new("", vec![Deposited::TYPE], ledger.clone())).await.is_err()
    );
    assert!(bus.subscribe(Subscription::new("x", vec![], ledger.clone())).await.is_err());
    let zero = DeliveryPolicy { max_deliver: 0, ..DeliveryPolicy::default() };
    let bad = Subscription::new("y", vec![Deposited::TYPE], ledger).with_policy(zero);
    assert!(bus.subscribe(bad).await.is_err());
    bus.shutdown().await;
}

/// How a [`Stumbling`] handler fails its first run.
#[derive(Clone, Copy)]
enum Stumble {
    /// Runs far past the ack wait.
    Hang,
    /// Panics.
    Panic,
}

/// The ledger, whose first run of each event stumbles; later runs are the ledger's own.
struct Stumbling {
    ledger: Arc<Ledger>,
    how: Stumble,
    stumbled: std::sync::Mutex<std::collections::HashSet<kernel::EventId>>,
    runs: AtomicUsize,
}

#[async_trait]
impl Handler for Stumbling {
    async fn handle(&self, event: &Envelope) -> Result<(), HandleError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let first = self.stumbled.lock().unwrap().insert(event.id);
        match (first, self.how) {
            (true, Stumble::Hang) => tokio::time::sleep(Duration::from_secs(3600)).await,
            (true, Stumble::Panic) => panic!("the handler broke"),
            (false, _) => {}
        }
        self.ledger.handle(event).await
    }
}

/// The running dispatcher gives up on a handler past its ack wait, or one that panicked,
/// and delivers the event again once its lease expires: no resubscription, no restart.
#[tokio::test]
async fn a_hung_or_panicking_handler_is_delivered_again_after_its_lease() {
    for how in [Stumble::Hang, Stumble::Panic] {
        let w = World::new();
        let embedded = EmbeddedBus::open(w.db("bus").await).await.unwrap();
        let bus = BusClient::new(embedded.clone());
        let ledger = Ledger::new(w.db("ledger").await).await;
        let handler = Arc::new(Stumbling {
            ledger: ledger.clone(),
            how,
            stumbled: Default::default(),
            runs: AtomicUsize::new(0),
        });
        let policy = DeliveryPolicy { ack_wait: Duration::from_millis(300), ..fast_policy() };
        let sub = Subscription::new("ledger", vec![Deposited::TYPE], handler.clone());
        bus.subscribe(sub.with_policy(policy)).await.unwrap();

        bus.publish(&deposited("dave", 5)).await.unwrap();
        eventually("the second run", async || ledger.balance("dave").await == 5).await;
        eventually("bus drained", async || embedded.backlog().await.unwrap() == 0).await;
        assert_eq!(handler.runs.load(Ordering::SeqCst), 2, "one stumble, one delivery");
        assert!(bus.dead_letters(ten(), None).await.unwrap().items.is_empty());

        // The same dispatcher goes on delivering.
        bus.publish(&deposited("dave", 1)).await.unwrap();
        eventually("the next event", async || ledger.balance("dave").await == 6).await;
        bus.shutdown().await;
    }
}

/// What `backlogs` reports while `ledger` fails an event and after it recovers: the
/// figures behind the bus lag and backlog metrics, the same on every broker.
async fn backlog_follows_a_stuck_delivery(bus: &BusClient, ledger: &Arc<Ledger>) {
    ledger.failing.store(true, Ordering::SeqCst);
    let policy =
        DeliveryPolicy { max_deliver: 50, backoff: Duration::from_millis(100), ..fast_policy() };
    let sub = Subscription::new("ledger", vec![Deposited::TYPE], ledger.clone());
    bus.subscribe(sub.with_policy(policy)).await.unwrap();
    let idle = bus.backlogs().await.unwrap();
    assert_eq!(
        idle,
        vec![("ledger".to_owned(), bus::Backlog::default())],
        "subscribed, nothing owed"
    );

    bus.publish(&deposited("ida", 2)).await.unwrap();
    eventually("a failed try", async || ledger.calls.load(Ordering::SeqCst) >= 1).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let stuck = bus.backlogs().await.unwrap();
    assert_eq!(stuck.len(), 1, "{stuck:?}");
    assert_eq!(stuck[0].1.messages, 1, "{stuck:?}");
    let age = stuck[0].1.oldest_age.expect("the age of the stuck event");
    assert!(age >= Duration::from_millis(300) && age < Duration::from_secs(60), "{age:?}");

    ledger.failing.store(false, Ordering::SeqCst);
    eventually("delivered", async || ledger.balance("ida").await == 2).await;
    eventually("nothing owed", async || {
        bus.backlogs().await.unwrap() == vec![("ledger".to_owned(), bus::Backlog::default())]
    })
    .await;
}

#[tokio::test]
async fn the_embedded_bus_reports_each_subscribers_backlog_and_its_age() {
    let w = World::new();
    let bus = BusClient::new(EmbeddedBus::open(w.db("bus").await).await.unwrap());
    let ledger = Ledger::new(w.db("ledger").await).await;
    backlog_follows_a_stuck_delivery(&bus, &ledger).await;
    bus.shutdown().await;
}

#[tokio::test]
async fn an_outbox_reports_its_unsent_events_and_the_oldest_ones_age() {
    let w = World::new();
    let db = w.db("bank").await;
    let outbox = Outbox::new(db.clone(), "bank").await.unwrap();
    assert_eq!(outbox.backlog().await.unwrap(), bus::Backlog::default());
    deposit(&outbox, &db, "jo", 1).await;
    deposit(&outbox, &db, "jo", 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let b = outbox.backlog().await.unwrap();
    assert_eq!(b.messages, 2);
    assert!(b.oldest_age.is_some_and(|a| a >= Duration::from_millis(150)), "{b:?}");

    let bus = BusClient::new(EmbeddedBus::open(w.db("bus").await).await.unwrap());
    assert_eq!(bus::drain(&outbox, &bus).await.unwrap(), 2);
    assert_eq!(outbox.backlog().await.unwrap(), bus::Backlog::default());
    bus.shutdown().await;
}
