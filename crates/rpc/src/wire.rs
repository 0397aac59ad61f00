//! The headers that carry a [`RequestContext`] on an internal call, and their parsing.
//! One place, so the sending and the receiving side cannot drift apart.

use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use kernel::{RequestContext, RequestId, TraceParent};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The caller's remaining time budget in milliseconds (a duration rather than a clock time,
/// so clock skew between machines does not matter), like gRPC's `grpc-timeout`.
pub const TIMEOUT_MS: HeaderName = HeaderName::from_static("x-microlith-timeout-ms");
/// The end user the call is made for: a delegation the public edge signed
/// ([`crate::CredentialIssuer::delegation_for`]), checked by the callee's guard.
pub const ON_BEHALF_OF: HeaderName = HeaderName::from_static("x-microlith-on-behalf-of");

/// A fresh random value per call ([`crate::answer_nonce`]) that the callee's
/// answer signature must cover, so an old answer cannot be replayed to a new call.
pub const ANSWER_NONCE: HeaderName = HeaderName::from_static("x-microlith-nonce");
/// The callee's signature over its answer ([`crate::CredentialIssuer::sign_answer`]).
pub const ANSWER_SIGNATURE: HeaderName = HeaderName::from_static("x-microlith-answer-signature");

/// The answer signature among `headers`, if any.
pub fn answer_signature(headers: &HeaderMap) -> Option<&str> {
    headers.get(ANSWER_SIGNATURE).and_then(|v| v.to_str().ok())
}

/// The instant after which the caller no longer waits (a request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(pub Instant);

/// Writes `ctx` into the headers of an outgoing call that may take at most `budget`. The
/// user goes separately, as a delegation ([`ON_BEHALF_OF`]).
pub fn write_context(headers: &mut HeaderMap, ctx: &RequestContext, budget: Duration) {
    if let Ok(v) = HeaderValue::from_str(ctx.request_id.as_str()) {
        headers.insert(REQUEST_ID, v);
    }
    // The current span (the caller's client span) is the callee's parent; without a
    // recording layer, a child of the context's.
    let trace = telemetry::current().unwrap_or_else(|| ctx.trace.child());
    if let Ok(v) = HeaderValue::from_str(&trace.to_string()) {
        headers.insert(TRACEPARENT, v);
    }
    headers.insert(TIMEOUT_MS, HeaderValue::from(budget.as_millis() as u64));
}

/// What the context headers of an incoming call say; a missing or malformed header falls
/// back to a fresh value.
pub struct Incoming {
    pub request_id: RequestId,
    pub trace: TraceParent,
    /// Whether `trace` came from the caller (else it is a new root).
    pub traced: bool,
    /// The remaining budget; `Some(ZERO)` when the caller already gave up.
    pub budget: Option<Duration>,
}

pub fn read_context(headers: &HeaderMap) -> Incoming {
    let text = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let trace = text(&TRACEPARENT).and_then(TraceParent::parse);
    Incoming {
        traced: trace.is_some(),
        request_id: text(&REQUEST_ID)
            .and_then(RequestId::parse)
            .unwrap_or_else(RequestId::generate),
        trace: trace.unwrap_or_else(TraceParent::root),
        budget: text(&TIMEOUT_MS).and_then(|s| s.parse::<u64>().ok()).map(Duration::from_millis),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::{Principal, Role, UserId};

    #[test]
    fn the_context_survives_the_headers() {
        let p = Principal { user_id: UserId::new(), roles: vec![Role::Customer, Role::Admin] };
        let ctx = RequestContext::for_user(p);
        let mut h = HeaderMap::new();
        write_context(&mut h, &ctx, Duration::from_millis(1500));
        assert!(h.get(ON_BEHALF_OF).is_none(), "the user travels only as a delegation");
        let got = read_context(&h);
        assert_eq!(got.request_id, ctx.request_id);
        assert_eq!(got.trace.trace_id(), ctx.trace.trace_id());
        assert_ne!(got.trace, ctx.trace, "a child span");
        assert_eq!(got.budget, Some(Duration::from_millis(1500)));
    }
}
