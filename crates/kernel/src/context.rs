use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{TraceParent, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "customer" => Some(Role::Customer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Who is calling: established by the gateway from a verified access token, or by the
/// composition root for its own start-up work (seeding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub roles: Vec<Role>,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.roles.contains(&Role::Admin)
    }

    /// The principal of work the system does on its own behalf (seeding the demo catalog).
    /// Its user id is the nil UUID, which no registered user can have.
    pub fn system() -> Principal {
        Principal { user_id: UserId::from_uuid(uuid::Uuid::nil()), roles: vec![Role::Admin] }
    }
}

/// The id that ties together every log line of one request (`x-request-id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The longest client-supplied id accepted.
    pub const MAX_LEN: usize = 64;

    /// Accepts a client-supplied id only if it is a short token of letters, digits and
    /// `-`, `_`, `.`, `:` (a UUID, a ULID, a W3C trace id all are), so it is safe to log, to
    /// echo back in a header and to show in a page; anything else is replaced.
    pub fn parse(s: &str) -> Option<RequestId> {
        let safe = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':');
        let ok =
            !s.is_empty() && s.len() <= Self::MAX_LEN && s.bytes().all(safe) && !s.contains("..");
        ok.then(|| RequestId(s.to_owned()))
    }

    pub fn generate() -> RequestId {
        RequestId(uuid::Uuid::now_v7().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The proof that the end user made this request: a delegation the public edge signed
/// (`rpc::CredentialIssuer::delegation_for`). Opaque here; calls made for the request
/// forward it unchanged, so no service can act for a user who made no request.
#[derive(Clone, PartialEq, Eq)]
pub struct Delegation(std::sync::Arc<str>);

impl Delegation {
    pub fn new(token: &str) -> Delegation {
        Delegation(token.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Delegation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Delegation(***)")
    }
}

/// What travels with every contract call, whatever the transport: the caller, the request
/// id, the trace context and the caller's deadline.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: RequestId,
    pub principal: Option<Principal>,
    /// The signed form of `principal`, when it came over the wire (`None` in the process
    /// that verified the user's access token, and for the system's own work).
    pub delegation: Option<Delegation>,
    pub trace: TraceParent,
    /// When the caller stops waiting; work for a caller that has given up is wasted.
    pub deadline: Option<Instant>,
}

/// Why a caller may not do something; every contract error has variants for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessDenied {
    Unauthenticated,
    Forbidden,
}

impl RequestContext {
    pub fn new(request_id: RequestId, principal: Option<Principal>) -> Self {
        RequestContext {
            request_id,
            principal,
            delegation: None,
            trace: TraceParent::root(),
            deadline: None,
        }
    }

    pub fn anonymous() -> Self {
        Self::new(RequestId::generate(), None)
    }

    pub fn for_user(principal: Principal) -> Self {
        Self::new(RequestId::generate(), Some(principal))
    }

    pub fn with_trace(mut self, trace: TraceParent) -> Self {
        self.trace = trace;
        self
    }

    /// The principal, with the delegation that proves it.
    pub fn with_delegation(mut self, delegation: Option<Delegation>) -> Self {
        self.delegation = delegation;
        self
    }

    pub fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Time left before the caller's deadline (`None`: no deadline; zero: already past).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline.map(|d| d.saturating_duration_since(Instant::now()))
    }

    pub fn system() -> Self {
        Self::for_user(Principal::system())
    }

    pub fn user(&self) -> Result<&Principal, AccessDenied> {
        self.principal.as_ref().ok_or(AccessDenied::Unauthenticated)
    }

    pub fn admin(&self) -> Result<&Principal, AccessDenied> {
        let p = self.user()?;
        if p.is_admin() { Ok(p) } else { Err(AccessDenied::Forbidden) }
    }
}

impl std::fmt::Display for AccessDenied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AccessDenied::Unauthenticated => "authentication is required",
            AccessDenied::Forbidden => "this action needs the admin role",
        })
    }
}

impl std::error::Error for AccessDenied {}

impl crate::ContractError for AccessDenied {
    fn kind(&self) -> crate::ErrorKind {
        match self {
            AccessDenied::Unauthenticated => crate::ErrorKind::Unauthenticated,
            AccessDenied::Forbidden => crate::ErrorKind::Forbidden,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            AccessDenied::Unauthenticated => "unauthenticated",
            AccessDenied::Forbidden => "forbidden",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_must_be_safe_to_echo() {
        assert!(RequestId::parse("abc-123").is_some());
        assert!(RequestId::parse("").is_none());
        assert!(RequestId::parse("has space").is_none());
        assert!(RequestId::parse("line\nbreak").is_none());
        assert!(RequestId::parse(&"x".repeat(65)).is_none());
        assert!(RequestId::parse(&"x".repeat(64)).is_some());
        // Seen in the wild: path and markup in a request id, echoed into logs and headers.
        for bad in ["../../<script>", "<b>", "a/b", "a\\b", "\"quoted\"", "x;y", "%2e%2e", "a..b"] {
            assert!(RequestId::parse(bad).is_none(), "{bad}");
        }
        assert!(RequestId::parse("0190f3c2-aaaa-7bbb-8ccc-1234567890ab").is_some());
    }

    #[test]
    fn access_rules() {
        let anon = RequestContext::anonymous();
        assert_eq!(anon.user().unwrap_err(), AccessDenied::Unauthenticated);
        let customer = RequestContext::for_user(Principal {
            user_id: UserId::new(),
            roles: vec![Role::Customer],
        });
        assert!(customer.user().is_ok());
        assert_eq!(customer.admin().unwrap_err(), AccessDenied::Forbidden);
        assert!(RequestContext::system().admin().is_ok());
    }
}
