//! `GET /api/v1/system/topology` (admin): what runs where, as the registry sees it now.

use axum::extract::State;
use rpc::{ApiError, ApiResult, Ctx, Json};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use rpc::resilience::{Fault, TargetSnapshot};

use crate::metrics::MetricsState;
use crate::{BusKind, Database, DiscoveryKind, Registry, Role, Topology};

#[derive(Clone)]
struct SystemState {
    topology: Topology,
    registry: Registry,
    role: Role,
    resilience: MetricsState,
}

pub(crate) fn router(
    topology: Topology,
    registry: Registry,
    role: Role,
    resilience: MetricsState,
) -> OpenApiRouter {
    OpenApiRouter::new().routes(routes!(get_topology)).with_state(SystemState {
        resilience,
        topology,
        registry,
        role,
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct TopologyView {
    name: String,
    infra: InfraView,
    /// The service whose process runs the gateway, or `gateway` for a process of its own.
    gateway: String,
    services: Vec<ServiceView>,
    /// What the process answering sees of its calls to other modules, and the faults in
    /// force.
    resilience: ResilienceView,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ResilienceView {
    /// The process answering (`gateway`, or a service instance such as `shop-1`).
    process: String,
    /// One entry per module this process has called: breaker state and counters.
    targets: Vec<TargetSnapshot>,
    faults: Vec<Fault>,
    /// Calls that suffered an injected fault in this process, since start.
    injected: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct InfraView {
    /// `sqlite` or the PostgreSQL URL without its password.
    database: String,
    bus: String,
    discovery: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ServiceView {
    name: String,
    modules: Vec<String>,
    replicas: u16,
    instances: Vec<InstanceView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct InstanceView {
    id: String,
    /// Where its internal routes listen; absent for a process that has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<String>,
    healthy: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
}

/// Hides the password of a URL's user info: `postgres://u:secret@h/db` → `postgres://u:***@h/db`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            let masked =
                if userinfo.contains(':') { format!("{user}:***") } else { user.to_owned() };
            format!("{scheme}://{masked}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// Processes, their modules, and each instance with its address and health.
#[utoipa::path(get, path = "/api/v1/system/topology", tag = "system",
    security(("bearer" = [])),
    responses(
        (status = 200, body = TopologyView),
        (status = 401, body = rpc::ErrorBody),
        (status = 403, body = rpc::ErrorBody),
    ))]
async fn get_topology(
    State(state): State<SystemState>,
    Ctx(ctx): Ctx,
) -> ApiResult<Json<TopologyView>> {
    ctx.admin().map_err(ApiError::from)?;
    let t = &state.topology;
    let registered = state.registry.instances();
    let services = t
        .services
        .iter()
        .map(|s| {
            let mut instances: Vec<InstanceView> = registered
                .iter()
                .filter(|i| i.service == s.name)
                .map(|i| InstanceView {
                    id: i.id.clone(),
                    address: Some(i.address.to_string()),
                    healthy: i.healthy,
                    pid: i.pid,
                })
                .collect();
            // This very process, when it hosts the service and no registry lists it (the
            // monolith): it is answering, so it is healthy.
            if let Role::Service { name, .. } = &state.role
                && name == &s.name
                && !instances.iter().any(|i| i.id == state.role.instance_id())
            {
                instances.push(InstanceView {
                    id: state.role.instance_id(),
                    address: None,
                    healthy: true,
                    pid: Some(std::process::id()),
                });
            }
            ServiceView {
                name: s.name.clone(),
                modules: s.modules.iter().map(|m| m.as_str().to_owned()).collect(),
                replicas: s.replicas,
                instances,
            }
        })
        .collect();
    Ok(Json(TopologyView {
        name: t.name.clone(),
        infra: InfraView {
            database: match &t.infra.database {
                Database::Sqlite => "sqlite".into(),
                Database::Postgres(url) => redact(url),
            },
            bus: match &t.infra.bus {
                BusKind::Embedded => "embedded".into(),
                BusKind::Nats(url) => redact(url),
            },
            discovery: match &t.infra.discovery {
                DiscoveryKind::Local => "local".into(),
                DiscoveryKind::Nats(url) => redact(url),
            },
        },
        gateway: t.gateway_in.clone().unwrap_or_else(|| "gateway".into()),
        services,
        resilience: ResilienceView {
            process: state.role.instance_id(),
            targets: state.resilience.targets.all().iter().map(|t| t.snapshot()).collect(),
            faults: state.resilience.faults.active(),
            injected: state.resilience.faults.injected(),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_show() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }
}
