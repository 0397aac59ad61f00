//! The trace API (admin), over the built-in store in the gateway's process:
//! `GET /api/v1/system/traces` lists traces, `GET /api/v1/system/traces/{trace_id}` gives
//! one whole, earliest span first, with parents and links by id.

use std::sync::Arc;

use axum::extract::State;
use rpc::{ApiError, ApiResult, Ctx, Json, Path, Query};
use serde::{Deserialize, Serialize};
use trace_store::{SpanRecord, TraceFilter, TraceStore, TraceSummary};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) fn router(store: Arc<TraceStore>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(list_traces))
        .routes(routes!(get_trace))
        .routes(routes!(export_trace))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(import_traces))
                .layer(axum::extract::DefaultBodyLimit::max(IMPORT_BODY_LIMIT)),
        )
        .with_state(store)
}

/// The largest OTLP JSON file an import takes, in bytes.
pub const IMPORT_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Which traces to list; every parameter narrows, and an empty `service`, `operation` or
/// `attribute` (`?service=`, as an HTML form sends it) is left out.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// A span of the trace was recorded by this service (`service.name`).
    service: Option<String>,
    /// A span of the trace has this name (`POST /api/v1/orders`, `orders.place`).
    operation: Option<String>,
    /// At least this long, in milliseconds.
    #[param(minimum = 0)]
    min_duration_ms: Option<f64>,
    /// At most this long, in milliseconds.
    #[param(minimum = 0)]
    max_duration_ms: Option<f64>,
    /// Only traces with (`true`) or without (`false`) a failed span.
    error: Option<bool>,
    /// `key=value`: a span of the trace has this attribute with this value
    /// (`http.response.status_code=503`, `faas.coldstart=true`, `messaging.message.id=…`).
    #[param(pattern = "^([^=]+=.*)?$")]
    attribute: Option<String>,
    /// Only traces that started at or after this instant (RFC 3339); with `to` at or
    /// before it, none.
    #[param(format = DateTime)]
    from: Option<String>,
    /// Only traces that started before this instant (RFC 3339).
    #[param(format = DateTime)]
    to: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<TraceCursor>, inline)]
    cursor: Option<String>,
    /// Page size, parsed as a [`kernel::Limit`] (whose bounds the schema shows).
    #[param(value_type = Option<kernel::Limit>, inline)]
    limit: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct TracePage {
    #[schema(value_type = Vec<Object>)]
    items: Vec<TraceSummary>,
    /// Pass as `cursor` for the next (older) page; `null` on the last.
    next_cursor: Option<String>,
}

kernel::cursor_param!(
    /// The `cursor` of the trace listing.
    TraceCursor for TraceSeq
);

/// Where a trace listing resumes: the store's sequence number of the last trace seen.
#[derive(Debug, Clone, Copy, PartialEq)]
struct TraceSeq(i64);

impl kernel::CursorKey for TraceSeq {
    const LIST: &'static str = "traces";
    // At most 18 digits: every such number is an i64.
    const PATTERN: &'static str = "(0|[1-9][0-9]{0,17})";
    fn to_text(&self) -> String {
        self.0.to_string()
    }
    fn from_text(s: &str) -> Option<Self> {
        let digits = (1..=18).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
        digits.then(|| s.parse().ok().map(TraceSeq)).flatten()
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct TraceView {
    trace_id: String,
    #[schema(value_type = Vec<Object>)]
    spans: Vec<SpanRecord>,
}

kernel::contract_error! {
    /// What can go wrong reading traces; bad input is `InvalidInput`.
    pub enum TraceError for "traces" {
        #[error("no such trace")]
        TraceNotFound => NotFound, "trace_not_found";
    }
}

/// Traces, newest first.
#[utoipa::path(get, path = "/api/v1/system/traces", tag = "system",
    params(ListParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = TracePage),
        (status = 400, body = rpc::ErrorBody),
        (status = 401, body = rpc::ErrorBody),
        (status = 403, body = rpc::ErrorBody),
    ))]
async fn list_traces(
    State(store): State<Arc<TraceStore>>,
    Ctx(ctx): Ctx,
    Query(p): Query<ListParams>,
) -> ApiResult<Json<TracePage>> {
    ctx.admin().map_err(ApiError::from)?;
    let (limit, after) = kernel::page_params::<TraceSeq>(p.limit.as_deref(), p.cursor.as_deref())
        .map_err(|rule| TraceError::InvalidInput(rule.into()))?;
    for d in [p.min_duration_ms, p.max_duration_ms].into_iter().flatten() {
        if !d.is_finite() || d < 0.0 {
            let why = "a duration is a number of milliseconds, 0 or more";
            return Err(TraceError::InvalidInput(why.into()).into());
        }
    }
    let given = |v: Option<String>| v.filter(|v| !v.is_empty());
    let (service, operation) = (given(p.service), given(p.operation));
    let (from, to) = (p.from, p.to);
    let attribute = match given(p.attribute).as_deref().map(|a| a.split_once('=')) {
        None => None,
        Some(Some((key, value))) if !key.is_empty() => Some((key.to_owned(), value.to_owned())),
        Some(_) => {
            let why = "attribute is `key=value`, with a key";
            return Err(TraceError::InvalidInput(why.into()).into());
        }
    };
    let from = from.as_deref().map(|t| unix_nanos("from", t)).transpose()?;
    let to = to.as_deref().map(|t| unix_nanos("to", t)).transpose()?;
    let filter = TraceFilter {
        service,
        operation,
        min_duration_ms: p.min_duration_ms,
        max_duration_ms: p.max_duration_ms,
        error: p.error,
        attribute,
        started_from_unix_nano: from,
        started_before_unix_nano: to,
        before: after.map(|s| s.0),
        // One more than asked tells whether another page exists.
        limit: limit.get() + 1,
    };
    let mut items = store.list(&filter).await.map_err(TraceError::internal)?;
    let more = items.len() > limit.get() as usize;
    items.truncate(limit.get() as usize);
    let next = if more { items.last().map(|t| TraceSeq(t.seq)) } else { None };
    let page = kernel::Page { items, next };
    Ok(Json(TracePage { next_cursor: page.next_cursor(), items: page.items }))
}

/// `value` of parameter `name`, an RFC 3339 instant, in Unix nanoseconds.
fn unix_nanos(name: &str, value: &str) -> Result<i64, TraceError> {
    let t = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            TraceError::InvalidInput(format!(
                "{name} is an RFC 3339 instant, e.g. 2026-12-01T10:00:00Z"
            ))
        })?;
    // Past what an i64 of nanoseconds holds (1677 to 2262) no trace starts: the nearest
    // end filters the same.
    let nanos = t.unix_timestamp_nanos().clamp(i128::from(i64::MIN), i128::from(i64::MAX));
    Ok(i64::try_from(nanos).unwrap_or_default())
}

/// One trace, every span earliest first; 404 when the store has none of it.
#[utoipa::path(get, path = "/api/v1/system/traces/{trace_id}", tag = "system",
    params(("trace_id" = String, Path, description = "32 lowercase hex digits",
        pattern = "^[0-9a-f]{32}$")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = TraceView),
        (status = 400, body = rpc::ErrorBody),
        (status = 403, body = rpc::ErrorBody),
        (status = 404, body = rpc::ErrorBody),
    ))]
async fn get_trace(
    State(store): State<Arc<TraceStore>>,
    Ctx(ctx): Ctx,
    Path(trace_id): Path<String>,
) -> ApiResult<Json<TraceView>> {
    ctx.admin().map_err(ApiError::from)?;
    let spans = stored_trace(&store, &trace_id).await?;
    Ok(Json(TraceView { trace_id, spans }))
}

/// The spans of `trace_id`: a 400 for a malformed id, a 404 when none is stored (the
/// all-zero id, which W3C Trace Context forbids, included: no trace has it).
async fn stored_trace(store: &TraceStore, trace_id: &str) -> Result<Vec<SpanRecord>, ApiError> {
    let valid =
        trace_id.len() == 32 && trace_id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !valid {
        let why = "a trace id is 32 lowercase hex digits";
        return Err(TraceError::InvalidInput(why.into()).into());
    }
    if trace_id.bytes().all(|b| b == b'0') {
        return Err(TraceError::TraceNotFound.into());
    }
    let spans = store.trace(trace_id).await.map_err(TraceError::internal)?;
    if spans.is_empty() {
        return Err(TraceError::TraceNotFound.into());
    }
    Ok(spans)
}

/// One trace as an OTLP JSON file (an `ExportTraceServiceRequest`, as OTLP/HTTP sends it
/// with `Content-Type: application/json`): what any OpenTelemetry tool, or an import here,
/// reads.
#[utoipa::path(get, path = "/api/v1/system/traces/{trace_id}/otlp", tag = "system",
    params(("trace_id" = String, Path, description = "32 lowercase hex digits",
        pattern = "^[0-9a-f]{32}$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OTLP JSON", content_type = "application/json", body = Object),
        (status = 400, body = rpc::ErrorBody),
        (status = 401, body = rpc::ErrorBody),
        (status = 403, body = rpc::ErrorBody),
        (status = 404, body = rpc::ErrorBody),
    ))]
async fn export_trace(
    State(store): State<Arc<TraceStore>>,
    Ctx(ctx): Ctx,
    Path(trace_id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    ctx.admin().map_err(ApiError::from)?;
    let spans = stored_trace(&store, &trace_id).await?;
    let disposition = format!("attachment; filename=\"trace-{trace_id}.otlp.json\"");
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/json".to_owned()),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        telemetry::otlp::to_json(&spans),
    )
        .into_response())
}

/// What an import stored.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Imported {
    /// Spans read from the file (a span already stored is kept as it was).
    spans: usize,
    /// The traces they belong to.
    trace_ids: Vec<String>,
}

/// Imports an OTLP JSON file (a trace exported here, or by any OpenTelemetry SDK or
/// collector), so it can be looked at like the shop's own. All or nothing: a file that is
/// not OTLP JSON, or has a span with a malformed id, stores nothing.
#[utoipa::path(post, path = "/api/v1/system/traces/import", tag = "system",
    request_body(content = Object, content_type = "application/json",
        description = "An OTLP ExportTraceServiceRequest in OTLP's JSON encoding"),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Imported),
        (status = 400, body = rpc::ErrorBody),
        (status = 401, body = rpc::ErrorBody),
        (status = 403, body = rpc::ErrorBody),
        (status = 413, body = rpc::ErrorBody),
    ))]
async fn import_traces(
    State(store): State<Arc<TraceStore>>,
    Ctx(ctx): Ctx,
    body: axum::body::Bytes,
) -> ApiResult<Json<Imported>> {
    ctx.admin().map_err(ApiError::from)?;
    let received = telemetry::otlp::from_json(&body).map_err(TraceError::InvalidInput)?;
    if received.rejected > 0 {
        let why = format!("{} span(s) have a malformed trace or span id", received.rejected);
        return Err(TraceError::InvalidInput(why).into());
    }
    if received.spans.is_empty() {
        return Err(TraceError::InvalidInput("the file has no span".into()).into());
    }
    let mut trace_ids: Vec<String> = received.spans.iter().map(|s| s.trace_id.clone()).collect();
    trace_ids.sort();
    trace_ids.dedup();
    store.insert(&received.spans).await.map_err(TraceError::internal)?;
    Ok(Json(Imported { spans: received.spans.len(), trace_ids }))
}

#[cfg(test)]
mod cursor_tests {
    use super::*;

    #[test]
    fn a_trace_cursor_is_exactly_its_pattern() {
        kernel::check_cursor_key(
            &[TraceSeq(0), TraceSeq(7), TraceSeq(999_999_999_999_999_999)],
            &["", "-1", "07", "1.5", "1000000000000000000", "9223372036854775808"],
        );
    }
}
