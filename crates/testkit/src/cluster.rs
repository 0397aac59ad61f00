//! The processes of a distributed placement, served in this test process: one loopback
//! listener per process of the plan, and a contract's internal routes on their own
//! ([`serve_internal`]).

use std::net::SocketAddr;

use runtime::{Instance, ProcessRole, Registry, Shop, ShopConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// One served process of the shop.
pub(crate) struct Node {
    pub(crate) stop: oneshot::Sender<()>,
    pub(crate) server: JoinHandle<()>,
}

/// Serves `router` on a fresh loopback port until stopped, then closes `shop`.
pub(crate) async fn serve(router: axum::Router, shop: Option<Shop>) -> (SocketAddr, Node) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let addr = listener.local_addr().expect("local addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        gateway::serve(listener, router, shutdown).await.expect("server runs");
        if let Some(shop) = shop {
            shop.close().await;
        }
    });
    (addr, Node { stop, server })
}

/// Serves a contract's internal routes on a loopback port, behind the service credential
/// guard, and returns the [`rpc::Remote`] that calls them: a module placed "in another
/// process" for contract tests.
pub async fn serve_internal(service: &str, routes: axum::Router) -> (rpc::Remote, JoinHandle<()>) {
    // The tests call as the public edge would: any route, for the users of their contexts.
    let key = rpc::ServiceKey::generate("tests").expect("a key");
    let own = rpc::ServiceKey::generate(service).expect("a key");
    let keys: std::sync::Arc<dyn rpc::KeySource> =
        std::sync::Arc::new(rpc::StaticKeys::new().with(&key).with(&own));
    let verifier = rpc::CredentialVerifier::new(service, keys.clone(), "tests", rpc::allow_all());
    let signer = rpc::CredentialIssuer::new(own, keys.clone());
    let app = rpc::internal::guard(routes, verifier, signer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let addr = listener.local_addr().expect("local addr");
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("internal server runs");
    });
    let endpoints = rpc::StaticEndpoints::new(vec![rpc::Endpoint {
        instance: format!("{service}-1"),
        base_url: format!("http://{addr}"),
    }]);
    let remote = rpc::Remote::new(
        rpc::http_pool(),
        service,
        endpoints,
        rpc::CredentialIssuer::new(key, keys).delegating(),
        std::time::Duration::from_secs(5),
    );
    (remote, server)
}

/// Every instance of every service of `config.topology` on a loopback port of its own, the
/// registry filled with them, then the gateway. Returns the gateway's address and the nodes
/// in stopping order.
pub(crate) async fn start_cluster(config: ShopConfig) -> (SocketAddr, Vec<Node>) {
    let registry = Registry::new();
    let mut nodes = Vec::new();
    let mut instances = Vec::new();
    let mut public = None;
    // Exactly the processes of the plan, in its order: service instances, then the gateway.
    let plan = runtime::Plan::of(&config.topology);
    for p in plan.at_start() {
        let mut c = config.clone();
        c.role = p.role.clone();
        c.registry = registry.clone();
        if let ProcessRole::Service { name, .. } = &p.role {
            let shop = Shop::start(c).await.expect("service starts");
            let internal = shop.internal.clone().expect("a service serves internal routes");
            if p.public {
                let router = shop.router.clone().expect("the instance with the gateway");
                let (addr, node) = serve(router, None).await;
                public = Some(addr);
                nodes.push(node);
            }
            let (address, node) = serve(internal, Some(shop)).await;
            nodes.push(node);
            instances.push(Instance {
                service: name.clone(),
                id: p.id.clone(),
                address,
                healthy: true,
                pid: None,
            });
            continue;
        }
        // The gateway alone, once every instance is in the registry.
        registry.set(instances.clone());
        c.registry = registry.clone();
        let shop = Shop::start(c).await.expect("gateway starts");
        let router = shop.router.clone().expect("the gateway serves the public API");
        let (addr, node) = serve(router, Some(shop)).await;
        public = Some(addr);
        nodes.insert(0, node);
    }
    registry.set(instances);
    (public.expect("some process serves the gateway"), nodes)
}
