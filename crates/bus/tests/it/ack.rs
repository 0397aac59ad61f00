//! A consumer that dies after its transaction committed but before the broker heard the
//! ack: the event is delivered again and the inbox makes that second delivery a no-op. On
//! both buses.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bus::{BusClient, DeliveryPolicy, EmbeddedBus, Envelope, HandleError, Handler, NatsBus};
use bus::{Event as _, Subscription};
use tokio::sync::Notify;

use crate::{Deposited, Ledger, World, deposited, eventually};

/// Runs the ledger's handler (effect + inbox, committed), then dies before the bus can
/// ack: from the broker's side, a process killed between its commit and its ack.
struct CommitThenDie {
    ledger: Arc<Ledger>,
    committed: Arc<Notify>,
}

#[async_trait]
impl Handler for CommitThenDie {
    async fn handle(&self, event: &Envelope) -> Result<(), HandleError> {
        self.ledger.handle(event).await?;
        self.committed.notify_one();
        panic!("killed after the commit, before the ack");
    }
}

/// The ledger after the restart, counting what reaches it.
struct Restarted {
    ledger: Arc<Ledger>,
    calls: AtomicUsize,
}

#[async_trait]
impl Handler for Restarted {
    async fn handle(&self, event: &Envelope) -> Result<(), HandleError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.ledger.handle(event).await
    }
}

fn policy() -> DeliveryPolicy {
    DeliveryPolicy { ack_wait: Duration::from_secs(1), ..DeliveryPolicy::default() }
}

/// `open` gives a fresh bus client on the same broker state, as a restarted process would.
async fn killed_before_ack_is_redelivered_without_effect(
    w: &World,
    open: impl AsyncFn() -> BusClient,
) {
    let ledger = Ledger::new(w.db("ledger").await).await;
    let committed = Arc::new(Notify::new());
    let first = open().await;
    let dying = Arc::new(CommitThenDie { ledger: ledger.clone(), committed: committed.clone() });
    first
        .subscribe(Subscription::new("ledger", vec![Deposited::TYPE], dying).with_policy(policy()))
        .await
        .unwrap();
    first.publish(&deposited("erin", 5)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), committed.notified()).await.expect("committed");
    assert_eq!(ledger.balance("erin").await, 5);
    // The rest of the process goes too, well within the ack wait.
    first.shutdown().await;

    let second = open().await;
    let restarted = Arc::new(Restarted { ledger: ledger.clone(), calls: AtomicUsize::new(0) });
    let sub = Subscription::new("ledger", vec![Deposited::TYPE], restarted.clone());
    second.subscribe(sub.with_policy(policy())).await.unwrap();
    eventually("the event is delivered again", async || {
        restarted.calls.load(Ordering::SeqCst) >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ledger.balance("erin").await, 5, "the redelivery had no second effect");
    second.shutdown().await;
}

#[tokio::test]
async fn embedded_consumer_killed_after_commit_before_ack() {
    let w = World::new();
    let path = w.path.join("bus.db");
    killed_before_ack_is_redelivered_without_effect(&w, async || {
        let db = store::Db::open_sqlite(&path).await.unwrap();
        BusClient::new(EmbeddedBus::open(db).await.unwrap())
    })
    .await;
}

#[tokio::test]
async fn nats_consumer_killed_after_commit_before_ack() {
    let Some(url) = crate::test_nats().await else { return };
    let w = World::new();
    let ns = format!("t{}", uuid::Uuid::new_v4().simple());
    killed_before_ack_is_redelivered_without_effect(&w, async || {
        BusClient::new(NatsBus::connect(&url, &ns).await.unwrap())
    })
    .await;
    crate::delete_namespace(&url, &ns).await;
}
