//! The Lambda Runtime API, one endpoint per instance: what `lambda_runtime` talks to.
//! <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::pool::{Pool, Refused};

/// Lambda's limit on a synchronous invocation's payload and answer.
pub(crate) const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

#[derive(Clone)]
struct Instance {
    pool: Arc<Pool>,
    id: u64,
    stop: CancellationToken,
}

pub(crate) fn router(pool: Arc<Pool>, id: u64, stop: CancellationToken) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .layer(DefaultBodyLimit::max(MAX_PAYLOAD))
        .with_state(Instance { pool, id, stop })
}

/// Long-polls for the next invocation.
async fn next(State(i): State<Instance>) -> Response {
    loop {
        match i.pool.take(i.id) {
            Ok(Some(job)) => {
                let mut h = HeaderMap::new();
                let mut set = |name: &'static str, value: &str| {
                    if let Ok(v) = HeaderValue::from_str(value) {
                        h.insert(name, v);
                    }
                };
                set("content-type", "application/json");
                set("lambda-runtime-aws-request-id", &job.id);
                set("lambda-runtime-deadline-ms", &epoch_ms(job.deadline).to_string());
                set("lambda-runtime-invoked-function-arn", &i.pool.function_arn());
                if let Some(trace) = &job.trace {
                    set("lambda-runtime-trace-id", trace);
                }
                return (StatusCode::OK, h, job.payload).into_response();
            }
            Ok(None) => {
                i.pool.wait_for_work(&i.stop).await;
                if i.stop.is_cancelled() {
                    return stopped().await;
                }
            }
            Err(_) => return stopped().await,
        }
    }
}

/// How long a stopped instance's long poll is held before it is refused; the host kills
/// the process at once, which ends the request sooner.
const HOLD_STOPPED: std::time::Duration = std::time::Duration::from_secs(5);

/// The long poll of a stopped instance gets no answer while its process is being killed, as
/// on Lambda: `lambda_runtime` takes any answer for an invocation (and panics on one without
/// a request id).
async fn stopped() -> Response {
    tokio::time::sleep(HOLD_STOPPED).await;
    gone()
}

async fn response(State(i): State<Instance>, Path(job): Path<String>, body: Bytes) -> Response {
    accepted(i.pool.answer(i.id, &job, body, None))
}

async fn error(
    State(i): State<Instance>,
    Path(job): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let kind = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Unhandled")
        .to_owned();
    accepted(i.pool.answer(i.id, &job, body, Some(kind)))
}

async fn init_error(State(i): State<Instance>, body: Bytes) -> Response {
    i.pool.init_failed(i.id, &body);
    accepted(Ok(()))
}

fn accepted(result: Result<(), Refused>) -> Response {
    match result {
        Ok(()) => {
            (StatusCode::ACCEPTED, axum::Json(serde_json::json!({"status": "OK"}))).into_response()
        }
        Err(Refused::UnknownJob) => error_body(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            "this instance is not running that invocation",
        ),
        Err(Refused::Gone) => gone(),
    }
}

/// Lambda's answer to a runtime it has stopped: the process is expected to exit.
fn gone() -> Response {
    error_body(StatusCode::GONE, "InstanceStopped", "this instance was stopped")
}

fn error_body(status: StatusCode, kind: &str, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({"errorType": kind, "errorMessage": message})))
        .into_response()
}

/// An `Instant` as milliseconds since the Unix epoch, as `Lambda-Runtime-Deadline-Ms` is.
fn epoch_ms(at: Instant) -> u128 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (now + at.saturating_duration_since(Instant::now())).as_millis()
}
