//! One function's instances: start on demand, hand out invocations one at a time per
//! instance, scale out to the cap, queue, throttle, reap the idle, replace the dead.

use std::collections::{HashMap, VecDeque};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::process::Command;
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::meter::{FunctionStats, Now, Report, Totals, peak_memory_mb};
use crate::{FunctionConfig, Launch, Prices};

/// Why an invocation did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    #[error("no such function")]
    NotFound,
    /// Every instance busy and the queue full: try again later (HTTP 429).
    #[error("the function's concurrency and queue are full")]
    Throttled,
    /// The function ran out of time; its instance was stopped.
    #[error("the function did not answer in time")]
    Timeout,
    /// The instance died (or failed to start) while it had the invocation.
    #[error("the function's instance stopped: {0}")]
    Crashed(String),
    /// The host itself could not be reached (from another process).
    #[error("the function host is unreachable: {0}")]
    Unreachable(String),
}

/// A finished invocation: the function's answer or its error, and the bill.
#[derive(Debug, Clone)]
pub struct Invoked {
    pub body: Bytes,
    /// `Some(errorType)` when the function reported an error; `body` is then its JSON.
    pub function_error: Option<String>,
    pub report: Report,
}

/// What the instance said about one invocation.
enum Outcome {
    Answer(Invoked),
    Crashed(String),
}

struct Job {
    id: String,
    payload: Bytes,
    deadline: Instant,
    trace: Option<String>,
    reply: oneshot::Sender<Outcome>,
}

/// What an instance is doing.
enum Phase {
    /// Spawned, not yet asking for work: the init phase.
    Starting,
    Idle {
        since: Instant,
    },
    Busy {
        job: String,
        started: Instant,
        reply: oneshot::Sender<Outcome>,
    },
}

struct Slot {
    pid: Option<u32>,
    spawned: Instant,
    /// Spawn to first request for work; taken by the first invocation's report.
    init: Option<Duration>,
    served: u64,
    phase: Phase,
    stop: CancellationToken,
    /// What the instance reported at `/init/error`; the host then stops it.
    init_error: Option<String>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    slots: HashMap<u64, Slot>,
    totals: Totals,
}

/// How long an instance's connection to its Runtime API may stay idle: Lambda's longest
/// function timeout (15 minutes) and a margin.
const RUNTIME_API_IDLE: Duration = Duration::from_secs(16 * 60);

pub(crate) struct Pool {
    config: FunctionConfig,
    launch: Launch,
    prices: Prices,
    state: Mutex<State>,
    /// Woken when work is queued; instances waiting in `next` listen.
    work: Notify,
    ids: AtomicU64,
    stop: CancellationToken,
    tasks: TaskTracker,
}

/// The job an instance's `next` hands it.
pub(crate) struct Handed {
    pub(crate) id: String,
    pub(crate) payload: Bytes,
    pub(crate) deadline: Instant,
    pub(crate) trace: Option<String>,
}

/// Why an instance's request about a job was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The instance is not running this job (or no job at all).
    UnknownJob,
    /// The instance was stopped: it must not take work.
    Gone,
}

impl Pool {
    pub(crate) fn start(config: FunctionConfig, launch: Launch, prices: Prices) -> Arc<Pool> {
        let pool = Arc::new(Pool {
            config,
            launch,
            prices,
            state: Mutex::default(),
            work: Notify::new(),
            ids: AtomicU64::new(1),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        pool.tasks.spawn(reap_idle(pool.clone()));
        pool
    }

    pub(crate) fn name(&self) -> &str {
        &self.config.name
    }

    pub(crate) fn trigger(&self) -> crate::FaasTrigger {
        self.config.trigger
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) async fn invoke(
        self: &Arc<Self>,
        payload: Bytes,
        trace: Option<String>,
    ) -> Result<Invoked, InvokeError> {
        let (reply, answer) = oneshot::channel();
        let id = uuid::Uuid::new_v4().to_string();
        let deadline = Instant::now() + self.config.timeout;
        {
            let mut s = self.lock();
            let busy = s.slots.values().filter(|i| matches!(i.phase, Phase::Busy { .. })).count();
            let cap = (self.config.max_concurrency + self.config.max_queue) as usize;
            if s.queue.len() + busy >= cap {
                s.totals.throttled += 1;
                metrics::counter!(crate::meters::THROTTLED, "faas.name" => self.config.name.clone())
                    .increment(1);
                return Err(InvokeError::Throttled);
            }
            s.queue.push_back(Job { id: id.clone(), payload, deadline, trace, reply });
            self.scale_out(&mut s);
        }
        self.work.notify_one();
        match tokio::time::timeout_at(deadline.into(), answer).await {
            Ok(Ok(Outcome::Answer(done))) => Ok(done),
            Ok(Ok(Outcome::Crashed(why))) => Err(InvokeError::Crashed(why)),
            Ok(Err(_)) => Err(InvokeError::Crashed("the host stopped".into())),
            Err(_) => {
                self.time_out(&id);
                Err(InvokeError::Timeout)
            }
        }
    }

    /// Starts instances while queued work outnumbers the instances that will take it, up
    /// to the cap.
    fn scale_out(self: &Arc<Self>, s: &mut State) {
        loop {
            let ready = s
                .slots
                .values()
                .filter(|i| matches!(i.phase, Phase::Starting | Phase::Idle { .. }))
                .count();
            if s.queue.len() <= ready || s.slots.len() >= self.config.max_concurrency as usize {
                return;
            }
            self.spawn(s);
        }
    }

    /// A timed-out job: dropped from the queue, or its instance stopped (Lambda ends the
    /// sandbox of an invocation that ran out of time).
    fn time_out(&self, job: &str) {
        let mut s = self.lock();
        s.totals.timeouts += 1;
        s.queue.retain(|j| j.id != job);
        for slot in s.slots.values() {
            if matches!(&slot.phase, Phase::Busy { job: j, .. } if j == job) {
                tracing::warn!(function = %self.config.name, job, "invocation timed out; stopping its instance");
                slot.stop.cancel();
            }
        }
    }

    fn spawn(self: &Arc<Self>, s: &mut State) {
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let stop = self.stop.child_token();
        s.slots.insert(
            id,
            Slot {
                pid: None,
                spawned: Instant::now(),
                init: None,
                served: 0,
                phase: Phase::Starting,
                stop: stop.clone(),
                init_error: None,
            },
        );
        s.totals.instances_started += 1;
        self.instances_gauge(s);
        let pool = self.clone();
        self.tasks.spawn(async move {
            if let Err(e) = pool.clone().run_instance(id, stop).await {
                tracing::error!(function = %pool.config.name, instance = id, error = format!("{e:#}"), "cannot start an instance");
                pool.exited(id, format!("cannot start: {e:#}"), false);
            }
        });
    }

    /// Serves the instance's Runtime API endpoint, starts its process, and waits for it
    /// to end (or stops it).
    async fn run_instance(self: Arc<Self>, id: u64, stop: CancellationToken) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let api = listener.local_addr()?;
        // The endpoint answers only under a secret path that only this instance is told,
        // so another local process cannot take its invocations, answer them, or fail its
        // init. (lambda_runtime keeps the path of AWS_LAMBDA_RUNTIME_API as a base path.)
        let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let router = axum::Router::new().nest(
            &format!("/{secret}"),
            crate::runtime_api::router(self.clone(), id, stop.clone()),
        );
        let serving = stop.clone();
        self.tasks.spawn(async move {
            // An instance keeps its connection idle while it runs an invocation: up to
            // Lambda's longest timeout, not the shop's usual keep-alive.
            let limits = rpc::ListenerLimits::for_this_process()
                .with_header_read_timeout(RUNTIME_API_IDLE)
                .with_max_connections(16);
            let served = rpc::serve(listener, router, limits, serving.cancelled_owned()).await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "runtime API endpoint failed");
            }
        });

        let c = &self.config;
        let mut cmd = Command::new(&self.launch.program);
        for name in &self.launch.env_remove {
            cmd.env_remove(name);
        }
        cmd.args(&self.launch.args)
            .envs(self.launch.env.iter().map(|(k, v)| (k, v)))
            .env("AWS_LAMBDA_RUNTIME_API", format!("http://{api}/{secret}"))
            .env("AWS_LAMBDA_FUNCTION_NAME", &c.name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", c.memory_mb.to_string())
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", c.name))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("instance-{id}"))
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .env("AWS_REGION", "local")
            .env("AWS_DEFAULT_REGION", "local")
            .env("_HANDLER", "bootstrap")
            .stdin(if self.launch.lifeline { Stdio::piped() } else { Stdio::null() })
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", self.launch.program.display()))?;
        // `wait` closes the child's stdin; the lifeline must stay open until it has exited.
        let lifeline = child.stdin.take();
        let pid = child.id();
        {
            let mut s = self.lock();
            match s.slots.get_mut(&id) {
                Some(slot) => slot.pid = pid,
                None => stop.cancel(),
            }
        }
        let (status, stopped_here) = tokio::select! {
            status = child.wait() => (status.map(|s| s.to_string()), false),
            () = stop.cancelled() => {
                let _ = child.start_kill();
                (child.wait().await.map(|_| "stopped".to_owned()), true)
            }
        };
        drop(lifeline);
        stop.cancel();
        self.exited(id, status.unwrap_or_else(|e| e.to_string()), stopped_here);
        Ok(())
    }

    /// The instance's process is gone (`stopped_here`: the host stopped it): its invocation
    /// (if any) fails, and queued work gets a replacement.
    fn exited(self: &Arc<Self>, id: u64, why: String, stopped_here: bool) {
        let mut s = self.lock();
        let Some(slot) = s.slots.remove(&id) else { return };
        slot.stop.cancel();
        // An instance stopped because its init failed did fail, whoever stopped it.
        let why = slot.init_error.clone().unwrap_or(why);
        let reaped = self.stop.is_cancelled() || (stopped_here && slot.init_error.is_none());
        let never_ready = matches!(slot.phase, Phase::Starting);
        if let Phase::Busy { reply, job, .. } = slot.phase {
            tracing::warn!(function = %self.config.name, instance = id, job, why, "instance died mid-invocation");
            s.totals.crashes += 1;
            metrics::counter!(crate::meters::CRASHES, "faas.name" => self.config.name.clone())
                .increment(1);
            let _ = reply.send(Outcome::Crashed(why.clone()));
        } else if !reaped {
            tracing::warn!(function = %self.config.name, instance = id, why, "instance exited");
        }
        if never_ready && !reaped {
            // It never asked for work. With no other instance alive the queue would only
            // start more that fail the same way: fail the queued work instead.
            if s.slots.is_empty() {
                for job in s.queue.drain(..) {
                    let _ = job.reply.send(Outcome::Crashed(format!("init failed: {why}")));
                }
            }
        } else if !self.stop.is_cancelled() {
            self.scale_out(&mut s);
        }
        self.instances_gauge(&s);
    }

    /// The instance asks for its next job (`/invocation/next`): the first queued one, or
    /// `None` when there is none right now.
    pub(crate) fn take(&self, id: u64) -> Result<Option<Handed>, Refused> {
        let mut guard = self.lock();
        let State { queue, slots, totals } = &mut *guard;
        let slot = slots.get_mut(&id).ok_or(Refused::Gone)?;
        if slot.stop.is_cancelled() {
            return Err(Refused::Gone);
        }
        if matches!(slot.phase, Phase::Starting) {
            slot.init = Some(slot.spawned.elapsed());
        }
        if let Phase::Busy { job, reply, .. } =
            std::mem::replace(&mut slot.phase, Phase::Idle { since: Instant::now() })
        {
            // Asked for more work without answering the last: Lambda counts that an error.
            totals.function_errors += 1;
            tracing::warn!(function = %self.config.name, job, "instance asked for work without answering");
            let _ = reply.send(Outcome::Crashed("the instance did not answer".into()));
        }
        while let Some(job) = queue.pop_front() {
            if job.reply.is_closed() {
                continue;
            }
            slot.served += 1;
            slot.phase =
                Phase::Busy { job: job.id.clone(), started: Instant::now(), reply: job.reply };
            return Ok(Some(Handed {
                id: job.id,
                payload: job.payload,
                deadline: job.deadline,
                trace: job.trace,
            }));
        }
        Ok(None)
    }

    /// Waits until work may be there (or `stop`).
    pub(crate) async fn wait_for_work(&self, stop: &CancellationToken) {
        tokio::select! {
            () = self.work.notified() => {}
            () = stop.cancelled() => {}
        }
    }

    /// The instance's answer for `job`: an answer, or with `error_type`, a function error.
    pub(crate) fn answer(
        &self,
        id: u64,
        job: &str,
        body: Bytes,
        error_type: Option<String>,
    ) -> Result<(), Refused> {
        let mut guard = self.lock();
        let State { slots, totals, .. } = &mut *guard;
        let slot = slots.get_mut(&id).ok_or(Refused::Gone)?;
        if !matches!(&slot.phase, Phase::Busy { job: j, .. } if j == job) {
            return Err(Refused::UnknownJob);
        }
        let Phase::Busy { started, reply, .. } =
            std::mem::replace(&mut slot.phase, Phase::Idle { since: Instant::now() })
        else {
            return Err(Refused::UnknownJob);
        };
        let report = Report::new(
            job.to_owned(),
            id,
            // The init phase is billed once, with the instance's first invocation.
            if slot.served == 1 { slot.init.take() } else { None },
            started.elapsed(),
            peak_memory_mb(slot.pid),
            self.config.memory_mb,
        );
        totals.add(&self.config.name, &report, self.config.arch, &self.prices);
        if error_type.is_some() {
            totals.function_errors += 1;
        }
        let _ = reply.send(Outcome::Answer(Invoked { body, function_error: error_type, report }));
        Ok(())
    }

    /// The instance could not initialize (`/init/error`): it is stopped.
    /// Its queued work fails at once when no other instance is alive (see `exited`).
    pub(crate) fn init_failed(&self, id: u64, body: &[u8]) {
        let mut s = self.lock();
        if let Some(slot) = s.slots.get_mut(&id) {
            let why = String::from_utf8_lossy(body).into_owned();
            tracing::error!(function = %self.config.name, instance = id, error = %why, "instance failed to initialize");
            slot.init_error = Some(why);
            slot.stop.cancel();
        }
    }

    pub(crate) fn stats(&self, prices: &Prices) -> FunctionStats {
        let s = self.lock();
        FunctionStats::new(&self.config, &s.totals, now(&s), prices)
    }

    pub(crate) fn pids(&self) -> Vec<u32> {
        self.lock().slots.values().filter_map(|s| s.pid).collect()
    }

    pub(crate) fn function_arn(&self) -> String {
        format!("arn:aws:lambda:local:000000000000:function:{}", self.config.name)
    }

    pub(crate) fn stop(&self) {
        self.stop.cancel();
        self.tasks.close();
        self.work.notify_waiters();
    }

    pub(crate) async fn stopped(&self) {
        self.tasks.wait().await;
    }

    fn instances_gauge(&self, s: &State) {
        metrics::gauge!(crate::meters::INSTANCES, "faas.name" => self.config.name.clone())
            .set(s.slots.len() as f64);
    }
}

fn now(s: &State) -> Now {
    let busy = s.slots.values().filter(|i| matches!(i.phase, Phase::Busy { .. })).count();
    Now {
        instances: u32::try_from(s.slots.len()).unwrap_or(u32::MAX),
        busy: u32::try_from(busy).unwrap_or(u32::MAX),
        queued: u32::try_from(s.queue.len()).unwrap_or(u32::MAX),
    }
}

/// Stops instances idle for the function's `idle_timeout`: scale to zero.
async fn reap_idle(pool: Arc<Pool>) {
    let every =
        (pool.config.idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    loop {
        tokio::select! {
            () = pool.stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        pool.reap(Instant::now());
    }
}

impl Pool {
    /// Stops the instances that have been idle for `idle_timeout` as of `now`; returns how
    /// many. Starting and busy instances are never reaped.
    fn reap(&self, now: Instant) -> usize {
        let s = self.lock();
        let mut stopped = 0;
        for (id, slot) in &s.slots {
            if let Phase::Idle { since } = slot.phase
                && now.saturating_duration_since(since) >= self.config.idle_timeout
                && !slot.stop.is_cancelled()
            {
                tracing::debug!(function = %self.config.name, instance = id, "idle: stopping");
                slot.stop.cancel();
                stopped += 1;
            }
        }
        stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(phase: Phase) -> Slot {
        Slot {
            pid: None,
            spawned: Instant::now(),
            init: None,
            served: 0,
            phase,
            stop: CancellationToken::new(),
            init_error: None,
        }
    }

    /// The reaper's rule on an injected time: an idle instance stops once it has been idle
    /// for `idle_timeout`, not a moment before; a starting or busy one never does.
    #[tokio::test]
    async fn instances_are_reaped_after_the_idle_timeout_and_not_before() {
        let mut config = FunctionConfig::new("reaped");
        config.idle_timeout = Duration::from_millis(300);
        let launch = Launch {
            program: "true".into(),
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            lifeline: false,
        };
        let pool = Pool::start(config, launch, Prices::default());
        // An hour ahead: the pool's own reaper, on the real clock, never finds these due.
        let t0 = Instant::now() + Duration::from_secs(3600);
        let (reply, _) = oneshot::channel();
        {
            let mut s = pool.lock();
            s.slots.insert(1, slot(Phase::Idle { since: t0 }));
            s.slots.insert(2, slot(Phase::Starting));
            s.slots.insert(3, slot(Phase::Busy { job: "j".into(), started: t0, reply }));
        }
        assert_eq!(pool.reap(t0 + Duration::from_millis(299)), 0, "not before the timeout");
        assert_eq!(pool.reap(t0 + Duration::from_millis(300)), 1);
        assert_eq!(pool.reap(t0 + Duration::from_secs(3600)), 0, "once; never the others");
        let s = pool.lock();
        let stopped: Vec<bool> = (1..=3).map(|id| s.slots[&id].stop.is_cancelled()).collect();
        assert_eq!(stopped, [true, false, false]);
        drop(s);
        pool.stop.cancel();
    }
}
