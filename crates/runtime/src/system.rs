//! `GET /api/v1/system/topology` (admin): what runs where, as the registry sees it now.

use std::time::Duration;

use axum::extract::State;
use rpc::{ApiError, ApiResult, Ctx, Json};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use resilience::{Fault, TargetSnapshot};

use crate::metrics::MetricsState;
use crate::{BusKind, Database, DiscoveryKind, ProcessRole, Registry, Topology};

#[derive(Clone)]
struct SystemState {
    topology: Topology,
    registry: Registry,
    role: ProcessRole,
    resilience: MetricsState,
    peers: Option<Peers>,
    host: Option<function_host::FunctionHost>,
}

/// How the answering process asks the others for their resilience state: over their
/// internal listeners, with a service credential.
#[derive(Clone)]
pub(crate) struct Peers {
    pub(crate) http: reqwest::Client,
    pub(crate) issuer: rpc::CredentialIssuer,
}

/// How long the topology view waits for another process's state before it reports that
/// process unreachable.
const PEER_TIMEOUT: Duration = Duration::from_secs(1);

/// Where a process serves its own resilience state, behind the credential guard.
const RESILIENCE_PATH: &str = "/internal/system/resilience";

pub(crate) fn router(
    topology: Topology,
    registry: Registry,
    role: ProcessRole,
    resilience: MetricsState,
    peers: Option<Peers>,
    host: Option<function_host::FunctionHost>,
) -> OpenApiRouter {
    OpenApiRouter::new().routes(routes!(get_topology)).with_state(SystemState {
        resilience,
        topology,
        registry,
        role,
        peers,
        host,
    })
}

/// The internal route the topology view fans out to: this process's edges.
pub(crate) fn internal_router(role: ProcessRole, resilience: MetricsState) -> axum::Router {
    axum::Router::new()
        .route(
            RESILIENCE_PATH,
            axum::routing::get(|State((role, m)): State<(ProcessRole, MetricsState)>| async move {
                axum::Json(own(&role, &m))
            }),
        )
        .with_state((role, resilience))
}

fn own(role: &ProcessRole, m: &MetricsState) -> ProcessResilience {
    ProcessResilience {
        process: role.instance_id(),
        reachable: true,
        targets: m.targets.all().iter().map(|t| t.snapshot()).collect(),
        injected: m.faults.injected(),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct TopologyView {
    name: String,
    infra: InfraView,
    /// The service whose process runs the gateway, or `gateway` for a process of its own.
    gateway: String,
    services: Vec<ServiceView>,
    /// Functions, run on demand by the function host of the gateway's process: trigger,
    /// instances now, and the metering of their invocations since start.
    functions: Vec<FunctionView>,
    /// The prices the functions' cost estimates use.
    prices: function_host::Prices,
    /// Every process's calls to other modules, and the faults in force.
    resilience: ResilienceView,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ResilienceView {
    /// The faults in force, as the answering process sees them.
    faults: Vec<Fault>,
    /// The answering process first, then every other healthy instance, by id.
    processes: Vec<ProcessResilience>,
}

/// One process's edges: what it sees of its calls to other modules.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
struct ProcessResilience {
    /// `gateway`, or a service instance such as `shop-1` or `cart-2`.
    process: String,
    /// False when the process did not answer within a second; its targets are then empty.
    reachable: bool,
    /// One entry per module this process has called: breaker state and counters.
    targets: Vec<TargetSnapshot>,
    /// Calls that suffered an injected fault in this process, since start.
    injected: u64,
}

/// Asks every other healthy instance for its edges, all at once, each bounded by
/// [`PEER_TIMEOUT`].
async fn gather(state: &SystemState, instances: &[crate::Instance]) -> Vec<ProcessResilience> {
    let me = state.role.instance_id();
    let mut all = vec![own(&state.role, &state.resilience)];
    let Some(peers) = &state.peers else { return all };
    let asks = instances.iter().filter(|i| i.healthy && i.id != me).map(|i| async move {
        let answer = async {
            let token = peers.issuer.token_for(&i.service)?;
            let nonce = rpc::answer_nonce();
            let res = peers
                .http
                .get(format!("http://{}{RESILIENCE_PATH}", i.address))
                .timeout(PEER_TIMEOUT)
                .bearer_auth(token)
                .header(rpc::wire::ANSWER_NONCE, &nonce)
                .send()
                .await?;
            let status = res.status();
            let signature = rpc::wire::answer_signature(res.headers()).map(str::to_owned);
            let body = res.bytes().await?;
            peers.issuer.check_answer(
                &i.service,
                &nonce,
                status.as_u16(),
                &body,
                signature.as_deref(),
            )?;
            anyhow::ensure!(status.is_success(), "answered {status}");
            anyhow::Ok(serde_json::from_slice::<ProcessResilience>(&body)?)
        };
        answer.await.unwrap_or_else(|e| {
            tracing::warn!(instance = %i.id, error = format!("{e:#}"), "no resilience state");
            ProcessResilience {
                process: i.id.clone(),
                reachable: false,
                targets: vec![],
                injected: 0,
            }
        })
    });
    let mut others = futures::future::join_all(asks).await;
    others.sort_by(|a, b| a.process.cmp(&b.process));
    all.extend(others);
    all
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct FunctionView {
    module: String,
    /// `http`, `events` or `schedule`.
    trigger: String,
    #[serde(flatten)]
    stats: function_host::FunctionStats,
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
            if let ProcessRole::Service { name, .. } = &state.role
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
        functions: state.host.as_ref().map(|h| function_views(t, h)).unwrap_or_default(),
        prices: t.prices,
        resilience: ResilienceView {
            faults: state.resilience.faults.active(),
            processes: gather(&state, &registered).await,
        },
    }))
}

fn function_views(t: &Topology, host: &function_host::FunctionHost) -> Vec<FunctionView> {
    host.stats()
        .into_iter()
        .filter_map(|stats| {
            let f = t.function(&stats.name)?;
            let trigger = match f.trigger {
                crate::Trigger::Http => "http",
                crate::Trigger::Events => "events",
                crate::Trigger::Schedule { .. } => "schedule",
            };
            Some(FunctionView { module: f.module.as_str().into(), trigger: trigger.into(), stats })
        })
        .collect()
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
