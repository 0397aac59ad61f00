//! The built-in trace store: a SQLite file in the data directory (`traces.db`), kept
//! across restarts, bounded by a number of traces (the oldest stored are evicted first).
//! It is fed with the [`SpanRecord`]s of `telemetry`'s exporter ([`TraceStore::write_from`]
//! a `telemetry::subscribe()`), and read by the trace API.
//!
//! Each batch of spans is one row, in OTLP's protobuf encoding; the index of traces
//! (extent, services, operations, errors, which batches hold them) is kept in memory and
//! rebuilt when the store opens. A row per span cost the shop about a third of its read
//! throughput on two cores; a row per batch stores spans several times faster than the
//! shop makes them (the `topologies` bench prints both rates, and tracing on against off).
//!
//! It knows no module.

use std::path::Path;

use serde::Serialize;
use sqlx::{QueryBuilder, Row as _};
use store::{Db, Durability};
use tokio::sync::{Mutex, mpsc};

mod index;
use index::Index;

pub use telemetry::SpanRecord;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How many traces the store keeps by default (the .NET Aspire dashboard's
/// `MaxTraceCount`).
pub const DEFAULT_MAX_TRACES: u64 = 10_000;

/// The most traces one listing returns.
pub const MAX_PAGE: u32 = 200;

/// Batches read by one statement: well below SQLite's limit of 32,766 variables.
const ROWS_PER_STATEMENT: usize = 500;

/// The most spans in one row (four of the exporter's batches): reading one trace back
/// decodes its whole row.
const MAX_BATCH_SPANS: usize = 2048;

pub struct TraceStore {
    db: Db,
    max_traces: usize,
    /// Held for a whole `insert`, so batches are stored and indexed in one order.
    index: Mutex<Index>,
}

/// One trace in a listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceSummary {
    pub trace_id: String,
    /// The root span's name and service (the earliest span's, when the root is missing).
    pub root_name: String,
    pub root_service: String,
    pub start_unix_nano: i64,
    pub duration_ms: f64,
    pub span_count: i64,
    pub error: bool,
    /// Pass as `before` to get the next, older page.
    pub seq: i64,
}

/// Which traces to list. Every field narrows; the default lists the newest.
#[derive(Debug, Clone, Default)]
pub struct TraceFilter {
    /// A span of the trace was recorded by this service.
    pub service: Option<String>,
    /// A span of the trace has this name (`POST /api/v1/orders`, `orders.place`).
    pub operation: Option<String>,
    pub min_duration_ms: Option<f64>,
    pub max_duration_ms: Option<f64>,
    /// Only traces with (`true`) or without (`false`) a failed span.
    pub error: Option<bool>,
    /// A span of the trace has this attribute with this value, compared as written: a
    /// string attribute by its text, a number or boolean by its JSON (`202`, `true`).
    pub attribute: Option<(String, String)>,
    /// Only traces whose first span started at or after this (Unix nanoseconds).
    pub started_from_unix_nano: Option<i64>,
    /// Only traces whose first span started before this (Unix nanoseconds).
    pub started_before_unix_nano: Option<i64>,
    /// Only traces stored before this one (its `seq`), for paging.
    pub before: Option<i64>,
    /// At most this many, up to [`MAX_PAGE`].
    pub limit: u32,
}

impl TraceStore {
    /// Opens (or creates) the store at `path`, keeping at most `max_traces`.
    ///
    /// Reads every stored batch to rebuild the index (at the default bound, some 30,000
    /// spans: well under a second).
    pub async fn open(path: &Path, max_traces: u64) -> anyhow::Result<TraceStore> {
        // Losing the last traces to a power loss costs little; an fsync per batch would
        // cost the shop's throughput.
        let db = Db::open_sqlite_with(path, Durability::Normal).await?;
        db.migrate(&MIGRATOR).await?;
        let max_traces = usize::try_from(max_traces).unwrap_or(usize::MAX).max(1);
        let mut index = Index::default();
        let rows = sqlx::query("SELECT seq, spans FROM span_batches ORDER BY seq")
            .fetch_all(db.pool())
            .await?;
        for row in rows {
            let batch: i64 = row.try_get("seq")?;
            let spans = decode(&row.try_get::<Vec<u8>, _>("spans")?);
            index.add(&spans.iter().collect::<Vec<_>>(), batch, max_traces);
        }
        let store = TraceStore { db, max_traces, index: Mutex::new(index) };
        store.prune(store.index.lock().await.oldest_batch()).await?;
        Ok(store)
    }

    /// Stores `spans` (a span stored before is kept as it was), then evicts the oldest
    /// traces beyond the bound: a row per [`MAX_BATCH_SPANS`] spans, and a delete of the
    /// batches no trace held needs any more.
    pub async fn insert(&self, spans: &[SpanRecord]) -> Result<(), sqlx::Error> {
        let mut index = self.index.lock().await;
        let fresh = index.fresh(spans);
        if fresh.is_empty() {
            return Ok(());
        }
        let mut oldest = index.oldest_batch();
        // A big import goes in several rows, so that reading one trace stays quick.
        for chunk in fresh.chunks(MAX_BATCH_SPANS) {
            let batch = index.next_batch;
            sqlx::query("INSERT INTO span_batches (seq, spans) VALUES ($1, $2)")
                .bind(batch)
                .bind(telemetry::otlp::to_protobuf(chunk.iter().copied()))
                .execute(self.db.pool())
                .await?;
            oldest = index.add(chunk, batch, self.max_traces);
        }
        drop(index);
        // Were this to fail, the rows stay until the next prune: they are only garbage.
        self.prune(oldest).await
    }

    /// Deletes the batches before `oldest`.
    async fn prune(&self, oldest: i64) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM span_batches WHERE seq < $1")
            .bind(oldest)
            .execute(self.db.pool())
            .await
            .map(drop)
    }

    /// The spans of `trace_id` in `batches`, earliest first.
    async fn spans_in(
        &self,
        trace_id: &str,
        batches: &[i64],
    ) -> Result<Vec<SpanRecord>, sqlx::Error> {
        let mut spans = Vec::new();
        for chunk in batches.chunks(ROWS_PER_STATEMENT) {
            let mut q =
                QueryBuilder::<sqlx::Any>::new("SELECT spans FROM span_batches WHERE seq IN (");
            let mut seqs = q.separated(", ");
            for b in chunk {
                seqs.push_bind(*b);
            }
            q.push(")");
            for row in q.build().fetch_all(self.db.pool()).await? {
                let batch = decode(&row.try_get::<Vec<u8>, _>("spans")?);
                spans.extend(batch.into_iter().filter(|s| s.trace_id == trace_id));
            }
        }
        spans.sort_by(|a, b| (a.start_unix_nano, &a.span_id).cmp(&(b.start_unix_nano, &b.span_id)));
        Ok(spans)
    }

    /// Every span of trace `trace_id`, earliest first; empty when the store has none.
    pub async fn trace(&self, trace_id: &str) -> Result<Vec<SpanRecord>, sqlx::Error> {
        let batches = match self.index.lock().await.get(trace_id) {
            Some(entry) => entry.batches.clone(),
            None => return Ok(Vec::new()),
        };
        self.spans_in(trace_id, &batches).await
    }

    /// The traces `filter` selects, newest stored first.
    pub async fn list(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>, sqlx::Error> {
        let limit = usize::try_from(filter.limit.clamp(1, MAX_PAGE)).unwrap_or(1);
        let Some((key, value)) = &filter.attribute else {
            let index = self.index.lock().await;
            return Ok(index
                .traces
                .iter()
                .rev()
                .filter(|(seq, e)| e.matches(**seq, filter))
                .take(limit)
                .map(|(seq, e)| e.summary(*seq))
                .collect());
        };
        // The attribute filter reads the spans, a trace at a time, newest first, without
        // holding the index meanwhile.
        let candidates: Vec<(TraceSummary, Vec<i64>)> = {
            let index = self.index.lock().await;
            index
                .traces
                .iter()
                .rev()
                .filter(|(seq, e)| e.matches(**seq, filter))
                .map(|(seq, e)| (e.summary(*seq), e.batches.clone()))
                .collect()
        };
        let as_json = serde_json::from_str::<serde_json::Value>(value).ok();
        let mut found = Vec::new();
        for (summary, batches) in candidates {
            let spans = self.spans_in(&summary.trace_id, &batches).await?;
            if spans.iter().any(|s| has_attribute(s, key, value, as_json.as_ref())) {
                found.push(summary);
                if found.len() == limit {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// How many traces it holds.
    pub async fn trace_count(&self) -> Result<u64, sqlx::Error> {
        Ok(u64::try_from(self.index.lock().await.traces.len()).unwrap_or(u64::MAX))
    }

    /// Writes what `spans` receives until it closes (or the returned future is dropped:
    /// what waits in the channel then is lost).
    pub async fn write_from(&self, mut spans: mpsc::Receiver<Vec<SpanRecord>>) {
        while let Some(mut batch) = spans.recv().await {
            // Whatever else is already waiting goes in the same row, up to a bound that
            // keeps a row quick to read back.
            while batch.len() < MAX_BATCH_SPANS {
                let Ok(more) = spans.try_recv() else { break };
                batch.extend(more);
            }
            if let Err(e) = self.insert(&batch).await {
                eprintln!("telemetry: cannot store {} span(s): {e}", batch.len());
            }
        }
    }

    pub async fn close(&self) {
        self.db.close().await;
    }
}

/// The spans of a stored batch. A row this store wrote always decodes; a damaged one
/// counts as empty rather than failing every read.
fn decode(bytes: &[u8]) -> Vec<SpanRecord> {
    telemetry::otlp::from_protobuf(bytes).map(|r| r.spans).unwrap_or_default()
}

/// Whether `span` has attribute `key` with `value`, compared as written: a string
/// attribute by its text, a number or boolean by its JSON (`202`, `true`), which is
/// `as_json` (`value` parsed as JSON, when it parses).
fn has_attribute(
    span: &SpanRecord,
    key: &str,
    value: &str,
    as_json: Option<&serde_json::Value>,
) -> bool {
    span.attributes
        .iter()
        .any(|a| a.key == key && (a.value.as_str() == Some(value) || as_json == Some(&a.value)))
}
