//! Work a module does on a schedule, apart from handling events (expiring stale orders,
//! sending a daily summary). A module declares its jobs; the composition root runs each in
//! a loop in a long-running process, or has a schedule invoke it when the module is a
//! function (an EventBridge Scheduler rule, on AWS).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// One job of a module.
#[async_trait]
pub trait Job: Send + Sync {
    /// Its name in topology files (`job = "…"`), snake_case, unique within its module.
    fn name(&self) -> &'static str;

    /// How often a long-running process runs it.
    fn every(&self) -> Duration;

    /// Runs it once as of `now` (ms since the Unix epoch: the clock's, or the time a
    /// schedule fired), and says what it did, as JSON for the invoker's answer.
    ///
    /// Errors: whatever kept it from finishing; the next run tries again.
    async fn run(&self, now: i64) -> anyhow::Result<serde_json::Value>;
}

/// A job run at least this far apart is traced as a root span of its own (info level); a
/// more frequent one, a poll, at debug level.
pub const TRACED_JOB_PERIOD: Duration = Duration::from_secs(60);

/// Runs `job` at once and then every [`Job::every`] until `cancel`, one run at a time (a run
/// that outlasts the period delays the next), logging failures.
pub fn spawn_job(job: Arc<dyn Job>, cancel: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            // Each run is a trace of its own: a root span named after the job. A job that
            // polls (every few seconds) is a debug span instead, so idle polls fill no trace
            // store; what a poll does is still traced, from its first span.
            let span = if job.every() >= TRACED_JOB_PERIOD {
                tracing::info_span!(parent: None, "job", otel.name = job.name(), job = job.name())
            } else {
                tracing::debug_span!(parent: None, "job", otel.name = job.name(), job = job.name())
            };
            let run = job.run(kernel::now_ms()).instrument(span.clone()).await;
            if let Err(e) = run {
                span.in_scope(|| {
                    tracing::warn!(job = job.name(), error = format!("{e:#}"), "job failed")
                });
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(job.every()) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    struct Counting(Arc<AtomicU32>);

    #[async_trait]
    impl Job for Counting {
        fn name(&self) -> &'static str {
            "count"
        }
        fn every(&self) -> Duration {
            Duration::from_millis(5)
        }
        async fn run(&self, _now: i64) -> anyhow::Result<serde_json::Value> {
            // A failing run is logged, and the job runs again.
            match self.0.fetch_add(1, Ordering::SeqCst) {
                1 => anyhow::bail!("a bad run"),
                n => Ok(serde_json::json!(n)),
            }
        }
    }

    #[tokio::test]
    async fn a_job_runs_at_once_again_after_a_failure_and_stops_when_told() {
        let runs = Arc::new(AtomicU32::new(0));
        let cancel = CancellationToken::new();
        let task = spawn_job(Arc::new(Counting(runs.clone())), cancel.clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while runs.load(Ordering::SeqCst) < 4 {
            assert!(tokio::time::Instant::now() < deadline, "the job did not keep running");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap();
        let stopped_at = runs.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(runs.load(Ordering::SeqCst), stopped_at, "no run after the stop");
    }
}
