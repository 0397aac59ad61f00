use std::sync::{Arc, OnceLock};
use std::time::Duration;

use kernel::EventId;
use sqlx::Row as _;
use store::{Db, Tx};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{Backlog, BusClient, Envelope, Event, TraceContext};

fn module_migrator() -> sqlx::migrate::Migrator {
    let mut m = sqlx::migrate!("./migrations/module");
    // Its own bookkeeping table, so the module's migrations and these never collide.
    m.dangerous_set_table_name("_bus_migrations");
    m
}

/// Creates the outbox and inbox tables in a module's database (idempotent).
pub async fn install(db: &Db) -> anyhow::Result<()> {
    db.migrate(&module_migrator()).await
}

/// A module's outbox: events are added inside the transaction that makes the change they
/// announce, so either both are committed or neither is.
#[derive(Clone)]
pub struct Outbox {
    db: Db,
    source: &'static str,
    wake: Arc<Notify>,
    /// The broker that publishes it, as `messaging.system` names it: known once a relay
    /// (or a function's drain) takes the outbox, since the module that adds events does
    /// not know which bus carries them.
    system: Arc<OnceLock<&'static str>>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("source", &self.source).finish_non_exhaustive()
    }
}

impl Outbox {
    /// The outbox of module `source` in its database `db` (installs the tables).
    pub async fn new(db: Db, source: &'static str) -> anyhow::Result<Outbox> {
        install(&db).await?;
        Ok(Outbox { db, source, wake: Arc::new(Notify::new()), system: Arc::default() })
    }

    /// Records that `bus` publishes this outbox (for its spans' `messaging.system`); the
    /// first bus recorded stays.
    pub fn published_by(&self, bus: &BusClient) {
        let _ = self.system.set(bus.messaging_system());
    }

    /// Stages `event` in `tx`; it is published once `tx` commits (call [`Outbox::wake`]
    /// then, or the relay's next poll finds it).
    pub async fn add<E: Event>(
        &self,
        tx: &mut Tx,
        event: &E,
        trace: TraceContext,
    ) -> Result<EventId, sqlx::Error> {
        let mut envelope = Envelope::new(self.source, event, trace);
        // The `publish` span (OpenTelemetry messaging conventions): its context is the
        // message's creation context, which travels in the envelope to every consumer.
        let span = tracing::info_span!(
            "bus.publish",
            otel.name = %format!("publish {}", E::TYPE),
            otel.kind = "producer",
            messaging.system = self.system.get().copied(),
            messaging.operation.name = "publish",
            messaging.destination.name = E::TYPE,
            messaging.message.id = %envelope.id,
        );
        if let Some(created) = telemetry::traceparent_of(&span) {
            envelope.trace.traceparent = Some(created.to_string());
        }
        drop(span);
        let json = serde_json::to_string(&envelope).map_err(|e| sqlx::Error::Encode(e.into()))?;
        sqlx::query(
            "INSERT INTO bus_outbox (id, event_type, occurred_at, envelope) VALUES ($1, $2, $3, $4)",
        )
        .bind(envelope.id.to_string())
        .bind(&envelope.event_type)
        .bind(envelope.occurred_at)
        .bind(json)
        .execute(&mut **tx)
        .await?;
        Ok(envelope.id)
    }

    /// Tells the relay that a transaction with events has committed.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The module whose outbox this is.
    pub fn source(&self) -> &'static str {
        self.source
    }

    /// Events staged but not yet published, and how long the oldest has waited (its
    /// `occurred_at`, the commit of the change it announces).
    pub async fn backlog(&self) -> Result<Backlog, sqlx::Error> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(occurred_at) AS oldest FROM bus_outbox WHERE sent_at IS NULL",
        )
        .fetch_one(self.db.pool())
        .await?;
        let n: i64 = row.try_get("n")?;
        Ok(Backlog::since(u64::try_from(n).unwrap_or(0), row.try_get("oldest")?))
    }

    /// Events staged but not yet published.
    pub async fn pending(&self) -> Result<i64, sqlx::Error> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM bus_outbox WHERE sent_at IS NULL")
            .fetch_one(self.db.pool())
            .await?;
        row.try_get("n")
    }
}

/// How long sent outbox rows and handled inbox ids are kept. The inbox must remember an
/// id longer than any redelivery can take (the broker's ack wait times `max_deliver`, plus
/// an operator's replay), so it is kept for days.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub sent_outbox: Duration,
    pub inbox: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            sent_outbox: Duration::from_secs(3600),
            inbox: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

const BATCH: i64 = 256;
const POLL: Duration = Duration::from_millis(250);
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Starts the relay of one module's outbox: publishes unsent events in order, marking each
/// sent only after the bus accepted it. A crash in between republishes it; the bus stores
/// an id once.
pub fn spawn_relay(
    outbox: Outbox,
    bus: BusClient,
    retention: Retention,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    outbox.published_by(&bus);
    tokio::spawn(async move {
        let mut failures = 0u32;
        let mut last_prune = tokio::time::Instant::now();
        loop {
            let wait = match relay_batch(&outbox, &bus).await {
                Ok(n) if n == BATCH as usize => Duration::ZERO,
                Ok(_) => {
                    failures = 0;
                    POLL
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(source = outbox.source, error = %e, "outbox relay failed, backing off");
                    Duration::from_millis(100u64 << failures.min(6))
                }
            };
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = tokio::time::Instant::now();
                if let Err(e) = prune(&outbox.db, retention).await {
                    tracing::warn!(source = outbox.source, error = %e, "outbox prune failed");
                }
            }
            if wait.is_zero() {
                if cancel.is_cancelled() {
                    break;
                }
                continue;
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = outbox.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    })
}

async fn relay_batch(outbox: &Outbox, bus: &BusClient) -> anyhow::Result<usize> {
    let rows = sqlx::query(
        "SELECT id, envelope FROM bus_outbox WHERE sent_at IS NULL \
         ORDER BY occurred_at, id LIMIT $1",
    )
    .bind(BATCH)
    .fetch_all(outbox.db.pool())
    .await?;
    let mut sent = Vec::with_capacity(rows.len());
    let mut result = Ok(());
    for row in &rows {
        let id: String = row.try_get("id")?;
        let json: String = row.try_get("envelope")?;
        match serde_json::from_str::<Envelope>(&json) {
            Ok(envelope) => {
                if let Err(e) = bus.publish(&envelope).await {
                    result = Err(e);
                    break;
                }
                sent.push((id, kernel::now_ms()));
            }
            Err(e) => {
                // Written by `add`, so unreadable only if the file was damaged; mark it so
                // it does not block every event behind it, and say so loudly.
                tracing::error!(source = outbox.source, id, error = %e, "unreadable outbox row skipped");
                sent.push((id, -1));
            }
        }
    }
    if !sent.is_empty() {
        let mut tx = outbox.db.begin_write().await?;
        for (id, at) in &sent {
            sqlx::query("UPDATE bus_outbox SET sent_at = $1 WHERE id = $2")
                .bind(*at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    result?;
    Ok(rows.len())
}

async fn prune(db: &Db, retention: Retention) -> Result<(), sqlx::Error> {
    let now = kernel::now_ms();
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    sqlx::query("DELETE FROM bus_outbox WHERE sent_at IS NOT NULL AND sent_at < $1")
        .bind(now.saturating_sub(ms(retention.sent_outbox)))
        .execute(db.pool())
        .await?;
    sqlx::query("DELETE FROM bus_inbox WHERE handled_at < $1")
        .bind(now.saturating_sub(ms(retention.inbox)))
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Publishes every unsent event of `outbox` now, in order, and returns how many: what a
/// function does before it answers, having no time between invocations for a relay.
pub async fn drain(outbox: &Outbox, bus: &BusClient) -> anyhow::Result<usize> {
    outbox.published_by(bus);
    let mut total = 0;
    loop {
        let n = relay_batch(outbox, bus).await?;
        total += n;
        if n < BATCH as usize {
            return Ok(total);
        }
    }
}
