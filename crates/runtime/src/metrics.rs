//! `GET /metrics`: this process's metrics in the Prometheus text format, every family with
//! `# HELP` and `# TYPE`, durations in seconds, histograms (never summaries), counters
//! ending in `_total`.
//!
//! Each crate names and describes what it records (`describe_metrics` in gateway, rpc,
//! resilience, function-host, orders); this module installs the recorder, describes them
//! all, and at each scrape adds what is read rather than counted: breaker states, active
//! faults, each subscriber's backlog and lag, each outbox's backlog and age, and the
//! process's CPU, memory and file descriptors.

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use bus::{BusClient, Outbox};
use metrics::Unit;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use resilience::FaultBoard;

use crate::edges::Targets;

/// Histogram bucket bounds, in seconds: OpenTelemetry's advice for
/// `http.server.request.duration`, used for every histogram (all are durations).
const DURATION_BUCKETS: [f64; 14] =
    [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

/// A scrape waits at most this long for the bus and the outboxes to say what they owe.
const BACKLOG_QUERY_TIMEOUT: Duration = Duration::from_secs(2);

const FAULTS_ACTIVE: &str = "microlith_faults_active";
const BUS_BACKLOG: &str = "microlith_bus_backlog_messages";
const BUS_LAG: &str = "microlith_bus_lag_seconds";
const OUTBOX_BACKLOG: &str = "microlith_outbox_backlog_messages";
const OUTBOX_AGE: &str = "microlith_outbox_age_seconds";

/// The process-wide recorder, installed on first use.
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                // `_total` on counters and the unit on described names, as Prometheus names them.
                .with_recommended_naming(true)
                .set_buckets(&DURATION_BUCKETS)
                .and_then(PrometheusBuilder::install_recorder);
            match installed {
                Ok(h) => {
                    describe_all();
                    Some(h)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot install the metrics recorder; /metrics is empty");
                    None
                }
            }
        })
        .as_ref()
}

fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

fn describe_all() {
    gateway::describe_metrics();
    rpc::describe_metrics();
    resilience::describe_metrics();
    function_host::describe_metrics();
    orders::describe_metrics();
    process_collector().describe();
    metrics::describe_gauge!(FAULTS_ACTIVE, "Faults injected now (live, not expired).");
    metrics::describe_gauge!(
        BUS_BACKLOG,
        "Deliveries owed to a subscriber of this process and not yet acknowledged."
    );
    metrics::describe_gauge!(
        BUS_LAG,
        Unit::Seconds,
        "Time since the oldest delivery owed to a subscriber was published; 0 when it owes none."
    );
    metrics::describe_gauge!(
        OUTBOX_BACKLOG,
        "Events committed to a module's outbox and not yet published to the bus."
    );
    metrics::describe_gauge!(
        OUTBOX_AGE,
        Unit::Seconds,
        "Time since the oldest unpublished event of a module's outbox was committed; 0 when none."
    );
}

/// Installs the recorder, so counters from the first call on are kept.
pub(crate) fn init() {
    let _ = handle();
}

#[derive(Clone)]
pub(crate) struct MetricsState {
    pub(crate) targets: Targets,
    pub(crate) faults: FaultBoard,
    /// The bus of this process, when it has one: its subscribers' backlogs.
    pub(crate) bus: Option<BusClient>,
    /// The outboxes this process relays.
    pub(crate) outboxes: Vec<Outbox>,
}

/// `GET /metrics` alone: for a service's internal listener, or a listener of its own.
pub(crate) fn router(state: MetricsState) -> axum::Router {
    axum::Router::new().route("/metrics", axum::routing::get(metrics)).with_state(state)
}

/// Prometheus text exposition of this process.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub(crate) async fn metrics(State(state): State<MetricsState>) -> impl IntoResponse {
    // Gauges that change without a call (an open breaker's wait ending) are set now.
    for t in state.targets.all() {
        metrics::gauge!(resilience::BREAKER_STATE, "target" => t.name())
            .set(t.breaker().state().as_gauge());
    }
    metrics::gauge!(FAULTS_ACTIVE).set(state.faults.active().len() as f64);
    process_collector().collect();
    backlogs(&state).await;
    let body = handle().map(|h| {
        h.run_upkeep();
        h.render()
    });
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body.unwrap_or_default())
}

/// Sets the bus and outbox gauges; a store that does not answer in time leaves the last
/// figures in place (logged), rather than failing the scrape.
async fn backlogs(state: &MetricsState) {
    let secs = |age: Option<Duration>| age.map_or(0.0, |a| a.as_secs_f64());
    if let Some(bus) = &state.bus {
        match tokio::time::timeout(BACKLOG_QUERY_TIMEOUT, bus.backlogs()).await {
            Ok(Ok(all)) => {
                for (subscriber, b) in all {
                    metrics::gauge!(BUS_BACKLOG, "subscriber" => subscriber.clone())
                        .set(b.messages as f64);
                    metrics::gauge!(BUS_LAG, "subscriber" => subscriber).set(secs(b.oldest_age));
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot read the bus backlog for /metrics"),
            Err(_) => tracing::warn!("the bus backlog did not come in time for /metrics"),
        }
    }
    for outbox in &state.outboxes {
        let module = outbox.source();
        match tokio::time::timeout(BACKLOG_QUERY_TIMEOUT, outbox.backlog()).await {
            Ok(Ok(b)) => {
                metrics::gauge!(OUTBOX_BACKLOG, "module" => module).set(b.messages as f64);
                metrics::gauge!(OUTBOX_AGE, "module" => module).set(secs(b.oldest_age));
            }
            Ok(Err(e)) => {
                tracing::warn!(module, error = %e, "cannot read the outbox backlog for /metrics");
            }
            Err(_) => {
                tracing::warn!(module, "the outbox backlog did not come in time for /metrics")
            }
        }
    }
}
