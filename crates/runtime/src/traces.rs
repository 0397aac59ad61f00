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
    OpenApiRouter::new().routes(routes!(list_traces)).routes(routes!(get_trace)).with_state(store)
}

/// Which traces to list; every parameter narrows.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// A span of the trace was recorded by this service (`service.name`).
    service: Option<String>,
    /// A span of the trace has this name (`POST /api/v1/orders`, `orders.place`).
    operation: Option<String>,
    /// At least this long, in milliseconds.
    min_duration_ms: Option<f64>,
    /// At most this long, in milliseconds.
    max_duration_ms: Option<f64>,
    /// Only traces with (`true`) or without (`false`) a failed span.
    error: Option<bool>,
    /// The `next` of the previous page.
    before: Option<i64>,
    /// 1 to 200; default 50.
    limit: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct TracePage {
    #[schema(value_type = Vec<Object>)]
    items: Vec<TraceSummary>,
    /// Pass as `before` for the next (older) page; absent on the last.
    next: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct TraceView {
    trace_id: String,
    #[schema(value_type = Vec<Object>)]
    spans: Vec<SpanRecord>,
}

/// Default page size of the listing.
const DEFAULT_LIMIT: u32 = 50;

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
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=trace_store::MAX_PAGE).contains(&limit) {
        let why = format!("limit must be 1 to {}", trace_store::MAX_PAGE);
        return Err(TraceError::InvalidInput(why).into());
    }
    for d in [p.min_duration_ms, p.max_duration_ms].into_iter().flatten() {
        if !d.is_finite() || d < 0.0 {
            let why = "a duration is a number of milliseconds, 0 or more";
            return Err(TraceError::InvalidInput(why.into()).into());
        }
    }
    let filter = TraceFilter {
        service: p.service,
        operation: p.operation,
        min_duration_ms: p.min_duration_ms,
        max_duration_ms: p.max_duration_ms,
        error: p.error,
        before: p.before,
        limit,
    };
    let items = store.list(&filter).await.map_err(TraceError::internal)?;
    let next = (items.len() == limit as usize).then(|| items.last().map(|t| t.seq)).flatten();
    Ok(Json(TracePage { items, next }))
}

/// One trace, every span earliest first; 404 when the store has none of it.
#[utoipa::path(get, path = "/api/v1/system/traces/{trace_id}", tag = "system",
    params(("trace_id" = String, Path, description = "32 lowercase hex digits")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = TraceView),
        (status = 400, body = rpc::ErrorBody),
        (status = 404, body = rpc::ErrorBody),
    ))]
async fn get_trace(
    State(store): State<Arc<TraceStore>>,
    Ctx(ctx): Ctx,
    Path(trace_id): Path<String>,
) -> ApiResult<Json<TraceView>> {
    ctx.admin().map_err(ApiError::from)?;
    let valid = trace_id.len() == 32
        && trace_id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && trace_id.bytes().any(|b| b != b'0');
    if !valid {
        let why = "a trace id is 32 lowercase hex digits, not all zero";
        return Err(TraceError::InvalidInput(why.into()).into());
    }
    let spans = store.trace(&trace_id).await.map_err(TraceError::internal)?;
    if spans.is_empty() {
        return Err(TraceError::TraceNotFound.into());
    }
    Ok(Json(TraceView { trace_id, spans }))
}
