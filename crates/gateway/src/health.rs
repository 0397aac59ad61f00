use async_trait::async_trait;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use std::sync::Arc;

/// Something `/readyz` checks: a database of this process, or a service it calls.
#[async_trait]
pub trait Probe: Send + Sync + 'static {
    fn name(&self) -> &str;
    async fn check(&self) -> Result<(), String>;
    /// Whether this process cannot serve while the check fails (its own database). A
    /// service it calls (`false`) is reported as `degraded` and never makes it unready: a
    /// load balancer would take the whole edge away for one service's outage.
    fn gates_readiness(&self) -> bool {
        true
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    /// `ok`, `degraded` (serving, some services it calls are down) or `unavailable`.
    status: &'static str,
    /// What keeps this process from serving (with 503).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failing: Vec<String>,
    /// Services it calls that have no healthy instance: their routes fail, the rest work.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    degraded: Vec<String>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok", failing: Vec::new(), degraded: Vec::new() })
}

/// Readiness: this process can serve (its databases answer); the services it calls are
/// reported, not required.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub(crate) async fn readyz(
    State(probes): State<Arc<Vec<Arc<dyn Probe>>>>,
) -> (StatusCode, Json<Health>) {
    let (mut failing, mut degraded) = (Vec::new(), Vec::new());
    for p in probes.iter() {
        if let Err(e) = p.check().await {
            // The reason goes to the log; the answer names only the failing part.
            tracing::warn!(probe = p.name(), error = %e, "readiness probe failed");
            let list = if p.gates_readiness() { &mut failing } else { &mut degraded };
            list.push(p.name().to_owned());
        }
    }
    let (code, status) = match (failing.is_empty(), degraded.is_empty()) {
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        (true, false) => (StatusCode::OK, "degraded"),
        (true, true) => (StatusCode::OK, "ok"),
    };
    (code, Json(Health { status, failing, degraded }))
}

/// `/healthz` and `/readyz` alone, for a process without the public edge (a service's
/// internal listener, which its supervisor and orchestrator probe).
pub fn ops_router(probes: Vec<Arc<dyn Probe>>) -> axum::Router {
    axum::Router::new()
        .route("/healthz", axum::routing::get(healthz))
        .route("/readyz", axum::routing::get(readyz))
        .with_state(Arc::new(probes))
}
