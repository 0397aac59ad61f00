//! How the spans of every process reach the one built-in trace store, in the gateway's
//! process: the others export them over OTLP/HTTP ([`uplink`]) to its receiver
//! (`POST /v1/traces`, [`receiver`]), each body signed with the sender's service key.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rpc::{ApiError, CredentialVerifier};
use trace_store::TraceStore;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::ShopConfig;
use crate::traces::TraceError;

/// The audience of the credentials that vouch for span batches.
pub const TRACES_AUDIENCE: &str = "microlith:traces";
/// The largest export body the receiver reads, in bytes: a batch of the SDK's default
/// 512 spans with every attribute at its cap stays well under it.
pub const RECEIVER_BODY_LIMIT: usize = 16 * 1024 * 1024;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// The OTLP/HTTP receiver of the store: spans from the other processes of the shop.
pub(crate) fn receiver(store: Arc<TraceStore>, verifier: CredentialVerifier) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(receive))
        .layer(DefaultBodyLimit::max(RECEIVER_BODY_LIMIT))
        .with_state(Arc::new(Receiver { store, verifier }))
}

struct Receiver {
    store: Arc<TraceStore>,
    verifier: CredentialVerifier,
}

/// The uplink of a process that does not host the store, when it was told where the store
/// is ([`telemetry::TelemetryConfig::store_endpoint`]); `None` in the gateway's process.
///
/// # Errors
/// The process's service key cannot be read.
pub fn uplink(config: &ShopConfig) -> anyhow::Result<Option<telemetry::StoreUplink>> {
    let plan = crate::Plan::of(&config.topology);
    let hosts_store = plan.process_of(&config.role).is_some_and(|p| p.runs_gateway);
    let (Some(url), false) = (&config.telemetry.store_endpoint, hosts_store) else {
        return Ok(None);
    };
    let trust = crate::Trust::open(&config.data_dir, &config.topology, &config.role)?;
    let issuer = trust.issuer();
    Ok(Some(telemetry::StoreUplink {
        url: url.clone(),
        authorize: Arc::new(move |body: &[u8]| {
            issuer
                .sign_payload(TRACES_AUDIENCE, body)
                .map(|t| format!("Bearer {t}"))
                .map_err(|e| format!("cannot sign a span batch: {e}"))
        }),
    }))
}

/// Receives spans over OTLP/HTTP (protobuf or JSON), from the shop's own processes only:
/// the body must come with a service credential that vouches for exactly it.
// The path is OTLP's, `telemetry::OTLP_TRACES_PATH` (utoipa takes only a literal).
#[utoipa::path(post, path = "/v1/traces", tag = "ops",
    request_body(content = Vec<u8>, content_type = "application/x-protobuf",
        description = "An OTLP ExportTraceServiceRequest (or its JSON encoding)"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "An ExportTraceServiceResponse; rejected spans are counted in its partial_success"),
        (status = 400, body = rpc::ErrorBody),
        (status = 401, body = rpc::ErrorBody),
        (status = 413, body = rpc::ErrorBody),
        (status = 415, body = rpc::ErrorBody),
    ))]
async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match receive_spans(&receiver, &headers, &body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn receive_spans(
    receiver: &Receiver,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(TraceError::Unauthenticated)?;
    let sender = receiver.verifier.verify_payload(token, body).map_err(|why| {
        tracing::warn!(%why, "a span batch with a bad credential");
        TraceError::Unauthenticated
    })?;
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .unwrap_or_default();
    let received = match media {
        PROTOBUF => telemetry::otlp::from_protobuf(body),
        JSON => telemetry::otlp::from_json(body),
        _ => {
            return Err(ApiError::with_status(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("OTLP/HTTP bodies are {PROTOBUF} or {JSON}"),
            ));
        }
    }
    .map_err(TraceError::InvalidInput)?;
    if received.rejected > 0 {
        tracing::debug!(sender, rejected = received.rejected, "spans with malformed ids left out");
    }
    receiver.store.insert(&received.spans).await.map_err(TraceError::internal)?;
    let why = "a trace or span id is malformed";
    Ok(match media {
        PROTOBUF => (
            [(header::CONTENT_TYPE, PROTOBUF)],
            telemetry::otlp::response_protobuf(received.rejected, why),
        )
            .into_response(),
        _ => {
            let body = match received.rejected {
                0 => serde_json::json!({}),
                n => serde_json::json!({ "partialSuccess": {
                    "rejectedSpans": n.to_string(), "errorMessage": why } }),
            };
            axum::Json(body).into_response()
        }
    })
}
