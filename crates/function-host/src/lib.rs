//! A local AWS Lambda. Each function is a pool of instances: OS processes started on demand
//! (a cold start), each talking to an endpoint of its own that implements the Lambda Runtime
//! API (`/2018-06-01/runtime/…`), so a binary built on the official `lambda_runtime` crate
//! runs here exactly as on AWS.
//!
//! An instance takes one invocation at a time and is reused while warm; the pool scales out
//! up to `max_concurrency` instances, queues up to `max_queue` invocations beyond that and
//! throttles the rest, and stops an instance idle for `idle_timeout` (scale to zero). An
//! instance that dies mid-invocation fails that invocation (`Runtime.ExitError`): the
//! trigger decides whether to retry. Every invocation is metered like Lambda bills it.
//!
//! This crate knows nothing of the shop: what a function runs is the caller's [`Launch`].

mod apigw;
mod config;
mod invoke_api;
mod meter;
mod meters;
mod pool;
mod runtime_api;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use tracing::Instrument as _;

pub use apigw::{
    ApigwError, request_event, request_from_event, response_event, response_from_event,
};
pub use config::{Arch, FaasTrigger, FunctionConfig, Launch, Prices};
pub use invoke_api::{Authorize, Bearer, HttpInvoker, invoke_router};
pub use meter::{FunctionStats, Report};
pub use meters::describe_metrics;
pub use pool::{InvokeError, Invoked};

use pool::Pool;

/// The host of every function of a process. Cheap to clone.
#[derive(Clone, Default)]
pub struct FunctionHost {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    pools: RwLock<HashMap<String, Arc<Pool>>>,
    prices: Prices,
}

impl std::fmt::Debug for FunctionHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionHost").field("functions", &self.names()).finish()
    }
}

impl FunctionHost {
    pub fn new(prices: Prices) -> FunctionHost {
        FunctionHost { inner: Arc::new(Inner { pools: RwLock::default(), prices }) }
    }

    /// Adds a function; no instance starts until its first invocation. Replaces a function
    /// of the same name (its instances stop).
    pub fn register(&self, config: FunctionConfig, launch: Launch) {
        let pool = Pool::start(config, launch, self.inner.prices);
        let old = self.write().insert(pool.name().to_owned(), pool);
        if let Some(old) = old {
            old.stop();
        }
    }

    /// Runs `payload` on an instance of `function` and waits for its answer, at most the
    /// function's timeout.
    pub async fn invoke(
        &self,
        function: &str,
        payload: Bytes,
        trace: Option<String>,
    ) -> Result<Invoked, InvokeError> {
        let pool = self.pool(function).ok_or(InvokeError::NotFound)?;
        // The invocation as the platform sees it (OpenTelemetry FaaS conventions): named
        // after the function, with its trigger and, once it is known, whether it was a cold
        // start and how long the instance took to start.
        let span = tracing::info_span!(
            "invoke",
            otel.name = function,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            faas.invoked_name = function,
            faas.trigger = pool.trigger().as_str(),
            faas.invocation_id = tracing::field::Empty,
            faas.coldstart = tracing::field::Empty,
            faas.init_duration_ms = tracing::field::Empty,
        );
        // The invocation continues the caller's context (`trace`, a W3C `traceparent`), and
        // the instance's work continues the invocation: the Lambda trace header carries the
        // invocation span's own context, as AWS's does, so the function's spans are its
        // children.
        if let Some(parent) = trace.as_deref().and_then(kernel::TraceParent::parse) {
            telemetry::set_parent(&span, &parent);
        }
        let trace = telemetry::traceparent_of(&span).map(|t| t.to_string()).or(trace);
        let result = pool.invoke(payload, trace).instrument(span.clone()).await;
        match &result {
            Ok(done) => {
                span.record("faas.invocation_id", done.report.request_id.as_str());
                span.record("faas.coldstart", done.report.cold);
                if let Some(ms) = done.report.init_ms {
                    span.record("faas.init_duration_ms", ms);
                    init_span(&span, &done.report);
                }
                if done.function_error.is_some() {
                    span.record("otel.status_code", "ERROR");
                }
            }
            Err(_) => {
                span.record("otel.status_code", "ERROR");
            }
        }
        result
    }

    /// Counts and metering of every function, by name.
    pub fn stats(&self) -> Vec<FunctionStats> {
        let mut all: Vec<FunctionStats> =
            self.read().values().map(|p| p.stats(&self.inner.prices)).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// The process ids of `function`'s running instances.
    pub fn pids(&self, function: &str) -> Vec<u32> {
        self.pool(function).map(|p| p.pids()).unwrap_or_default()
    }

    pub fn has(&self, function: &str) -> bool {
        self.read().contains_key(function)
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.read().keys().cloned().collect();
        names.sort();
        names
    }

    /// Stops every instance and waits until they have exited.
    pub async fn shutdown(&self) {
        let pools: Vec<Arc<Pool>> = self.write().drain().map(|(_, p)| p).collect();
        for pool in &pools {
            pool.stop();
        }
        for pool in pools {
            pool.stopped().await;
        }
    }

    fn pool(&self, name: &str) -> Option<Arc<Pool>> {
        self.read().get(name).cloned()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Pool>>> {
        self.inner.pools.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Pool>>> {
        self.inner.pools.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// The init phase of a cold start, as a child of the invocation `span`: it ended when the
/// instance took the job (its answer came `duration_ms` later, now) and lasted `init_ms`.
fn init_span(span: &tracing::Span, report: &Report) {
    let now = std::time::SystemTime::now();
    let ms = |v: f64| std::time::Duration::from_secs_f64(v.max(0.0) / 1000.0);
    let end = now.checked_sub(ms(report.duration_ms)).unwrap_or(now);
    let start = end.checked_sub(ms(report.init_ms.unwrap_or(0.0))).unwrap_or(end);
    telemetry::record_child(
        span,
        "init",
        start,
        end,
        &[("faas.instance", report.instance.to_string())],
    );
}
