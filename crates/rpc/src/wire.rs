//! The headers that carry a [`RequestContext`] on an internal call, and their parsing.
//! One place, so the sending and the receiving side cannot drift apart.

use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use kernel::{Principal, RequestContext, RequestId, Role, TraceParent, UserId};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The caller's remaining time budget in milliseconds (a duration rather than a clock time,
/// so clock skew between machines does not matter), like gRPC's `grpc-timeout`.
pub const TIMEOUT_MS: HeaderName = HeaderName::from_static("x-microlith-timeout-ms");
/// The user the call is made for: `<user id>;<role>,<role>`. Believed only on a request
/// that carries a valid service credential.
pub const CALLER: HeaderName = HeaderName::from_static("x-microlith-caller");

/// The instant after which the caller no longer waits (a request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(pub Instant);

pub fn encode_principal(p: &Principal) -> String {
    let roles: Vec<&str> = p.roles.iter().map(|r| r.as_str()).collect();
    format!("{};{}", p.user_id, roles.join(","))
}

pub fn decode_principal(s: &str) -> Option<Principal> {
    let (id, roles) = s.split_once(';')?;
    let user_id = UserId::parse(id)?;
    let roles = if roles.is_empty() {
        Vec::new()
    } else {
        roles.split(',').map(Role::parse).collect::<Option<Vec<Role>>>()?
    };
    Some(Principal { user_id, roles })
}

/// Writes `ctx` into the headers of an outgoing call that may take at most `budget`.
pub fn write_context(headers: &mut HeaderMap, ctx: &RequestContext, budget: Duration) {
    if let Ok(v) = HeaderValue::from_str(ctx.request_id.as_str()) {
        headers.insert(REQUEST_ID, v);
    }
    if let Ok(v) = HeaderValue::from_str(&ctx.trace.child().to_string()) {
        headers.insert(TRACEPARENT, v);
    }
    headers.insert(TIMEOUT_MS, HeaderValue::from(budget.as_millis() as u64));
    if let Some(p) = &ctx.principal
        && let Ok(v) = HeaderValue::from_str(&encode_principal(p))
    {
        headers.insert(CALLER, v);
    }
}

/// What the context headers of an incoming call say. A malformed caller header is an
/// error (a peer service sent garbage); the other headers fall back to fresh values.
pub struct Incoming {
    pub request_id: RequestId,
    pub trace: TraceParent,
    pub principal: Option<Principal>,
    /// The remaining budget; `Some(ZERO)` when the caller already gave up.
    pub budget: Option<Duration>,
}

pub fn read_context(headers: &HeaderMap) -> Result<Incoming, &'static str> {
    let text = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let principal = match headers.get(CALLER) {
        None => None,
        Some(v) => Some(
            v.to_str().ok().and_then(decode_principal).ok_or("the caller header is malformed")?,
        ),
    };
    Ok(Incoming {
        request_id: text(&REQUEST_ID)
            .and_then(RequestId::parse)
            .unwrap_or_else(RequestId::generate),
        trace: text(&TRACEPARENT).and_then(TraceParent::parse).unwrap_or_else(TraceParent::root),
        principal,
        budget: text(&TIMEOUT_MS).and_then(|s| s.parse::<u64>().ok()).map(Duration::from_millis),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_survives_the_headers() {
        let p = Principal { user_id: UserId::new(), roles: vec![Role::Customer, Role::Admin] };
        let ctx = RequestContext::for_user(p.clone());
        let mut h = HeaderMap::new();
        write_context(&mut h, &ctx, Duration::from_millis(1500));
        let got = read_context(&h).unwrap();
        assert_eq!(got.principal, Some(p));
        assert_eq!(got.request_id, ctx.request_id);
        assert_eq!(got.trace.trace_id(), ctx.trace.trace_id());
        assert_ne!(got.trace, ctx.trace, "a child span");
        assert_eq!(got.budget, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn garbage_callers_are_refused() {
        for bad in ["", "not-a-uuid;admin", "0190f3c2-aaaa-7bbb-8ccc-1234567890ab;root"] {
            assert!(decode_principal(bad).is_none(), "{bad}");
        }
        let no_roles = decode_principal("0190f3c2-aaaa-7bbb-8ccc-1234567890ab;").unwrap();
        assert!(no_roles.roles.is_empty());
    }
}
