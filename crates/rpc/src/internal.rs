//! The server side of internal calls: the guard every internal route sits behind, and the
//! helpers the [`contract!`](crate::contract) macro's handlers use.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use kernel::{ContractError, Delegation, ErrorKind};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::remote::WireError;
use crate::wire::{ANSWER_NONCE, ANSWER_SIGNATURE, Deadline, ON_BEHALF_OF, read_context};
use crate::{ApiError, CredentialIssuer, CredentialVerifier};

/// Puts `routes` behind the service credential check: the caller must prove which service
/// it is, and the verifier's policy must let that service call the route. The end user, if
/// any, must come as a delegation the public edge signed. The context headers become the
/// request extensions [`Ctx`](crate::Ctx) reads. A call whose caller has already given up
/// (no time left) is answered 504 before any work starts.
///
/// Every answer to a call that brings a nonce ([`ANSWER_NONCE`]) is signed by `signer`, this
/// process's own key, so the caller knows the service it meant to call wrote it.
pub fn guard(routes: Router, verifier: CredentialVerifier, signer: CredentialIssuer) -> Router {
    routes.layer(middleware::from_fn_with_state(Arc::new((verifier, signer)), check))
}

/// The largest answer the guard signs (it holds the whole body to sign it); internal
/// answers are pages of at most a few hundred rows.
const MAX_ANSWER: usize = 16 << 20;

async fn check(
    State(keys): State<Arc<(CredentialVerifier, CredentialIssuer)>>,
    req: Request,
    next: Next,
) -> Response {
    let (verifier, signer) = &*keys;
    let nonce = req.headers().get(ANSWER_NONCE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (caller, res) = admit(verifier, req, next).await;
    // An answer to a caller that proved who it is, and asked for a proof back.
    let (Some(nonce), Some(caller)) = (nonce, caller) else { return res };
    let (mut parts, body) = res.into_parts();
    let body = match axum::body::to_bytes(body, MAX_ANSWER).await {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "cannot read an internal answer to sign it");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    match signer.sign_answer(&caller, &nonce, parts.status.as_u16(), &body) {
        Ok(sig) => match header::HeaderValue::from_str(&sig) {
            Ok(v) => {
                parts.headers.insert(ANSWER_SIGNATURE, v);
            }
            Err(e) => tracing::error!(error = %e, "an answer signature is not a header value"),
        },
        Err(e) => tracing::error!(error = %e, "cannot sign an internal answer"),
    }
    Response::from_parts(parts, axum::body::Body::from(body))
}

fn unauthenticated(code: &'static str, message: &'static str) -> Response {
    ApiError::new(ErrorKind::Unauthenticated, code, message).into_response()
}

/// The route's answer if the call passes every check, else the refusal; with the calling
/// service once its credential is proven.
async fn admit(
    verifier: &CredentialVerifier,
    mut req: Request,
    next: Next,
) -> (Option<String>, Response) {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return (
            None,
            unauthenticated(
                "service_credential_required",
                "internal routes need a service credential",
            ),
        );
    };
    let caller = match verifier.verify(token) {
        Ok(caller) => caller,
        Err(why) => {
            tracing::warn!(%why, service = verifier.service(), "internal call with a bad service credential");
            return (
                None,
                unauthenticated(
                    "invalid_service_credential",
                    "the service credential is not valid",
                ),
            );
        }
    };
    let path = req.uri().path().to_owned();
    if !verifier.allows(&caller, &path) {
        tracing::warn!(caller, path, "internal call outside the call graph refused");
        let refused = ApiError::new(
            ErrorKind::Forbidden,
            "call_not_allowed",
            "this service may not make this call",
        );
        return (Some(caller), refused.into_response());
    }
    let delegation = req.headers().get(ON_BEHALF_OF).map(|v| v.to_str().unwrap_or_default());
    let principal = match delegation.map(|t| (t, verifier.verify_delegation(t))) {
        None => None,
        Some((token, Ok(p))) => Some((p, Delegation::new(token))),
        Some((_, Err(why))) => {
            tracing::warn!(%why, caller, path, "internal call with a bad delegation");
            let refused =
                unauthenticated("invalid_delegation", "the user's delegation is not valid");
            return (Some(caller), refused);
        }
    };
    let incoming = read_context(req.headers());
    if incoming.budget.is_some_and(|b| b.is_zero()) {
        let late = ApiError::new(
            ErrorKind::Timeout,
            "deadline_exceeded",
            "the caller's deadline has passed",
        );
        return (Some(caller), late.into_response());
    }
    // The server side of the call (OpenTelemetry RPC semantic conventions), a child of the
    // caller's client span; the work it causes continues from here.
    let span = tracing::info_span!(
        "internal",
        otel.name = %path,
        otel.kind = "server",
        rpc.system = "microlith",
        path,
        caller = caller.as_str(),
        request_id = incoming.request_id.as_str(),
        trace_id = %incoming.trace.trace_id(),
    );
    if incoming.traced {
        telemetry::set_parent(&span, &incoming.trace);
    }
    let trace = telemetry::traceparent_of(&span).unwrap_or(incoming.trace);
    let ext = req.extensions_mut();
    if let Some(budget) = incoming.budget {
        ext.insert(Deadline(Instant::now() + budget));
    }
    ext.insert(incoming.request_id);
    ext.insert(trace);
    if let Some((p, d)) = principal {
        ext.insert(p);
        ext.insert(d);
    }
    (Some(caller), tracing::Instrument::instrument(next.run(req), span).await)
}

/// Decodes the JSON array of a call's arguments; a body that does not decode is a 400.
#[allow(clippy::result_large_err)]
pub fn decode_args<A: DeserializeOwned>(body: &[u8]) -> Result<A, Response> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::with_status(StatusCode::BAD_REQUEST, "invalid_arguments", e.to_string())
            .into_response()
    })
}

/// The answer to an internal call: the value, or the contract's error with its status.
pub fn reply<T: Serialize, E: ContractError + Serialize>(result: Result<T, E>) -> Response {
    match result {
        Ok(value) => axum::Json(value).into_response(),
        Err(error) => {
            if !error.kind().is_client_error() {
                tracing::warn!(code = error.code(), error = %crate::cause_chain(&error), "internal call failed");
            }
            let status = StatusCode::from_u16(error.kind().status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, axum::Json(WireError { error })).into_response()
        }
    }
}
