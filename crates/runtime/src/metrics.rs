//! `GET /metrics`: this process's counters and gauges in the Prometheus text format. Calls
//! between modules (`microlith_calls_total`, `_retries_total`, `_shed_total`,
//! `_breaker_rejected_total`, `microlith_breaker_state`), injected faults
//! (`microlith_faults_injected_total`, `microlith_faults_active`).

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use resilience::FaultBoard;

use crate::edges::Targets;

/// The process-wide recorder, installed on first use.
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!(error = %e, "cannot install the metrics recorder; /metrics is empty");
                None
            }
        })
        .as_ref()
}

/// Installs the recorder, so counters from the first call on are kept.
pub(crate) fn init() {
    let _ = handle();
}

#[derive(Clone)]
pub(crate) struct MetricsState {
    pub(crate) targets: Targets,
    pub(crate) faults: FaultBoard,
}

/// Prometheus text exposition of this process.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub(crate) async fn metrics(State(state): State<MetricsState>) -> impl IntoResponse {
    // Gauges that change without a call (an open breaker's wait ending) are set now.
    for t in state.targets.all() {
        metrics::gauge!("microlith_breaker_state", "target" => t.name())
            .set(t.breaker().state().as_gauge());
    }
    metrics::gauge!("microlith_faults_active").set(state.faults.active().len() as f64);
    let body = handle().map(|h| {
        h.run_upkeep();
        h.render()
    });
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body.unwrap_or_default())
}
