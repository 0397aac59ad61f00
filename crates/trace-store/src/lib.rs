//! The built-in trace store: a SQLite file in the data directory (`traces.db`), kept
//! across restarts, bounded by a number of traces (the oldest stored are evicted first).
//! It is fed with the [`SpanRecord`]s of `telemetry`'s exporter ([`TraceStore::write_from`]
//! a `telemetry::subscribe()`), and read by the trace API.
//!
//! It knows no module.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::Serialize;
use sqlx::{QueryBuilder, Row as _};
use store::Db;
use tokio::sync::mpsc;

pub use telemetry::SpanRecord;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How many traces the store keeps by default (the .NET Aspire dashboard's
/// `MaxTraceCount`).
pub const DEFAULT_MAX_TRACES: u64 = 10_000;

/// The most traces one listing returns.
pub const MAX_PAGE: u32 = 200;

/// Rows per multi-row `INSERT`: 13 bound values each stays well below SQLite's limit of
/// 32,766 variables per statement; larger statements gained little when measured.
const ROWS_PER_STATEMENT: usize = 500;

pub struct TraceStore {
    db: Db,
    max_traces: u64,
    /// The order traces were first stored in: what eviction and paging follow.
    next_seq: AtomicI64,
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
    pub async fn open(path: &Path, max_traces: u64) -> anyhow::Result<TraceStore> {
        let db = Db::open_sqlite(path).await?;
        db.migrate(&MIGRATOR).await?;
        let last: Option<i64> = sqlx::query("SELECT MAX(stored_seq) AS s FROM traces")
            .fetch_one(db.pool())
            .await?
            .try_get("s")?;
        Ok(TraceStore {
            db,
            max_traces: max_traces.max(1),
            next_seq: AtomicI64::new(last.unwrap_or(0) + 1),
        })
    }

    /// Stores `spans` (a span stored before is kept as it was), then evicts the oldest
    /// traces beyond the bound.
    ///
    /// One transaction, with multi-row statements: a statement per [`ROWS_PER_STATEMENT`]
    /// spans, and one row per trace rather than per span in `traces`.
    pub async fn insert(&self, spans: &[SpanRecord]) -> Result<(), sqlx::Error> {
        if spans.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.begin_write_untraced().await?;
        // The spans stored now (not before), summed up per trace in the order first seen.
        let mut traces: Vec<TraceDelta> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for chunk in spans.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<sqlx::Any>::new(
                "INSERT INTO spans (trace_id, span_id, parent_span_id, name, kind, service_name, \
                 start_unix_nano, end_unix_nano, status_code, status_message, attributes, events, links) ",
            );
            q.push_values(chunk, |mut row, s| {
                row.push_bind(s.trace_id.clone())
                    .push_bind(s.span_id.clone())
                    .push_bind(s.parent_span_id.clone())
                    .push_bind(s.name.clone())
                    .push_bind(s.kind.clone())
                    .push_bind(s.service_name.clone())
                    .push_bind(s.start_unix_nano)
                    .push_bind(s.end_unix_nano)
                    .push_bind(s.status_code.clone())
                    .push_bind(s.status_message.clone())
                    .push_bind(to_json(&s.attributes))
                    .push_bind(to_json(&s.events))
                    .push_bind(to_json(&s.links));
            });
            // SQLite returns only the rows the statement inserted, not those it skipped.
            q.push(
                " ON CONFLICT (trace_id, span_id) DO NOTHING \
                 RETURNING trace_id, start_unix_nano, end_unix_nano, status_code",
            );
            for r in q.build().fetch_all(&mut *tx).await? {
                let trace_id: String = r.try_get("trace_id")?;
                let (start, end): (i64, i64) =
                    (r.try_get("start_unix_nano")?, r.try_get("end_unix_nano")?);
                let error = r.try_get::<String, _>("status_code")? == "error";
                let at = *index.entry(trace_id.clone()).or_insert_with(|| {
                    traces.push(TraceDelta { trace_id, start, end, spans: 0, error: false });
                    traces.len() - 1
                });
                let t = &mut traces[at];
                t.start = t.start.min(start);
                t.end = t.end.max(end);
                t.spans += 1;
                t.error |= error;
            }
        }
        for chunk in traces.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<sqlx::Any>::new(
                "INSERT INTO traces (trace_id, stored_seq, start_unix_nano, end_unix_nano, span_count, error) ",
            );
            q.push_values(chunk, |mut row, t| {
                row.push_bind(t.trace_id.clone())
                    .push_bind(self.next_seq.fetch_add(1, Ordering::Relaxed))
                    .push_bind(t.start)
                    .push_bind(t.end)
                    .push_bind(t.spans)
                    .push_bind(i64::from(t.error));
            });
            // A trace stored before keeps its place (`stored_seq`) and grows.
            q.push(
                " ON CONFLICT (trace_id) DO UPDATE SET \
                 start_unix_nano = MIN(traces.start_unix_nano, excluded.start_unix_nano), \
                 end_unix_nano = MAX(traces.end_unix_nano, excluded.end_unix_nano), \
                 span_count = traces.span_count + excluded.span_count, \
                 error = MAX(traces.error, excluded.error)",
            );
            q.build().execute(&mut *tx).await?;
        }
        let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM traces")
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        let excess = count - i64::try_from(self.max_traces).unwrap_or(i64::MAX);
        if excess > 0 {
            let oldest = "SELECT trace_id FROM traces ORDER BY stored_seq LIMIT $1";
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM spans WHERE trace_id IN ({oldest})"
            )))
            .bind(excess)
            .execute(&mut *tx)
            .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM traces WHERE trace_id IN ({oldest})"
            )))
            .bind(excess)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    /// Every span of trace `trace_id`, earliest first; empty when the store has none.
    pub async fn trace(&self, trace_id: &str) -> Result<Vec<SpanRecord>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT trace_id, span_id, parent_span_id, name, kind, service_name, start_unix_nano, \
             end_unix_nano, status_code, status_message, attributes, events, links \
             FROM spans WHERE trace_id = $1 ORDER BY start_unix_nano, span_id",
        )
        .bind(trace_id)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(span_from_row).collect()
    }

    /// The traces `filter` selects, newest stored first.
    pub async fn list(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>, sqlx::Error> {
        let mut sql = String::from(
            "SELECT t.trace_id, t.stored_seq, t.start_unix_nano, t.end_unix_nano, t.span_count, t.error, \
             (SELECT s.name FROM spans s WHERE s.trace_id = t.trace_id \
                ORDER BY s.parent_span_id IS NOT NULL, s.start_unix_nano LIMIT 1) AS root_name, \
             (SELECT s.service_name FROM spans s WHERE s.trace_id = t.trace_id \
                ORDER BY s.parent_span_id IS NOT NULL, s.start_unix_nano LIMIT 1) AS root_service \
             FROM traces t WHERE 1 = 1",
        );
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if filter.service.is_some() {
            sql += &format!(
                " AND EXISTS (SELECT 1 FROM spans s WHERE s.trace_id = t.trace_id AND s.service_name = {})",
                next()
            );
        }
        if filter.operation.is_some() {
            sql += &format!(
                " AND EXISTS (SELECT 1 FROM spans s WHERE s.trace_id = t.trace_id AND s.name = {})",
                next()
            );
        }
        if filter.min_duration_ms.is_some() {
            sql += &format!(" AND (t.end_unix_nano - t.start_unix_nano) >= {}", next());
        }
        if filter.max_duration_ms.is_some() {
            sql += &format!(" AND (t.end_unix_nano - t.start_unix_nano) <= {}", next());
        }
        if filter.error.is_some() {
            sql += &format!(" AND t.error = {}", next());
        }
        if filter.attribute.is_some() {
            // `->` gives the attribute's value as JSON text: `"POST"`, `202`, `true`.
            let (key, as_string, as_json) = (next(), next(), next());
            sql += &format!(
                " AND EXISTS (SELECT 1 FROM spans s, json_each(s.attributes) a \
                 WHERE s.trace_id = t.trace_id AND a.value ->> '$.key' = {key} \
                 AND (a.value -> '$.value') IN ({as_string}, {as_json}))"
            );
        }
        if filter.started_from_unix_nano.is_some() {
            sql += &format!(" AND t.start_unix_nano >= {}", next());
        }
        if filter.started_before_unix_nano.is_some() {
            sql += &format!(" AND t.start_unix_nano < {}", next());
        }
        if filter.before.is_some() {
            sql += &format!(" AND t.stored_seq < {}", next());
        }
        sql += &format!(" ORDER BY t.stored_seq DESC LIMIT {}", next());
        let nanos = |ms: f64| (ms * 1e6) as i64;
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(s) = &filter.service {
            q = q.bind(s.clone());
        }
        if let Some(o) = &filter.operation {
            q = q.bind(o.clone());
        }
        if let Some(ms) = filter.min_duration_ms {
            q = q.bind(nanos(ms));
        }
        if let Some(ms) = filter.max_duration_ms {
            q = q.bind(nanos(ms));
        }
        if let Some(e) = filter.error {
            q = q.bind(i64::from(e));
        }
        if let Some((key, value)) = &filter.attribute {
            q = q
                .bind(key.clone())
                .bind(serde_json::Value::from(value.as_str()).to_string())
                .bind(value.clone());
        }
        if let Some(from) = filter.started_from_unix_nano {
            q = q.bind(from);
        }
        if let Some(before) = filter.started_before_unix_nano {
            q = q.bind(before);
        }
        if let Some(b) = filter.before {
            q = q.bind(b);
        }
        q = q.bind(i64::from(filter.limit.clamp(1, MAX_PAGE)));
        let rows = q.fetch_all(self.db.pool()).await?;
        rows.iter()
            .map(|r| {
                let start: i64 = r.try_get("start_unix_nano")?;
                let end: i64 = r.try_get("end_unix_nano")?;
                Ok(TraceSummary {
                    trace_id: r.try_get("trace_id")?,
                    root_name: r.try_get::<Option<String>, _>("root_name")?.unwrap_or_default(),
                    root_service: r
                        .try_get::<Option<String>, _>("root_service")?
                        .unwrap_or_default(),
                    start_unix_nano: start,
                    duration_ms: (end - start) as f64 / 1e6,
                    span_count: r.try_get("span_count")?,
                    error: r.try_get::<i64, _>("error")? != 0,
                    seq: r.try_get("stored_seq")?,
                })
            })
            .collect()
    }

    /// How many traces it holds.
    pub async fn trace_count(&self) -> Result<u64, sqlx::Error> {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM traces")
            .fetch_one(self.db.pool())
            .await?
            .try_get("n")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Writes what `spans` receives until it closes (or the returned future is dropped:
    /// what waits in the channel then is lost).
    pub async fn write_from(&self, mut spans: mpsc::Receiver<Vec<SpanRecord>>) {
        while let Some(mut batch) = spans.recv().await {
            // Whatever else is already waiting goes in the same transaction.
            while let Ok(more) = spans.try_recv() {
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

/// What one [`TraceStore::insert`] adds to a trace's row.
struct TraceDelta {
    trace_id: String,
    start: i64,
    end: i64,
    spans: i64,
    error: bool,
}

fn span_from_row(r: &sqlx::any::AnyRow) -> Result<SpanRecord, sqlx::Error> {
    fn json<T: serde::de::DeserializeOwned>(
        r: &sqlx::any::AnyRow,
        column: &str,
    ) -> Result<T, sqlx::Error> {
        let text: String = r.try_get(column)?;
        serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(e.into()))
    }
    Ok(SpanRecord {
        trace_id: r.try_get("trace_id")?,
        span_id: r.try_get("span_id")?,
        parent_span_id: r.try_get("parent_span_id")?,
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        service_name: r.try_get("service_name")?,
        start_unix_nano: r.try_get("start_unix_nano")?,
        end_unix_nano: r.try_get("end_unix_nano")?,
        status_code: r.try_get("status_code")?,
        status_message: r.try_get("status_message")?,
        attributes: json(r, "attributes")?,
        events: json(r, "events")?,
        links: json(r, "links")?,
    })
}

/// The JSON text of plain data (lists of attributes, events, links), which always
/// serializes.
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}
