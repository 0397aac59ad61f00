//! A circuit breaker per call target, in the shape of resilience4j's: a sliding window of
//! recent outcomes (by count or by time), opened by a failure rate or a slow-call rate once
//! the window holds enough calls; while open every call is refused at once; after the wait
//! a bounded number of probes decides between closing and opening again.
//!
//! Only failures of the target count: `Unavailable`, `Timeout`, `Internal`. A 4xx answer or
//! a business error is the target working, and counts as a success.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::clock::Clock;

/// What the window holds: the last N calls, or the calls of the last period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Window {
    Count(u32),
    Time(Duration),
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BreakerConfig {
    pub window: Window,
    /// Fewer calls than this in the window never open the breaker.
    pub min_calls: u32,
    /// Share of failed calls (0 to 1) that opens it.
    pub failure_rate: f64,
    /// A call that takes this long is slow, whatever its outcome.
    pub slow_call: Duration,
    /// Share of slow calls (0 to 1) that opens it.
    pub slow_rate: f64,
    /// How long it stays open before letting probes through.
    pub open_for: Duration,
    /// Calls let through while half-open; all must succeed to close it.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            window: Window::Count(20),
            min_calls: 10,
            failure_rate: 0.5,
            // Generous: an argon2 login under load is slow and healthy.
            slow_call: Duration::from_secs(5),
            slow_rate: 1.0,
            open_for: Duration::from_secs(5),
            half_open_probes: 3,
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    /// For the Prometheus gauge: 0 closed, 1 open, 2 half-open.
    pub fn as_gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::Open => 1.0,
            BreakerState::HalfOpen => 2.0,
        }
    }
}

/// How a call ended, as the breaker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The target answered (a value, a 4xx or a business error).
    Success,
    /// The target failed: unavailable, timed out, internal error.
    Failure,
}

#[derive(Debug, Clone, Copy)]
struct Recorded {
    at: Instant,
    failed: bool,
    slow: bool,
}

#[derive(Debug)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { issued: u32, succeeded: u32 },
}

struct Inner {
    state: State,
    window: VecDeque<Recorded>,
    /// Bumped on every transition, so an outcome from before it is not applied after it.
    generation: u64,
    rejected: u64,
    opened: u64,
}

pub struct Breaker {
    config: BreakerConfig,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker").field("state", &self.state()).finish_non_exhaustive()
    }
}

/// Leave to make one call. Record its outcome with [`Permit::record`]; a permit dropped
/// unrecorded (the caller gave up) frees its probe slot without counting.
#[derive(Debug)]
pub struct Permit {
    breaker: Arc<Breaker>,
    generation: u64,
    started: Instant,
    probe: bool,
    done: bool,
}

/// What the breaker says now, for `/metrics` and the topology view.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct BreakerSnapshot {
    pub state: BreakerState,
    /// Calls in the window, and how many failed or were slow.
    pub calls: u32,
    pub failures: u32,
    pub slow: u32,
    /// Calls refused without reaching the target, since start.
    pub rejected: u64,
    /// Times it opened, since start.
    pub opened: u64,
}

impl Breaker {
    pub fn new(config: BreakerConfig, clock: Arc<dyn Clock>) -> Arc<Breaker> {
        Arc::new(Breaker {
            config,
            clock,
            inner: Mutex::new(Inner {
                state: State::Closed,
                window: VecDeque::new(),
                generation: 0,
                rejected: 0,
                opened: 0,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A permit to call the target, or `None` when the breaker refuses (open, or half-open
    /// with every probe already out).
    pub fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        let now = self.clock.now();
        let mut inner = self.lock();
        if let State::Open { until } = inner.state
            && now >= until
        {
            inner.state = State::HalfOpen { issued: 0, succeeded: 0 };
            inner.generation += 1;
        }
        let probe = match &mut inner.state {
            State::Closed => false,
            State::Open { .. } => {
                inner.rejected += 1;
                return None;
            }
            State::HalfOpen { issued, .. } => {
                if *issued >= self.config.half_open_probes {
                    inner.rejected += 1;
                    return None;
                }
                *issued += 1;
                true
            }
        };
        Some(Permit {
            breaker: self.clone(),
            generation: inner.generation,
            started: now,
            probe,
            done: false,
        })
    }

    pub fn state(&self) -> BreakerState {
        match self.lock().state {
            State::Closed => BreakerState::Closed,
            // Still "open" until a call finds the wait over: that call becomes a probe.
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    pub fn snapshot(&self) -> BreakerSnapshot {
        let now = self.clock.now();
        let mut inner = self.lock();
        self.evict(&mut inner, now);
        let count = |f: fn(&Recorded) -> bool| {
            u32::try_from(inner.window.iter().filter(|r| f(r)).count()).unwrap_or(u32::MAX)
        };
        BreakerSnapshot {
            state: match inner.state {
                State::Closed => BreakerState::Closed,
                State::Open { .. } => BreakerState::Open,
                State::HalfOpen { .. } => BreakerState::HalfOpen,
            },
            calls: count(|_| true),
            failures: count(|r| r.failed),
            slow: count(|r| r.slow),
            rejected: inner.rejected,
            opened: inner.opened,
        }
    }

    fn evict(&self, inner: &mut Inner, now: Instant) {
        match self.config.window {
            Window::Count(n) => {
                while inner.window.len() > n as usize {
                    inner.window.pop_front();
                }
            }
            Window::Time(span) => {
                while inner.window.front().is_some_and(|r| now.duration_since(r.at) >= span) {
                    inner.window.pop_front();
                }
            }
        }
    }

    fn open(&self, inner: &mut Inner, now: Instant) {
        inner.state = State::Open { until: now + self.config.open_for };
        inner.window.clear();
        inner.generation += 1;
        inner.opened += 1;
    }

    fn record(&self, permit: &Permit, outcome: Outcome) {
        let now = self.clock.now();
        let mut inner = self.lock();
        if permit.generation != inner.generation {
            return;
        }
        let slow = now.duration_since(permit.started) >= self.config.slow_call;
        let failed = outcome == Outcome::Failure;
        match &mut inner.state {
            State::Closed => {
                inner.window.push_back(Recorded { at: now, failed, slow });
                self.evict(&mut inner, now);
                let calls = inner.window.len();
                if calls < self.config.min_calls.max(1) as usize {
                    return;
                }
                let share = |n: usize| n as f64 / calls as f64;
                let failures = inner.window.iter().filter(|r| r.failed).count();
                let slows = inner.window.iter().filter(|r| r.slow).count();
                if share(failures) >= self.config.failure_rate
                    || share(slows) >= self.config.slow_rate
                {
                    tracing::warn!(failures, slow = slows, calls, "circuit breaker opened");
                    self.open(&mut inner, now);
                }
            }
            State::HalfOpen { succeeded, .. } => {
                if failed || slow {
                    tracing::warn!("a probe failed: circuit breaker open again");
                    self.open(&mut inner, now);
                    return;
                }
                *succeeded += 1;
                if *succeeded >= self.config.half_open_probes {
                    tracing::info!("probes succeeded: circuit breaker closed");
                    inner.state = State::Closed;
                    inner.window.clear();
                    inner.generation += 1;
                }
            }
            State::Open { .. } => {}
        }
    }

    fn release(&self, permit: &Permit) {
        let mut inner = self.lock();
        if permit.generation == inner.generation
            && let State::HalfOpen { issued, .. } = &mut inner.state
        {
            *issued = issued.saturating_sub(1);
        }
    }
}

impl Permit {
    pub fn record(mut self, outcome: Outcome) {
        self.done = true;
        self.breaker.record(&self, outcome);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done && self.probe {
            self.breaker.release(self);
        }
    }
}
