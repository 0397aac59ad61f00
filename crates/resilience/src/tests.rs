use std::sync::atomic::AtomicU32;

use super::*;
use kernel::ContractError;

fn config() -> BreakerConfig {
    BreakerConfig {
        window: Window::Count(10),
        min_calls: 5,
        failure_rate: 0.5,
        slow_call: Duration::from_secs(1),
        slow_rate: 0.8,
        open_for: Duration::from_secs(5),
        half_open_probes: 2,
    }
}

fn breaker(config: BreakerConfig) -> (Arc<Breaker>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    (Breaker::new(config, clock.clone()), clock)
}

fn call(b: &Arc<Breaker>, outcome: Outcome) -> bool {
    match b.try_acquire() {
        Some(p) => {
            p.record(outcome);
            true
        }
        None => false,
    }
}

#[test]
fn opens_at_the_failure_rate_once_the_window_has_enough_calls() {
    let (b, _) = breaker(config());
    // 4 failures: below min_calls, still closed.
    for _ in 0..4 {
        assert!(call(&b, Outcome::Failure));
    }
    assert_eq!(b.state(), BreakerState::Closed);
    // The fifth call reaches min_calls with 100% failures: open.
    assert!(call(&b, Outcome::Failure));
    assert_eq!(b.state(), BreakerState::Open);
    // While open, nothing gets through; `try_acquire` is synchronous, so a refusal cannot
    // wait for anything.
    for _ in 0..100 {
        assert!(b.try_acquire().is_none());
    }
    assert_eq!(b.snapshot().rejected, 100);
}

#[test]
fn a_failure_rate_below_the_threshold_keeps_it_closed() {
    let (b, _) = breaker(config());
    // 4 failures in 10 calls, never 50% at any point past min_calls.
    for i in 0..10 {
        call(&b, if i >= 6 { Outcome::Failure } else { Outcome::Success });
    }
    assert_eq!(b.state(), BreakerState::Closed);
    // Old failures leave the count window: 10 successes wash them out.
    for _ in 0..10 {
        call(&b, Outcome::Success);
    }
    assert_eq!(b.snapshot().failures, 0);
}

#[test]
fn after_the_wait_exactly_the_configured_probes_go_through_and_success_closes() {
    let (b, clock) = breaker(config());
    for _ in 0..5 {
        call(&b, Outcome::Failure);
    }
    clock.advance(Duration::from_millis(4999));
    assert!(b.try_acquire().is_none(), "still open before the wait is over");
    clock.advance(Duration::from_millis(1));
    let p1 = b.try_acquire().expect("first probe");
    let p2 = b.try_acquire().expect("second probe");
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert!(b.try_acquire().is_none(), "no third probe while two are out");
    p1.record(Outcome::Success);
    assert!(b.try_acquire().is_none(), "still only two probes in all");
    p2.record(Outcome::Success);
    assert_eq!(b.state(), BreakerState::Closed);
    assert!(call(&b, Outcome::Success));
}

#[test]
fn a_failed_probe_opens_it_again_for_another_wait() {
    let (b, clock) = breaker(config());
    for _ in 0..5 {
        call(&b, Outcome::Failure);
    }
    clock.advance(Duration::from_secs(5));
    let p = b.try_acquire().expect("a probe");
    p.record(Outcome::Failure);
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(b.snapshot().opened, 2);
    clock.advance(Duration::from_millis(4999));
    assert!(b.try_acquire().is_none());
    clock.advance(Duration::from_millis(1));
    assert!(b.try_acquire().is_some());
}

#[test]
fn a_slow_probe_counts_as_failed() {
    let (b, clock) = breaker(config());
    for _ in 0..5 {
        call(&b, Outcome::Failure);
    }
    clock.advance(Duration::from_secs(5));
    let p = b.try_acquire().expect("a probe");
    clock.advance(Duration::from_secs(2));
    p.record(Outcome::Success);
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn a_probe_whose_caller_gave_up_frees_its_slot() {
    let (b, clock) = breaker(config());
    for _ in 0..5 {
        call(&b, Outcome::Failure);
    }
    clock.advance(Duration::from_secs(5));
    let (p1, p2) = (b.try_acquire().unwrap(), b.try_acquire().unwrap());
    drop(p1);
    let p3 = b.try_acquire().expect("the dropped probe's slot is free again");
    p2.record(Outcome::Success);
    p3.record(Outcome::Success);
    assert_eq!(b.state(), BreakerState::Closed);
}

#[test]
fn slow_calls_open_it_at_the_slow_rate() {
    let (b, clock) = breaker(config());
    for _ in 0..5 {
        let p = b.try_acquire().unwrap();
        clock.advance(Duration::from_secs(1));
        p.record(Outcome::Success);
    }
    assert_eq!(b.state(), BreakerState::Open, "5 of 5 slow ≥ 80%");
}

#[test]
fn a_time_window_forgets_old_failures() {
    let (b, clock) =
        breaker(BreakerConfig { window: Window::Time(Duration::from_secs(10)), ..config() });
    for _ in 0..4 {
        call(&b, Outcome::Failure);
    }
    clock.advance(Duration::from_secs(10));
    // The 4 failures are out of the window: 1 failure + 4 successes is 20%.
    call(&b, Outcome::Failure);
    for _ in 0..4 {
        call(&b, Outcome::Success);
    }
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.snapshot().calls, 5);
}

// ---- the edge: what callers see ----

#[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize, PartialEq)]
enum TestError {
    #[error("not found")]
    NotFound,
    #[error("unavailable")]
    Unavailable,
    #[error("timeout")]
    Timeout,
    /// An outage further down, already retried by the hop next to it.
    #[error("{0} is unavailable")]
    UpstreamUnavailable(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl ContractError for TestError {
    fn kind(&self) -> ErrorKind {
        match self {
            TestError::NotFound => ErrorKind::NotFound,
            TestError::Unavailable | TestError::UpstreamUnavailable(_) => ErrorKind::Unavailable,
            TestError::Timeout => ErrorKind::Timeout,
            TestError::Internal(_) => ErrorKind::Internal,
        }
    }
    fn code(&self) -> &'static str {
        "test"
    }
    fn failed_module(&self) -> Option<&str> {
        match self {
            TestError::UpstreamUnavailable(m) => Some(m),
            _ => None,
        }
    }
}

impl TransportError for TestError {
    fn unavailable() -> Self {
        TestError::Unavailable
    }
    fn timeout() -> Self {
        TestError::Timeout
    }
    fn internal(message: String) -> Self {
        TestError::Internal(message)
    }
}

fn edge(policy: Policy) -> (Arc<Edge>, Arc<Target>, FaultBoard) {
    let target = Target::new("stock", policy, Arc::new(SystemClock));
    let faults = FaultBoard::new();
    (Edge::caller("shop", target.clone(), faults.clone()), target, faults)
}

fn quick() -> Policy {
    Policy {
        timeout: Duration::from_millis(200),
        retry: RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
        },
        ..Policy::default()
    }
}

/// A target that fails the first `fail` tries with `error`, then answers 7.
async fn flaky(
    edge: &Edge,
    idempotent: bool,
    fail: u32,
    error: fn() -> TestError,
) -> (Result<u32, TestError>, u32) {
    let tries = AtomicU32::new(0);
    let result = edge
        .call(&RequestContext::system(), "get", idempotent, |_ctx| {
            let n = tries.fetch_add(1, Ordering::SeqCst);
            async move { if n < fail { Err(error()) } else { Ok(7) } }
        })
        .await;
    (result, tries.load(Ordering::SeqCst))
}

#[tokio::test]
async fn idempotent_calls_are_retried_and_others_never() {
    let (edge, target, _) = edge(quick());
    assert_eq!(flaky(&edge, true, 2, || TestError::Unavailable).await, (Ok(7), 3));
    assert_eq!(flaky(&edge, false, 1, || TestError::Unavailable).await.1, 1, "no retry");
    assert_eq!(flaky(&edge, true, 5, || TestError::Unavailable).await.1, 3, "3 tries at most");
    // An answer is final: a 404 or an internal error is not retried.
    assert_eq!(flaky(&edge, true, 1, || TestError::NotFound).await.1, 1);
    assert_eq!(flaky(&edge, true, 1, || TestError::Internal("bug".into())).await.1, 1);
    assert_eq!(target.snapshot().retries, 2 + 2);
}

/// Retries happen at one level only, the hop next to the failure: an outage the target
/// reports of a module further down was retried there already, and retrying it here too
/// would multiply the load on the failing module (Google SRE book, "Addressing Cascading
/// Failures": retry at a single layer).
#[tokio::test]
async fn an_outage_further_down_is_not_retried_again() {
    let (edge, target, _) = edge(quick());
    let upstream = || TestError::UpstreamUnavailable("ink".into());
    assert_eq!(flaky(&edge, true, 1, upstream).await.1, 1);
    let its_own = || TestError::UpstreamUnavailable("stock".into());
    assert_eq!(flaky(&edge, true, 1, its_own).await, (Ok(7), 2), "the target's own outage");
    assert_eq!(target.snapshot().retries, 1);
}

/// An outage further down does not open the target's breaker: the target's calls that do
/// not need the failing module must keep working.
#[tokio::test]
async fn an_outage_further_down_leaves_the_targets_breaker_closed() {
    let (edge, target, _) = edge(quick());
    for _ in 0..50 {
        let _ = flaky(&edge, true, 1, || TestError::UpstreamUnavailable("ink".into())).await;
    }
    assert_eq!(target.snapshot().breaker.state, BreakerState::Closed);
    for _ in 0..50 {
        let _ = flaky(&edge, false, 1, || TestError::Unavailable).await;
    }
    assert_eq!(target.snapshot().breaker.state, BreakerState::Open, "its own outages do open it");
}

#[tokio::test]
async fn a_try_that_hangs_times_out_and_retries_stop_at_the_callers_deadline() {
    let (edge, _, _) = edge(Policy { timeout: Duration::from_millis(100), ..quick() });
    let ctx = RequestContext::system()
        .with_deadline(Some(std::time::Instant::now() + Duration::from_millis(150)));
    let started = std::time::Instant::now();
    let tries = AtomicU32::new(0);
    let result: Result<u32, TestError> = edge
        .call(&ctx, "get", true, |_ctx| {
            tries.fetch_add(1, Ordering::SeqCst);
            std::future::pending()
        })
        .await;
    assert_eq!(result, Err(TestError::Timeout));
    let took = started.elapsed();
    assert!(took < Duration::from_millis(400), "within the caller's deadline: {took:?}");
    assert!(tries.load(Ordering::SeqCst) <= 2, "a third try would pass the deadline");
}

#[tokio::test]
async fn the_try_gets_the_shorter_of_the_timeout_and_the_callers_deadline() {
    let (edge, _, _) = edge(quick());
    let ctx = RequestContext::system()
        .with_deadline(Some(std::time::Instant::now() + Duration::from_millis(50)));
    let seen: Result<Duration, TestError> =
        edge.call(&ctx, "get", false, |ctx| async move { Ok(ctx.remaining().unwrap()) }).await;
    assert!(seen.unwrap() <= Duration::from_millis(50));
    let spent = RequestContext::system().with_deadline(Some(std::time::Instant::now()));
    let tries = AtomicU32::new(0);
    let r: Result<u32, TestError> = edge
        .call(&spent, "get", true, |_| {
            tries.fetch_add(1, Ordering::SeqCst);
            async { Ok(1) }
        })
        .await;
    assert_eq!(r, Err(TestError::Timeout));
    assert_eq!(tries.load(Ordering::SeqCst), 0, "no work for a caller that gave up");
}

#[tokio::test]
async fn a_full_bulkhead_sheds_at_once() {
    let (edge, target, _) = edge(Policy { max_concurrent: 2, ..quick() });
    let release = Arc::new(tokio::sync::Notify::new());
    let mut held = Vec::new();
    for _ in 0..2 {
        let (edge, release) = (edge.clone(), release.clone());
        held.push(tokio::spawn(async move {
            edge.call(&RequestContext::system(), "get", false, |_| {
                let release = release.clone();
                async move {
                    release.notified().await;
                    Ok::<_, TestError>(1)
                }
            })
            .await
        }));
    }
    while target.snapshot().in_flight < 2 {
        tokio::task::yield_now().await;
    }
    // Refused at once: the call completes on its first poll, without waiting for anything.
    let shed = futures::FutureExt::now_or_never(flaky(&edge, true, 0, || TestError::Unavailable));
    assert_eq!(shed, Some((Err(TestError::Unavailable), 0)));
    assert_eq!(target.snapshot().shed, 1);
    release.notify_waiters();
    for h in held {
        assert_eq!(h.await.unwrap(), Ok(1));
    }
}

#[tokio::test]
async fn four_hundreds_never_open_the_breaker_and_failures_do() {
    let (edge, target, _) =
        edge(Policy { retry: RetryPolicy { attempts: 1, ..quick().retry }, ..quick() });
    for _ in 0..100 {
        let _ = flaky(&edge, true, 1, || TestError::NotFound).await;
    }
    assert_eq!(target.breaker().state(), BreakerState::Closed);
    for _ in 0..10 {
        let _ = flaky(&edge, true, 1, || TestError::Unavailable).await;
    }
    assert_eq!(target.breaker().state(), BreakerState::Open);
    // Open: the target is not called at all.
    assert_eq!(
        flaky(&edge, true, 0, || TestError::Unavailable).await,
        (Err(TestError::Unavailable), 0)
    );
}

#[tokio::test]
async fn injected_faults_hit_their_edge_or_module_only() {
    // Many injected errors below: a breaker that never opens keeps them reaching the fault.
    let breaker = BreakerConfig { min_calls: 10_000, ..BreakerConfig::default() };
    let (edge, _, faults) = edge(Policy { breaker, ..quick() });
    let inject = |target: &str, kind: FaultKind, latency_ms: Option<u64>| {
        let req =
            FaultRequest { target: target.into(), kind, rate: None, latency_ms, duration_s: 60 };
        req.validate().unwrap().0
    };
    faults.replace(vec![inject("other->stock", FaultKind::Error, None)]);
    assert_eq!(flaky(&edge, false, 0, || TestError::Unavailable).await.0, Ok(7));
    faults.replace(vec![inject("shop->stock", FaultKind::Error, None)]);
    // A broken connection: the request is lost (0 tries reach the target) or the answer
    // is (1 try did); the caller sees Unavailable either way, and both cases happen.
    let mut reached = std::collections::BTreeSet::new();
    for _ in 0..50 {
        let (r, tries) = flaky(&edge, false, 0, || TestError::Unavailable).await;
        assert_eq!(r, Err(TestError::Unavailable));
        reached.insert(tries);
    }
    assert_eq!(reached, [0, 1].into(), "lost requests and lost answers");
    faults.replace(vec![inject("shop->stock", FaultKind::Hang, None)]);
    let started = std::time::Instant::now();
    assert_eq!(flaky(&edge, false, 0, || TestError::Unavailable).await.0, Err(TestError::Timeout));
    // The policy's timeout, not the 60 s fault, ends it (a generous bound: machines are slow).
    assert!(started.elapsed() < Duration::from_secs(5), "the timeout bounds a hang");

    let callee = Edge::callee("stock", faults.clone());
    faults.replace(vec![inject("stock", FaultKind::Latency, Some(30))]);
    let started = std::time::Instant::now();
    assert_eq!(flaky(&callee, false, 0, || TestError::Unavailable).await.0, Ok(7));
    assert!(started.elapsed() >= Duration::from_millis(30));
    faults.replace(Vec::new());
    assert_eq!(flaky(&callee, false, 0, || TestError::Unavailable).await.0, Ok(7));
    assert!(faults.injected() >= 3);
}

#[test]
fn fault_requests_are_checked() {
    let req = |target: &str, kind, rate, latency_ms, duration_s| {
        FaultRequest { target: target.into(), kind, rate, latency_ms, duration_s }.validate()
    };
    assert!(req("payments", FaultKind::Hang, None, None, 30).is_ok());
    assert!(req("orders->cart", FaultKind::Error, Some(0.5), None, 30).is_ok());
    assert!(req("Payments", FaultKind::Hang, None, None, 30).is_err());
    assert!(req("a->b->c", FaultKind::Hang, None, None, 30).is_err());
    assert!(req("payments", FaultKind::Hang, None, None, 0).is_err());
    assert!(req("payments", FaultKind::Hang, None, None, 3601).is_err());
    assert!(req("payments", FaultKind::Error, Some(0.0), None, 30).is_err());
    assert!(req("payments", FaultKind::Error, Some(f64::NAN), None, 30).is_err());
    assert!(req("payments", FaultKind::Latency, None, None, 30).is_err());
    assert!(req("payments", FaultKind::Error, None, Some(10), 30).is_err());
    assert!(req("orders->cart", FaultKind::Crash, None, None, 30).is_err());
}

/// Every kind of fault ends when it expires, whether or not anyone clears it; a call hung
/// by one is released then.
#[tokio::test]
async fn faults_of_every_kind_expire() {
    let faults = FaultBoard::new();
    let now = time::OffsetDateTime::now_utc();
    let fault = |kind: FaultKind, expires_in_ms: i64| Fault {
        id: uuid::Uuid::now_v7(),
        target: "stock".into(),
        kind,
        rate: 1.0,
        latency_ms: (kind == FaultKind::Latency).then_some(10),
        created_at: now - Duration::from_secs(60),
        expires_at: now + time::Duration::milliseconds(expires_in_ms),
    };
    for kind in [FaultKind::Error, FaultKind::Latency, FaultKind::Hang, FaultKind::Crash] {
        faults.replace(vec![fault(kind, -1)]);
        assert_eq!(faults.for_module("stock"), None, "{kind:?} expired");
        assert!(faults.active().is_empty());
        faults.replace(vec![fault(kind, 60_000)]);
        assert!(faults.for_module("stock").is_some(), "{kind:?} in force");
    }
    // A hang that expires while a call waits on it lets the call go, long before `until`.
    let hang = fault(FaultKind::Hang, 200);
    faults.replace(vec![hang.clone()]);
    let Some(Action::Hang(id, _)) = faults.for_module("stock") else { panic!("a hang") };
    let until = std::time::Instant::now() + Duration::from_secs(30);
    assert!(faults.hang(id, until).await, "released when the fault expired");
    assert!(!faults.in_force(hang.id));
}
