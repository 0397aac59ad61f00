//! Fault injection: what an operator asked to go wrong, and where. A fault targets a
//! module (every call into it, from anywhere, and its event handlers) or one edge
//! (`caller->module`: only that caller's calls, as if the network between them failed).
//! Every fault expires; the board holds the ones not yet expired.
//!
//! An `error` on an edge is a broken connection: at random, the request is lost before the
//! target sees it, or the answer after the target acted. So retries meet both cases.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The call fails as if the target were unavailable (503); on an edge, as a broken
    /// connection (the request or the answer lost).
    Error,
    /// The call is delayed by `latency_ms`, then runs.
    Latency,
    /// The call does not answer until the fault expires or the caller gives up.
    Hang,
    /// The process hosting the module aborts (its supervisor, if any, restarts it).
    Crash,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Error => "error",
            FaultKind::Latency => "latency",
            FaultKind::Hang => "hang",
            FaultKind::Crash => "crash",
        }
    }
}

/// Where a fault applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultTarget {
    Module(String),
    Edge { caller: String, module: String },
}

impl FaultTarget {
    /// `module` or `caller->module`; the names are checked by whoever knows them.
    pub fn parse(s: &str) -> Result<FaultTarget, String> {
        let name_ok = |n: &str| {
            (1..=40).contains(&n.len())
                && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        match s.split_once("->") {
            Some((caller, module)) if name_ok(caller) && name_ok(module) => {
                Ok(FaultTarget::Edge { caller: caller.into(), module: module.into() })
            }
            None if name_ok(s) => Ok(FaultTarget::Module(s.into())),
            _ => Err("target must be a module (`payments`) or an edge (`orders->cart`)".into()),
        }
    }

    pub fn module(&self) -> &str {
        match self {
            FaultTarget::Module(m) | FaultTarget::Edge { module: m, .. } => m,
        }
    }
}

impl std::fmt::Display for FaultTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaultTarget::Module(m) => f.write_str(m),
            FaultTarget::Edge { caller, module } => write!(f, "{caller}->{module}"),
        }
    }
}

/// A request to inject a fault (`POST /api/v1/system/faults`).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    /// A module (`payments`) or an edge (`orders->cart`, `gateway->catalog`).
    pub target: String,
    pub kind: FaultKind,
    /// Share of calls affected, above 0 and at most 1 (default 1).
    pub rate: Option<f64>,
    /// For `latency`: the delay added to each affected call, 1 to 60000 ms.
    pub latency_ms: Option<u64>,
    /// How long the fault lasts, 1 to 3600 s.
    pub duration_s: u64,
}

/// An injected fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Fault {
    pub id: uuid::Uuid,
    pub target: String,
    pub kind: FaultKind,
    pub rate: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

impl FaultRequest {
    /// The fault this asks for, if it is well formed; `target` is parsed, not checked
    /// against the modules (the caller does that).
    pub fn validate(&self) -> Result<(Fault, FaultTarget), String> {
        let target = FaultTarget::parse(&self.target)?;
        if !(1..=3600).contains(&self.duration_s) {
            return Err("duration_s must be 1 to 3600".into());
        }
        let rate = self.rate.unwrap_or(1.0);
        if !(rate > 0.0 && rate <= 1.0) {
            return Err("rate must be above 0 and at most 1".into());
        }
        match (self.kind, self.latency_ms) {
            (FaultKind::Latency, Some(ms)) if (1..=60_000).contains(&ms) => {}
            (FaultKind::Latency, _) => return Err("latency needs latency_ms, 1 to 60000".into()),
            (_, Some(_)) => return Err("latency_ms is only for kind latency".into()),
            (_, None) => {}
        }
        if self.kind == FaultKind::Crash && matches!(target, FaultTarget::Edge { .. }) {
            return Err("a crash targets a module (its process), not an edge".into());
        }
        let now = OffsetDateTime::now_utc();
        let fault = Fault {
            id: uuid::Uuid::now_v7(),
            target: target.to_string(),
            kind: self.kind,
            rate,
            latency_ms: self.latency_ms,
            created_at: now,
            expires_at: now + Duration::from_secs(self.duration_s),
        };
        Ok((fault, target))
    }
}

impl Fault {
    fn live(&self, now: OffsetDateTime) -> bool {
        self.expires_at > now
    }

    /// When it expires, on the monotonic clock.
    fn until(&self, now: OffsetDateTime) -> Instant {
        let left = (self.expires_at - now).try_into().unwrap_or(Duration::ZERO);
        Instant::now() + left
    }
}

/// What a call must suffer now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Error,
    Delay(Duration),
    /// No answer while this fault is in force (until it expires or is cleared).
    Hang(uuid::Uuid, Instant),
    Crash,
}

/// The faults in force, shared by every edge of a process. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct FaultBoard {
    inner: Arc<Board>,
}

#[derive(Debug, Default)]
struct Board {
    faults: RwLock<Vec<Fault>>,
    injected: AtomicU64,
}

impl FaultBoard {
    pub fn new() -> FaultBoard {
        FaultBoard::default()
    }

    /// Replaces the whole set (e.g. from the shared file every process watches).
    pub fn replace(&self, faults: Vec<Fault>) {
        *self.inner.faults.write().unwrap_or_else(|p| p.into_inner()) = faults;
    }

    /// The faults not yet expired.
    pub fn active(&self) -> Vec<Fault> {
        let now = OffsetDateTime::now_utc();
        let faults = self.inner.faults.read().unwrap_or_else(|p| p.into_inner());
        faults.iter().filter(|f| f.live(now)).cloned().collect()
    }

    /// Calls that suffered a fault in this process, since start.
    pub fn injected(&self) -> u64 {
        self.inner.injected.load(Ordering::Relaxed)
    }

    /// Whether fault `id` is still in force.
    pub fn in_force(&self, id: uuid::Uuid) -> bool {
        let now = OffsetDateTime::now_utc();
        let faults = self.inner.faults.read().unwrap_or_else(|p| p.into_inner());
        faults.iter().any(|f| f.id == id && f.live(now))
    }

    /// Waits while hang `id` is in force, at most until `until`; true if it ended (expired
    /// or cleared) before `until`.
    pub async fn hang(&self, id: uuid::Uuid, until: Instant) -> bool {
        loop {
            if !self.in_force(id) {
                return true;
            }
            let now = Instant::now();
            if now >= until {
                return false;
            }
            tokio::time::sleep((until - now).min(Duration::from_millis(50))).await;
        }
    }

    /// The fault a call into `module` suffers now, if any.
    pub fn for_module(&self, module: &str) -> Option<Action> {
        self.pick(|t| matches!(t, FaultTarget::Module(m) if m == module))
    }

    /// The fault a call from `caller` to `module` suffers on the way, if any.
    pub fn for_edge(&self, caller: &str, module: &str) -> Option<Action> {
        self.pick(
            |t| matches!(t, FaultTarget::Edge { caller: c, module: m } if c == caller && m == module),
        )
    }

    fn pick(&self, matches: impl Fn(&FaultTarget) -> bool) -> Option<Action> {
        let faults = self.inner.faults.read().unwrap_or_else(|p| p.into_inner());
        if faults.is_empty() {
            return None;
        }
        let now = OffsetDateTime::now_utc();
        let fault = faults.iter().find(|f| {
            f.live(now)
                && FaultTarget::parse(&f.target).is_ok_and(|t| matches(&t))
                && (f.rate >= 1.0 || rand::random::<f64>() < f.rate)
        })?;
        self.inner.injected.fetch_add(1, Ordering::Relaxed);
        // An event of the current span: the trace shows where the fault struck.
        tracing::info!(fault.target = %fault.target, fault.kind = fault.kind.as_str(), "fault injected");
        metrics::counter!(
            crate::meters::FAULTS_INJECTED,
            "target" => fault.target.clone(),
            "kind" => fault.kind.as_str(),
        )
        .increment(1);
        Some(match fault.kind {
            FaultKind::Error => Action::Error,
            FaultKind::Latency => {
                Action::Delay(Duration::from_millis(fault.latency_ms.unwrap_or(0)))
            }
            FaultKind::Hang => Action::Hang(fault.id, fault.until(now)),
            FaultKind::Crash => Action::Crash,
        })
    }
}
