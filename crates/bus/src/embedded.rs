//! The embedded bus: a broker in one SQLite database (`bus.db`), for the monolith and for
//! local runs. The model is JetStream's, so the NATS implementation is a drop-in: a durable
//! message log deduplicated by event id, and per subscriber a durable queue of owed
//! deliveries with leases (ack wait), a delivery count, backoff, and dead letters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use kernel::{EventId, Limit, Page};
use sqlx::Row as _;
use store::Db;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::contract::dead_letter_page;
use crate::{
    Backlog, BusError, DeadLetter, DeadLetterKey, Envelope, EventBus, HandleError, Subscription,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/broker");

/// Messages nobody owes a delivery of are kept this long, so an operator can replay them.
const MESSAGE_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
const JANITOR_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct EmbeddedBus {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    poll: Duration,
    wakes: Mutex<HashMap<String, Arc<Notify>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    cancel: CancellationToken,
}

impl std::fmt::Debug for EmbeddedBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmbeddedBus")
    }
}

fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(e.to_string())
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A delivery handed to a handler.
struct Claimed {
    event_id: String,
    attempts: u32,
    envelope: Result<Envelope, String>,
}

impl EmbeddedBus {
    /// The longest an idle dispatcher waits before looking again. Publishes in this process
    /// wake it at once; those from another process sharing the file do not.
    pub const DEFAULT_POLL: Duration = Duration::from_millis(250);

    /// Opens the broker in `db` (creating its tables) and starts its janitor.
    pub async fn open(db: Db) -> anyhow::Result<EmbeddedBus> {
        Self::open_with_poll(db, Self::DEFAULT_POLL).await
    }

    /// As [`open`](Self::open), with dispatchers looking for work every `poll` when idle:
    /// shorter when several processes publish into the same file.
    pub async fn open_with_poll(db: Db, poll: Duration) -> anyhow::Result<EmbeddedBus> {
        db.migrate(&MIGRATOR).await?;
        let inner = Arc::new(Inner {
            db,
            poll,
            wakes: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            cancel: CancellationToken::new(),
        });
        let janitor = tokio::spawn(janitor(inner.db.clone(), inner.cancel.clone()));
        inner.push_task(janitor);
        Ok(EmbeddedBus { inner })
    }

    /// Deliveries owed to every subscriber (due, in flight or backing off); 0 when the bus
    /// is drained.
    pub async fn backlog(&self) -> Result<i64, BusError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM bus_deliveries")
            .fetch_one(self.inner.db.pool())
            .await
            .map_err(unavailable)?;
        row.try_get("n").map_err(unavailable)
    }
}

impl Inner {
    fn push_task(&self, task: JoinHandle<()>) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push(task);
        }
    }

    fn wake_all(&self) {
        if let Ok(wakes) = self.wakes.lock() {
            for n in wakes.values() {
                n.notify_one();
            }
        }
    }
}

#[async_trait]
impl EventBus for EmbeddedBus {
    async fn publish(&self, envelope: &Envelope) -> Result<(), BusError> {
        let json = serde_json::to_string(envelope).map_err(unavailable)?;
        let now = kernel::now_ms();
        let id = envelope.id.to_string();
        let mut tx = self.inner.db.begin_write().await.map_err(unavailable)?;
        let stored = sqlx::query(
            "INSERT INTO bus_messages (id, event_type, source, occurred_at, published_at, envelope) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&id)
        .bind(&envelope.event_type)
        .bind(&envelope.source)
        .bind(envelope.occurred_at)
        .bind(now)
        .bind(json)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        if stored.rows_affected() == 1 {
            sqlx::query(
                "INSERT INTO bus_deliveries (subscriber, event_id, attempts, next_at, lease_until) \
                 SELECT subscriber, $1, 0, $2, 0 FROM bus_subscriptions WHERE event_type = $3",
            )
            .bind(&id)
            .bind(now)
            .bind(&envelope.event_type)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
        self.inner.wake_all();
        Ok(())
    }

    async fn subscribe(&self, sub: Subscription) -> Result<(), BusError> {
        if sub.subscriber.is_empty() || sub.event_types.is_empty() {
            return Err(BusError::InvalidSubscription("needs a name and event types".into()));
        }
        if sub.policy.max_deliver == 0 || sub.policy.concurrency == 0 {
            return Err(BusError::InvalidSubscription(
                "max_deliver and concurrency must be at least 1".into(),
            ));
        }
        let notify = Arc::new(Notify::new());
        {
            let mut wakes = self.inner.wakes.lock().map_err(unavailable)?;
            if wakes.contains_key(&sub.subscriber) {
                return Err(BusError::InvalidSubscription(format!(
                    "{} is already subscribed",
                    sub.subscriber
                )));
            }
            wakes.insert(sub.subscriber.clone(), notify.clone());
        }
        let mut tx = self.inner.db.begin_write().await.map_err(unavailable)?;
        sqlx::query("DELETE FROM bus_subscriptions WHERE subscriber = $1")
            .bind(&sub.subscriber)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        for t in &sub.event_types {
            sqlx::query("INSERT INTO bus_subscriptions (subscriber, event_type) VALUES ($1, $2)")
                .bind(&sub.subscriber)
                .bind(*t)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        // Leases still held were taken by a process that is gone (this subscriber was not
        // running here); hand those deliveries out again now rather than after the ack
        // wait. At worst a live replica's delivery runs twice, which the inbox absorbs.
        sqlx::query("UPDATE bus_deliveries SET lease_until = 0 WHERE subscriber = $1")
            .bind(&sub.subscriber)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        tracing::info!(subscriber = %sub.subscriber, types = ?sub.event_types, "subscribed");
        let task = tokio::spawn(dispatch(
            self.inner.db.clone(),
            sub,
            notify,
            self.inner.poll,
            self.inner.cancel.clone(),
        ));
        self.inner.push_task(task);
        Ok(())
    }

    async fn dead_letters(
        &self,
        limit: Limit,
        after: Option<DeadLetterKey>,
    ) -> Result<Page<DeadLetter, DeadLetterKey>, BusError> {
        const SELECT: &str = "SELECT d.subscriber, d.event_id, m.event_type, d.attempts, d.last_error, d.dead_at \
             FROM bus_dead_letters d JOIN bus_messages m ON m.id = d.event_id";
        const ORDER: &str = "ORDER BY d.dead_at, d.event_id, d.subscriber LIMIT";
        let take = i64::from(limit.get()) + 1;
        let query = match &after {
            None => sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} {ORDER} $1"))).bind(take),
            // A row value comparison: the keyset is exactly the listing's order.
            Some(k) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "{SELECT} WHERE (d.dead_at, d.event_id, d.subscriber) > ($1, $2, $3) {ORDER} $4"
            )))
            .bind(k.dead_at_ms)
            .bind(k.event_id.to_string())
            .bind(k.subscriber.clone())
            .bind(take),
        };
        let rows = query.fetch_all(self.inner.db.pool()).await.map_err(unavailable)?;
        let rows = rows
            .iter()
            .map(|r| {
                let id: String = r.try_get("event_id").map_err(unavailable)?;
                let event_id =
                    EventId::parse(&id).ok_or_else(|| unavailable("corrupt event id"))?;
                let attempts: i64 = r.try_get("attempts").map_err(unavailable)?;
                let dead_at_ms: i64 = r.try_get("dead_at").map_err(unavailable)?;
                let subscriber: String = r.try_get("subscriber").map_err(unavailable)?;
                let key = DeadLetterKey { dead_at_ms, event_id, subscriber: subscriber.clone() };
                let letter = DeadLetter {
                    subscriber,
                    event_id,
                    event_type: r.try_get("event_type").map_err(unavailable)?,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    last_error: r.try_get("last_error").map_err(unavailable)?,
                    dead_at: kernel::ms_to_rfc3339(dead_at_ms),
                };
                Ok((key, letter))
            })
            .collect::<Result<Vec<_>, BusError>>()?;
        Ok(dead_letter_page(rows, limit))
    }

    async fn replay(&self, subscriber: &str, event: EventId) -> Result<(), BusError> {
        let id = event.to_string();
        let mut tx = self.inner.db.begin_write().await.map_err(unavailable)?;
        let known = sqlx::query(
            "SELECT 1 AS one FROM bus_messages m JOIN bus_subscriptions s \
             ON s.event_type = m.event_type WHERE m.id = $1 AND s.subscriber = $2",
        )
        .bind(&id)
        .bind(subscriber)
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?;
        if known.is_none() {
            return Err(BusError::NotFound(event));
        }
        sqlx::query("DELETE FROM bus_dead_letters WHERE subscriber = $1 AND event_id = $2")
            .bind(subscriber)
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO bus_deliveries (subscriber, event_id, attempts, next_at, lease_until) \
             VALUES ($1, $2, 0, $3, 0) ON CONFLICT (subscriber, event_id) DO NOTHING",
        )
        .bind(subscriber)
        .bind(&id)
        .bind(kernel::now_ms())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        tracing::info!(subscriber, event_id = %event, "event replayed");
        self.inner.wake_all();
        Ok(())
    }

    fn messaging_system(&self) -> &'static str {
        "microlith"
    }

    async fn backlogs(&self) -> Result<Vec<(String, Backlog)>, BusError> {
        // Only this process's subscribers: another process sharing the file reports its own.
        let mut mine: Vec<String> = match self.inner.wakes.lock() {
            Ok(wakes) => wakes.keys().cloned().collect(),
            Err(_) => return Err(unavailable("subscriber table poisoned")),
        };
        mine.sort();
        let rows = sqlx::query(
            "SELECT d.subscriber AS subscriber, COUNT(*) AS n, MIN(m.published_at) AS oldest \
             FROM bus_deliveries d JOIN bus_messages m ON m.id = d.event_id \
             GROUP BY d.subscriber",
        )
        .fetch_all(self.inner.db.pool())
        .await
        .map_err(unavailable)?;
        let mut owed = HashMap::new();
        for row in rows {
            let subscriber: String = row.try_get("subscriber").map_err(unavailable)?;
            let n: i64 = row.try_get("n").map_err(unavailable)?;
            let oldest: Option<i64> = row.try_get("oldest").map_err(unavailable)?;
            owed.insert(subscriber, Backlog::since(u64::try_from(n).unwrap_or(0), oldest));
        }
        Ok(mine
            .into_iter()
            .map(|s| {
                let b = owed.get(&s).copied().unwrap_or_default();
                (s, b)
            })
            .collect())
    }

    async fn shutdown(&self) {
        self.inner.cancel.cancel();
        let tasks = match self.inner.tasks.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(_) => return,
        };
        for mut task in tasks {
            // A handler stuck past this is abandoned; its lease is reset on the next start.
            if tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

/// Hands out the subscriber's due deliveries in batches, runs the handler on each
/// (concurrently, up to the policy's limit) and records every outcome in one transaction.
async fn dispatch(
    db: Db,
    sub: Subscription,
    notify: Arc<Notify>,
    poll: Duration,
    cancel: CancellationToken,
) {
    let mut failures = 0u32;
    while !cancel.is_cancelled() {
        let claimed = match claim(&db, &sub).await {
            Ok(c) => {
                failures = 0;
                c
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(subscriber = %sub.subscriber, error = %e, "cannot claim deliveries");
                let wait = Duration::from_millis(100u64 << failures.min(6));
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(wait) => continue,
                }
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                () = cancel.cancelled() => break,
                () = notify.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
            continue;
        }
        let mut running = JoinSet::new();
        for c in claimed {
            let handler = sub.handler.clone();
            let ack_wait = sub.policy.ack_wait;
            let subscriber = sub.subscriber.clone();
            running.spawn(async move {
                let outcome = match &c.envelope {
                    Err(e) => Err(HandleError::Reject(format!("unreadable message: {e}"))),
                    Ok(env) => match tokio::time::timeout(ack_wait, handler.handle(env))
                        .instrument(crate::spans::process_span("microlith", &subscriber, env))
                        .await
                    {
                        Ok(r) => r,
                        Err(_) => Err(HandleError::Retry("handler exceeded the ack wait".into())),
                    },
                };
                (c, outcome)
            });
        }
        let mut outcomes = Vec::new();
        while let Some(joined) = running.join_next().await {
            match joined {
                Ok(o) => outcomes.push(o),
                // A panicking handler: its lease expires and it is delivered again.
                Err(e) => {
                    tracing::error!(subscriber = %sub.subscriber, error = %e, "handler panicked")
                }
            }
        }
        if let Err(e) = settle(&db, &sub, outcomes).await {
            // Unrecorded outcomes are redelivered when their leases expire; the inbox
            // makes the handled ones no-ops.
            tracing::warn!(subscriber = %sub.subscriber, error = %e, "cannot record delivery outcomes");
        }
    }
}

async fn claim(db: &Db, sub: &Subscription) -> Result<Vec<Claimed>, sqlx::Error> {
    let now = kernel::now_ms();
    let mut tx = db.begin_write().await?;
    let rows = sqlx::query(
        "SELECT d.event_id, d.attempts, m.envelope FROM bus_deliveries d \
         JOIN bus_messages m ON m.id = d.event_id \
         WHERE d.subscriber = $1 AND d.next_at <= $2 AND d.lease_until <= $2 \
         ORDER BY d.next_at, d.event_id LIMIT $3",
    )
    .bind(&sub.subscriber)
    .bind(now)
    .bind(i64::try_from(sub.policy.concurrency).unwrap_or(i64::MAX))
    .fetch_all(&mut *tx)
    .await?;
    let lease_until = now.saturating_add(ms(sub.policy.ack_wait));
    let mut claimed = Vec::with_capacity(rows.len());
    for r in &rows {
        let event_id: String = r.try_get("event_id")?;
        let attempts: i64 = r.try_get("attempts")?;
        let json: String = r.try_get("envelope")?;
        sqlx::query(
            "UPDATE bus_deliveries SET attempts = attempts + 1, lease_until = $1 \
             WHERE subscriber = $2 AND event_id = $3",
        )
        .bind(lease_until)
        .bind(&sub.subscriber)
        .bind(&event_id)
        .execute(&mut *tx)
        .await?;
        claimed.push(Claimed {
            event_id,
            attempts: u32::try_from(attempts + 1).unwrap_or(u32::MAX),
            envelope: serde_json::from_str(&json).map_err(|e| e.to_string()),
        });
    }
    tx.commit().await?;
    Ok(claimed)
}

async fn settle(
    db: &Db,
    sub: &Subscription,
    outcomes: Vec<(Claimed, Result<(), HandleError>)>,
) -> Result<(), sqlx::Error> {
    let now = kernel::now_ms();
    let mut tx = db.begin_write().await?;
    for (c, outcome) in outcomes {
        let give_up = match &outcome {
            Ok(()) => None,
            Err(HandleError::Reject(e)) => Some(e.clone()),
            Err(HandleError::Retry(e)) if c.attempts >= sub.policy.max_deliver => Some(e.clone()),
            Err(HandleError::Retry(e)) => {
                let next = now.saturating_add(ms(sub.policy.backoff_after(c.attempts)));
                tracing::warn!(subscriber = %sub.subscriber, event_id = %c.event_id,
                    attempts = c.attempts, error = %e, "delivery failed, will retry");
                sqlx::query(
                    "UPDATE bus_deliveries SET next_at = $1, lease_until = 0, last_error = $2 \
                     WHERE subscriber = $3 AND event_id = $4",
                )
                .bind(next)
                .bind(e)
                .bind(&sub.subscriber)
                .bind(&c.event_id)
                .execute(&mut *tx)
                .await?;
                continue;
            }
        };
        if let Some(error) = give_up {
            tracing::error!(subscriber = %sub.subscriber, event_id = %c.event_id,
                attempts = c.attempts, error = %error, "delivery dead-lettered");
            sqlx::query(
                "INSERT INTO bus_dead_letters (subscriber, event_id, attempts, last_error, dead_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (subscriber, event_id) DO UPDATE SET \
                 attempts = excluded.attempts, last_error = excluded.last_error, dead_at = excluded.dead_at",
            )
            .bind(&sub.subscriber)
            .bind(&c.event_id)
            .bind(i64::from(c.attempts))
            .bind(&error)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM bus_deliveries WHERE subscriber = $1 AND event_id = $2")
            .bind(&sub.subscriber)
            .bind(&c.event_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

async fn janitor(db: Db, cancel: CancellationToken) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(JANITOR_EVERY) => {}
        }
        let cutoff = kernel::now_ms().saturating_sub(ms(MESSAGE_RETENTION));
        let pruned = sqlx::query(
            "DELETE FROM bus_messages WHERE published_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM bus_deliveries d WHERE d.event_id = bus_messages.id) \
             AND NOT EXISTS (SELECT 1 FROM bus_dead_letters l WHERE l.event_id = bus_messages.id)",
        )
        .bind(cutoff)
        .execute(db.pool())
        .await;
        if let Err(e) = pruned {
            tracing::warn!(error = %e, "bus janitor failed");
        }
    }
}
