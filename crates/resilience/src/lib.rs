//! Containment at every edge between modules, whatever the placement: a call from one
//! module (or the gateway) to another goes through an [`Edge`], which applies the target's
//! [`Policy`] (timeout, retries for idempotent calls within the caller's deadline, a
//! circuit breaker, a concurrency limit that sheds load) and any injected fault. The
//! module's own side gets a callee edge that applies faults aimed at the module itself.
//!
//! The breaker is ours (`breaker.rs`), not tower-resilience's: calls here are contract
//! methods, local or remote, not tower services; what counts as a failure is decided by
//! the contract's `ErrorKind`; and tests drive it with a manual [`Clock`].

mod breaker;
mod clock;
mod faults;
mod meters;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kernel::{ErrorKind, RequestContext};
use tokio::sync::Semaphore;

pub use breaker::{Breaker, BreakerConfig, BreakerSnapshot, BreakerState, Outcome, Permit, Window};
pub use clock::{Clock, ManualClock, SystemClock};
pub use faults::{Action, Fault, FaultBoard, FaultKind, FaultRequest, FaultTarget};
use kernel::TransportError;
pub use meters::{BREAKER_STATE, describe_metrics};

/// Retries of idempotent calls: exponential backoff with full jitter.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RetryPolicy {
    /// Tries in all, the first included; 1 means no retry.
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(25),
            max_backoff: Duration::from_millis(400),
        }
    }
}

impl RetryPolicy {
    /// The wait before try `n + 1` (n ≥ 1): uniform in 0..=min(max, base·2ⁿ⁻¹).
    fn delay(&self, n: u32) -> Duration {
        let cap = self.backoff.saturating_mul(1 << (n - 1).min(16)).min(self.max_backoff);
        cap.mul_f64(rand::random::<f64>())
    }
}

/// How calls to one target are made.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Policy {
    /// The longest a call may take, retries included (less if the caller's deadline is
    /// nearer).
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub breaker: BreakerConfig,
    /// Calls in flight at once; one more is refused at once (shed).
    pub max_concurrent: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            breaker: BreakerConfig::default(),
            max_concurrent: 64,
        }
    }
}

/// The state shared by every edge of a process towards one target: its breaker, its
/// concurrency limit and its counters.
#[derive(Debug)]
pub struct Target {
    name: &'static str,
    policy: Policy,
    breaker: Arc<Breaker>,
    slots: Arc<Semaphore>,
    counters: Counters,
}

#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    failures: AtomicU64,
    retries: AtomicU64,
    shed: AtomicU64,
    rejected: AtomicU64,
}

/// What one target's edge has seen, for the topology view.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct TargetSnapshot {
    pub target: String,
    pub breaker: BreakerSnapshot,
    /// Calls in flight now, and the limit.
    pub in_flight: u32,
    pub max_concurrent: u32,
    /// Since start: calls made, failed (after retries), retried, shed by the concurrency
    /// limit, refused by the open breaker.
    pub calls: u64,
    pub failures: u64,
    pub retries: u64,
    pub shed: u64,
    pub rejected: u64,
}

impl Target {
    pub fn new(name: &'static str, policy: Policy, clock: Arc<dyn Clock>) -> Arc<Target> {
        let max = policy.max_concurrent.max(1);
        Arc::new(Target {
            name,
            breaker: Breaker::new(policy.breaker.clone(), clock),
            slots: Arc::new(Semaphore::new(max as usize)),
            policy,
            counters: Counters::default(),
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn breaker(&self) -> &Arc<Breaker> {
        &self.breaker
    }

    pub fn snapshot(&self) -> TargetSnapshot {
        let c = &self.counters;
        let max = self.policy.max_concurrent.max(1);
        let free = u32::try_from(self.slots.available_permits()).unwrap_or(max);
        TargetSnapshot {
            target: self.name.into(),
            breaker: self.breaker.snapshot(),
            in_flight: max.saturating_sub(free),
            max_concurrent: max,
            calls: c.calls.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            shed: c.shed.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
        }
    }
}

/// Which side of a call an edge stands on.
#[derive(Debug, Clone)]
enum Side {
    /// The caller's: policy and edge faults.
    Caller { caller: Arc<str>, target: Arc<Target> },
    /// The module's own: faults aimed at the module.
    Callee { module: &'static str },
}

/// One edge of the call graph; `contract!`'s `Layered` client calls through it.
#[derive(Debug, Clone)]
pub struct Edge {
    side: Side,
    faults: FaultBoard,
}

/// Whether a target failed, as the breaker counts it: 4xx and business errors are answers.
fn failed(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Internal)
}

impl Edge {
    /// `caller`'s calls to `target`.
    pub fn caller(caller: &str, target: Arc<Target>, faults: FaultBoard) -> Arc<Edge> {
        Arc::new(Edge { side: Side::Caller { caller: caller.into(), target }, faults })
    }

    /// Every call into `module`, from anywhere.
    pub fn callee(module: &'static str, faults: FaultBoard) -> Arc<Edge> {
        Arc::new(Edge { side: Side::Callee { module }, faults })
    }

    /// Runs `method` through this edge; `attempt` makes one try with the context it is
    /// given (its deadline is the try's). `idempotent` calls may be tried again.
    pub async fn call<T, E, F, Fut>(
        &self,
        ctx: &RequestContext,
        method: &'static str,
        idempotent: bool,
        attempt: F,
    ) -> Result<T, E>
    where
        E: TransportError,
        F: FnMut(RequestContext) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        match &self.side {
            Side::Callee { module } => self.as_callee(module, ctx, attempt).await,
            Side::Caller { caller, target } => {
                self.as_caller(caller, target, ctx, method, idempotent, attempt).await
            }
        }
    }

    async fn as_callee<T, E, F, Fut>(
        &self,
        module: &str,
        ctx: &RequestContext,
        mut attempt: F,
    ) -> Result<T, E>
    where
        E: TransportError,
        F: FnMut(RequestContext) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(action) = self.faults.for_module(module) {
            suffer::<E>(&self.faults, action, module, ctx.deadline).await?;
        }
        attempt(ctx.clone()).await
    }

    async fn as_caller<T, E, F, Fut>(
        &self,
        caller: &str,
        target: &Target,
        ctx: &RequestContext,
        method: &'static str,
        idempotent: bool,
        mut attempt: F,
    ) -> Result<T, E>
    where
        E: TransportError,
        F: FnMut(RequestContext) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let policy = &target.policy;
        let c = &target.counters;
        // No work for a caller that has already given up.
        if ctx.remaining().is_some_and(|left| left.is_zero()) {
            return Err(E::timeout());
        }
        let Ok(_slot) = target.slots.clone().try_acquire_owned() else {
            c.shed.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(meters::SHED, "caller" => caller.to_owned(), "target" => target.name)
                .increment(1);
            tracing::warn!(target = target.name, method, "call shed: too many in flight");
            return Err(E::unavailable());
        };
        c.calls.fetch_add(1, Ordering::Relaxed);
        // The policy's timeout bounds the whole call, retries included, so a hang costs
        // one timeout, not one per try; the caller's own deadline may be nearer.
        let own = Instant::now() + policy.timeout;
        let deadline = ctx.deadline.map_or(own, |d| d.min(own));
        let mut tries = 0;
        loop {
            tries += 1;
            let Some(permit) = target.breaker.try_acquire() else {
                c.rejected.fetch_add(1, Ordering::Relaxed);
                c.failures.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(meters::BREAKER_REJECTED, "caller" => caller.to_owned(), "target" => target.name).increment(1);
                // Info, not debug: an event of the caller's span, so the trace shows it.
                tracing::info!(target = target.name, method, "call rejected: circuit breaker open");
                self.gauge(target);
                return Err(E::unavailable());
            };
            let try_ctx = ctx.clone().with_deadline(Some(deadline));
            let started = Instant::now();
            let result = match self.faults.for_edge(caller, target.name) {
                // A broken connection: the request may have been lost, or its answer.
                Some(Action::Error) if rand::random::<bool>() => {
                    let _lost = bounded(deadline, attempt(try_ctx)).await;
                    Err(E::unavailable())
                }
                Some(action) => {
                    match suffer::<E>(&self.faults, action, target.name, Some(deadline)).await {
                        Ok(()) => bounded(deadline, attempt(try_ctx)).await,
                        Err(e) => Err(e),
                    }
                }
                None => bounded(deadline, attempt(try_ctx)).await,
            };
            let kind = result.as_ref().err().map(kernel::ContractError::kind);
            record_try(caller, target.name, method, started.elapsed(), kind.filter(|k| failed(*k)));
            // An outage of a module further down is not the target's: it was retried by the
            // hop next to it, and it neither counts against the target's breaker (which
            // would fail the target's calls that never touch that module) nor is retried
            // here, where it would multiply the load on the failing module.
            let upstream = result
                .as_ref()
                .err()
                .and_then(kernel::ContractError::failed_module)
                .is_some_and(|m| m != target.name);
            let outcome = if kind.is_some_and(failed) && !upstream {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            permit.record(outcome);
            self.gauge(target);
            let outcome_label = match kind {
                None => "ok",
                Some(k) if !failed(k) => "answered",
                Some(ErrorKind::Timeout) => "timeout",
                Some(_) => "failed",
            };
            metrics::counter!(meters::CALLS, "caller" => caller.to_owned(), "target" => target.name, "outcome" => outcome_label).increment(1);
            let transient = matches!(kind, Some(ErrorKind::Unavailable | ErrorKind::Timeout));
            if transient && !upstream && idempotent && tries < policy.retry.attempts {
                let wait = policy.retry.delay(tries);
                // Never beyond the deadline: a retry needs time to be worth it.
                let left = deadline.saturating_duration_since(Instant::now());
                if left > wait + policy.timeout / 10 {
                    c.retries.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!(meters::RETRIES, "caller" => caller.to_owned(), "target" => target.name).increment(1);
                    tracing::info!(target = target.name, method, tries, ?wait, "retrying");
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            if outcome == Outcome::Failure {
                c.failures.fetch_add(1, Ordering::Relaxed);
            }
            return result;
        }
    }

    fn gauge(&self, target: &Target) {
        metrics::gauge!(meters::BREAKER_STATE, "target" => target.name)
            .set(target.breaker.state().as_gauge());
    }
}

/// One try of a call in OpenTelemetry's `rpc.client.call.duration`, with `error.type` (the
/// HTTP status of the failure: 500, 503 or 504) when it failed.
fn record_try(
    caller: &str,
    target: &'static str,
    method: &'static str,
    took: Duration,
    failure: Option<ErrorKind>,
) {
    let seconds = took.as_secs_f64();
    let (caller, service) = (caller.to_owned(), target);
    match failure {
        None => metrics::histogram!(meters::CALL_DURATION, "caller" => caller, "rpc.service" => service, "rpc.method" => method).record(seconds),
        Some(kind) => metrics::histogram!(meters::CALL_DURATION, "caller" => caller, "rpc.service" => service, "rpc.method" => method, "error.type" => kind.status().to_string()).record(seconds),
    }
}

/// `fut`, or `Timeout` at `deadline`.
async fn bounded<T, E: TransportError>(
    deadline: Instant,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    tokio::time::timeout_at(deadline.into(), fut).await.unwrap_or_else(|_| Err(E::timeout()))
}

/// Applies an injected fault before a call; `Ok` when the call should then go on. A hang
/// or a delay that outlasts the caller's `deadline` is a timeout at the deadline.
async fn suffer<E: TransportError>(
    faults: &FaultBoard,
    action: Action,
    target: &str,
    deadline: Option<Instant>,
) -> Result<(), E> {
    match action {
        Action::Error => Err(E::unavailable()),
        Action::Delay(d) => {
            let until = Instant::now() + d;
            match deadline {
                Some(end) if end <= until => {
                    tokio::time::sleep_until(end.into()).await;
                    Err(E::timeout())
                }
                _ => {
                    tokio::time::sleep_until(until.into()).await;
                    Ok(())
                }
            }
        }
        Action::Hang(id, expires) => {
            let until = deadline.map_or(expires, |d| d.min(expires));
            if faults.hang(id, until).await { Ok(()) } else { Err(E::timeout()) }
        }
        Action::Crash => {
            tracing::error!(target, "injected fault: crashing this process");
            std::process::abort()
        }
    }
}

#[cfg(test)]
mod tests;
