use async_trait::async_trait;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use std::sync::Arc;

/// Something `/readyz` checks: a module's database, later a remote service.
#[async_trait]
pub trait Probe: Send + Sync + 'static {
    fn name(&self) -> &str;
    async fn check(&self) -> Result<(), String>;
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failing: Vec<String>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok", failing: Vec::new() })
}

/// Readiness: every dependency answers.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub(crate) async fn readyz(
    State(probes): State<Arc<Vec<Arc<dyn Probe>>>>,
) -> (StatusCode, Json<Health>) {
    let mut failing = Vec::new();
    for p in probes.iter() {
        if let Err(e) = p.check().await {
            // The reason goes to the log; the answer names only the failing part.
            tracing::warn!(probe = p.name(), error = %e, "readiness probe failed");
            failing.push(p.name().to_owned());
        }
    }
    if failing.is_empty() {
        (StatusCode::OK, Json(Health { status: "ok", failing }))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "unavailable", failing }))
    }
}

/// `/healthz` and `/readyz` alone, for a process without the public edge (a service's
/// internal listener, which its supervisor and orchestrator probe).
pub fn ops_router(probes: Vec<Arc<dyn Probe>>) -> axum::Router {
    axum::Router::new()
        .route("/healthz", axum::routing::get(healthz))
        .route("/readyz", axum::routing::get(readyz))
        .with_state(Arc::new(probes))
}
