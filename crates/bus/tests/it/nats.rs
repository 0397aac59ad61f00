//! What the NATS JetStream bus promises beyond the ack test, each against a fresh namespace
//! of streams: a republished event is stored once (`Nats-Msg-Id`), a failing delivery is
//! dead-lettered after `max_deliver` runs, a replay reaches the one
//! subscriber it names, and two namespaces on one server never see each other's events.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bus::{BusClient, Event as _, NatsBus, Subscription};

use crate::{Deposited, Ledger, World, deposited, eventually, fast_policy, ten};

async fn bus(url: &str, ns: &str) -> BusClient {
    BusClient::new(NatsBus::connect(url, ns).await.unwrap())
}

fn namespace() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}

async fn subscribe(bus: &BusClient, name: &str, ledger: &Arc<Ledger>) {
    let sub = Subscription::new(name, vec![Deposited::TYPE], ledger.clone());
    bus.subscribe(sub.with_policy(fast_policy())).await.unwrap();
}

#[tokio::test]
async fn a_republished_event_is_stored_once() {
    let Some(url) = crate::test_nats().await else { return };
    let (w, ns) = (World::new(), namespace());
    let bus = bus(&url, &ns).await;
    let ledger = Ledger::new(w.db("ledger").await).await;
    // Published twice before anyone listens (a relay that crashed before marking it sent).
    let env = deposited("fay", 4);
    bus.publish(&env).await.unwrap();
    bus.publish(&env).await.unwrap();
    subscribe(&bus, "ledger", &ledger).await;
    eventually("delivered", async || ledger.balance("fay").await == 4).await;
    // A later event proves the consumer has gone past where a duplicate would be.
    bus.publish(&deposited("fay", 1)).await.unwrap();
    eventually("the next event", async || ledger.balance("fay").await == 5).await;
    assert_eq!(ledger.calls.load(Ordering::SeqCst), 2, "the duplicate was never delivered");
    bus.shutdown().await;
    crate::delete_namespace(&url, &ns).await;
}

#[tokio::test]
async fn failures_are_dead_lettered_after_max_deliver_and_a_replay_reaches_one_subscriber() {
    let Some(url) = crate::test_nats().await else { return };
    let (w, ns) = (World::new(), namespace());
    let bus = bus(&url, &ns).await;
    let (ledger, audit) =
        (Ledger::new(w.db("ledger").await).await, Ledger::new(w.db("audit").await).await);
    ledger.failing.store(true, Ordering::SeqCst);
    subscribe(&bus, "ledger", &ledger).await;
    subscribe(&bus, "audit", &audit).await;
    let env = deposited("gus", 3);
    bus.publish(&env).await.unwrap();

    eventually("dead letter", async || {
        !bus.dead_letters(ten(), None).await.unwrap().items.is_empty()
    })
    .await;
    let dead = bus.dead_letters(ten(), None).await.unwrap().items;
    assert_eq!(dead.len(), 1, "only the failing subscriber's delivery");
    assert_eq!((dead[0].event_id, dead[0].subscriber.as_str()), (env.id, "ledger"));
    assert_eq!(dead[0].attempts, 3, "max_deliver runs");
    assert!(dead[0].last_error.contains("ledger is down"), "{}", dead[0].last_error);
    eventually("audit had it", async || audit.balance("gus").await == 3).await;
    assert_eq!(ledger.calls.load(Ordering::SeqCst), 3);

    ledger.failing.store(false, Ordering::SeqCst);
    bus.replay("ledger", env.id).await.unwrap();
    eventually("replayed", async || ledger.balance("gus").await == 3).await;
    assert!(
        bus.dead_letters(ten(), None).await.unwrap().items.iter().all(|d| d.event_id != env.id)
    );
    assert_eq!(ledger.calls.load(Ordering::SeqCst), 4, "3 runs, then the replay's");
    assert_eq!(audit.calls.load(Ordering::SeqCst), 1, "the replay reached ledger only");
    bus.shutdown().await;
    crate::delete_namespace(&url, &ns).await;
}

#[tokio::test]
async fn namespaces_keep_shops_apart_on_one_server() {
    let Some(url) = crate::test_nats().await else { return };
    let w = World::new();
    let (a_ns, b_ns) = (namespace(), namespace());
    let (a, b) = (bus(&url, &a_ns).await, bus(&url, &b_ns).await);
    let (in_a, in_b) = (Ledger::new(w.db("a").await).await, Ledger::new(w.db("b").await).await);
    subscribe(&a, "ledger", &in_a).await;
    subscribe(&b, "ledger", &in_b).await;
    a.publish(&deposited("hal", 2)).await.unwrap();
    b.publish(&deposited("ida", 7)).await.unwrap();
    eventually("each shop's own event", async || {
        in_a.balance("hal").await == 2 && in_b.balance("ida").await == 7
    })
    .await;
    // Each saw exactly its own: one call each, nothing of the other's.
    assert_eq!((in_a.calls.load(Ordering::SeqCst), in_b.calls.load(Ordering::SeqCst)), (1, 1));
    assert_eq!((in_a.balance("ida").await, in_b.balance("hal").await), (0, 0));
    a.shutdown().await;
    b.shutdown().await;
    crate::delete_namespace(&url, &a_ns).await;
    crate::delete_namespace(&url, &b_ns).await;
}

#[tokio::test]
async fn the_nats_bus_reports_each_subscribers_backlog_and_its_age() {
    let Some(url) = crate::test_nats().await else { return };
    let (w, ns) = (World::new(), namespace());
    let bus = bus(&url, &ns).await;
    let ledger = Ledger::new(w.db("ledger").await).await;
    crate::backlog_follows_a_stuck_delivery(&bus, &ledger).await;
    bus.shutdown().await;
    crate::delete_namespace(&url, &ns).await;
}
