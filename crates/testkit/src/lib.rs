//! The test harness: [`TestApp::spawn`] starts the real shop (the same `runtime::Shop` as
//! `microlith up`) on a listener bound to port 0, with a fresh data directory, and offers
//! typed helpers for the common steps (register and log in, act as admin, pick a product).

#![allow(clippy::missing_panics_doc)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use identity_api::Password;
use kernel::Email;
use runtime::{AdminCredentials, BusKind, Database, Shop, ShopConfig, Topology};
use serde_json::{Value, json};

mod audit;
mod cluster;
mod infra;
pub mod prometheus;

pub use audit::{Audit, StockRow};
pub use cluster::serve_internal;
pub use infra::{
    NatsNamespace, PgDatabase, scratch_pg_and_nats, skip_notice, test_nats, test_postgres,
};
pub use reqwest::StatusCode;

use cluster::{Node, serve, start_cluster};
use infra::skip_binary;

pub const ADMIN_EMAIL: &str = "admin@test.example";
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// Which placement a test runs the shop in. The end-to-end scenarios run unchanged in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// One in-process shop, as `microlith up`.
    Monolith,
    /// The `microservices` preset: every service and the gateway on a loopback port of its
    /// own (in this test process), talking HTTP/JSON through the remote clients, with one
    /// SQLite file per module and the embedded bus.
    Microservices,
    /// The same on PostgreSQL (a fresh database per test, a schema per module) and NATS
    /// JetStream (a fresh namespace of streams per test).
    MicroservicesPgNats,
    /// The `serverless` preset: the gateway (in this test process) with the function host,
    /// every module a function whose instances are processes of the `microlith` binary the
    /// tweak names in `config.functions.program`.
    Serverless,
    /// The `hybrid` preset: core and payments in this process, notifications as functions
    /// (the binary as for `Serverless`).
    Hybrid,
}

/// A running shop. Dropping it stops the servers; the data directory lives as long as the
/// last `TestApp` started on it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub setup: Setup,
    database: Database,
    /// The bus and its namespace.
    bus: (BusKind, String),
    /// The test's own PostgreSQL database and NATS namespace, dropped with the last
    /// `TestApp` on them.
    pg: Option<Arc<PgDatabase>>,
    nats: Option<Arc<NatsNamespace>>,
    dir: Arc<tempfile::TempDir>,
    tweak: Arc<dyn Fn(&mut ShopConfig) + Send + Sync>,
    /// The gateway first, then the services: the order they are stopped in.
    nodes: Vec<Node>,
}

/// Records the spans of every shop this test process runs as OpenTelemetry spans, as the
/// `microlith` binary does (once per process; all shops share the one provider, and each
/// shop's trace store receives them all).
fn observe() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{EnvFilter, Layer as _};
    static PROVIDER: std::sync::OnceLock<opentelemetry_sdk::trace::SdkTracerProvider> =
        std::sync::OnceLock::new();
    PROVIDER.get_or_init(|| {
        let identity = telemetry::ProcessIdentity {
            service_name: "testkit".into(),
            instance_id: std::process::id().to_string(),
            topology: "test".into(),
        };
        let (layer, provider) =
            telemetry::layer(&identity, &telemetry::TelemetryConfig::default(), None)
                .expect("the default telemetry configuration is valid");
        // Another subscriber may already be the global one (a test's own): then this
        // process records no spans, and its trace tests say so.
        let _ = tracing_subscriber::registry()
            .with(layer.with_filter(EnvFilter::new("info")))
            .try_init();
        provider
    });
}

/// A signed-in customer.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub password: String,
    pub token: String,
}

impl TestApp {
    /// The monolith with test-friendly rate limits (high, so only the rate-limit tests hit
    /// them).
    pub async fn spawn() -> TestApp {
        Self::spawn_in(Setup::Monolith, |_| {}).await
    }

    /// The monolith with `tweak` applied to its configuration.
    pub async fn spawn_with(tweak: impl Fn(&mut ShopConfig) + Send + Sync + 'static) -> TestApp {
        Self::spawn_in(Setup::Monolith, tweak).await
    }

    /// The shop placed as `setup` says, with `tweak` applied to every process's configuration.
    pub async fn spawn_in(
        setup: Setup,
        tweak: impl Fn(&mut ShopConfig) + Send + Sync + 'static,
    ) -> TestApp {
        observe();
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let (pg, nats) = match setup {
            Setup::MicroservicesPgNats => {
                let Some((pg, nats)) = scratch_pg_and_nats().await else {
                    skip_binary("it needs PostgreSQL and NATS (set CI to make this a failure)");
                };
                (Some(Arc::new(pg)), Some(Arc::new(nats)))
            }
            _ => (None, None),
        };
        Self::start(setup, dir, pg, nats, Arc::new(tweak)).await
    }

    async fn start(
        setup: Setup,
        dir: Arc<tempfile::TempDir>,
        pg: Option<Arc<PgDatabase>>,
        nats: Option<Arc<NatsNamespace>>,
        tweak: Arc<dyn Fn(&mut ShopConfig) + Send + Sync>,
    ) -> TestApp {
        let admin = AdminCredentials {
            email: Email::parse(ADMIN_EMAIL).expect("admin email"),
            password: Some(Password::new(ADMIN_PASSWORD.into()).expect("admin password")),
        };
        let mut config = ShopConfig::new(dir.path().join("data"), admin);
        config.gateway.per_user = gateway::RateQuota::new(10_000, 10_000).expect("quota");
        config.gateway.per_address = gateway::RateQuota::new(10_000, 10_000).expect("quota");
        config.topology = match setup {
            Setup::Monolith => config.topology,
            Setup::Microservices | Setup::MicroservicesPgNats => Topology::microservices(),
            Setup::Serverless => Topology::serverless(),
            Setup::Hybrid => Topology::hybrid(),
        };
        if let Some(pg) = &pg {
            config.topology.set_database(&pg.url).expect("postgres url");
        }
        if let Some(nats) = &nats {
            config.topology.set_bus(&nats.url).expect("nats url");
            config.bus_namespace = nats.name.clone();
        }
        tweak(&mut config);
        if config.functions.env.is_empty() {
            // Function instances get the configuration from the host; only the noise is ours.
            config.functions.env = vec![("RUST_LOG".into(), "warn".into())];
        }
        let database = config.topology.infra.database.clone();
        let bus = (config.topology.infra.bus.clone(), config.bus_namespace.clone());
        let (addr, nodes) = if config.topology.is_single_process() {
            let shop = Shop::start(config).await.expect("shop starts");
            let router = shop.router.clone().expect("the monolith serves the gateway");
            let (addr, node) = serve(router, Some(shop)).await;
            (addr, vec![node])
        } else {
            start_cluster(config).await
        };
        TestApp {
            addr,
            http: reqwest::Client::new(),
            setup,
            database,
            bus,
            pg,
            nats,
            dir,
            tweak,
            nodes,
        }
    }

    /// Stops the servers gracefully and starts new ones on the same data directory.
    pub async fn restart(mut self) -> TestApp {
        self.stop().await;
        let (pg, nats) = (self.pg.clone(), self.nats.clone());
        Self::start(self.setup, self.dir.clone(), pg, nats, self.tweak.clone()).await
    }

    pub async fn stop(&mut self) {
        for node in self.nodes.drain(..) {
            let _ = node.stop.send(());
            node.server.await.expect("server task");
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn signing_key_path(&self) -> PathBuf {
        self.data_dir().join("keys").join("token-signing-ed25519.pem")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(path))
    }

    pub fn put(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.put(self.url(path))
    }

    pub fn patch(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.patch(self.url(path))
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.delete(self.url(path))
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let res = self
            .post("/api/v1/auth/login")
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("login request");
        assert_eq!(res.status(), StatusCode::OK, "login of {email}");
        let body: Value = res.json().await.expect("login body");
        body["access_token"].as_str().expect("access_token").to_owned()
    }

    /// Registers a new customer with a unique email and logs in.
    pub async fn register_login(&self) -> TestUser {
        let email = format!("user-{}@test.example", unique());
        let password = "a-good-password".to_owned();
        let res = self
            .post("/api/v1/auth/register")
            .json(&json!({"email": email, "password": password, "name": "Test User"}))
            .send()
            .await
            .expect("register request");
        assert_eq!(res.status(), StatusCode::CREATED, "register {email}");
        let user: Value = res.json().await.expect("register body");
        let token = self.login(&email, &password).await;
        TestUser { id: user["id"].as_str().expect("id").to_owned(), email, password, token }
    }

    pub async fn admin_token(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// All products, following the cursor to the end.
    pub async fn all_products(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut req = self.get("/api/v1/products").query(&[("limit", "7")]);
            if let Some(c) = &cursor {
                req = req.query(&[("cursor", c)]);
            }
            let page: Value = req.send().await.expect("list").json().await.expect("page");
            out.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }

    /// Sets a product's available stock (as admin).
    pub async fn set_stock(&self, admin_token: &str, product: &str, available: i64) {
        let res = self
            .put(&format!("/api/v1/inventory/{product}"))
            .bearer_auth(admin_token)
            .json(&json!({"available": available}))
            .send()
            .await
            .expect("set stock");
        assert_eq!(res.status(), StatusCode::OK, "set stock of {product}");
    }

    /// The public stock level: `{product_id, available, reserved}`.
    pub async fn stock(&self, product: &str) -> Value {
        self.get(&format!("/api/v1/inventory/{product}")).fetch_json().await
    }

    /// Sets the quantity of a product in the user's cart.
    pub async fn add_to_cart(&self, user: &TestUser, product: &str, quantity: i64) {
        let res = self
            .put(&format!("/api/v1/cart/items/{product}"))
            .bearer_auth(&user.token)
            .json(&json!({"quantity": quantity}))
            .send()
            .await
            .expect("cart request");
        assert_eq!(res.status(), StatusCode::OK, "put {product} in the cart");
    }

    /// `POST /api/v1/orders` with `payment_token` and the given `Idempotency-Key`.
    pub async fn place_order(&self, user: &TestUser, token: &str, key: &str) -> reqwest::Response {
        self.post("/api/v1/orders")
            .bearer_auth(&user.token)
            .header("idempotency-key", key)
            .json(&json!({"payment_token": token}))
            .send()
            .await
            .expect("order request")
    }

    /// Places an order with a fresh key, asserts 202 and returns the order's id.
    pub async fn checkout(&self, user: &TestUser, token: &str) -> String {
        let res = self.place_order(user, token, &uuid::Uuid::new_v4().to_string()).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED, "checkout");
        let order: Value = res.json().await.expect("order body");
        order["id"].as_str().expect("order id").to_owned()
    }

    /// Polls the order until it is no longer `pending` (at most 30 s) and returns it.
    pub async fn await_order(&self, user: &TestUser, order: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let o: Value = self
                .get(&format!("/api/v1/orders/{order}"))
                .bearer_auth(&user.token)
                .fetch_json()
                .await;
            if o["status"] != "pending" {
                return o;
            }
            assert!(std::time::Instant::now() < deadline, "order {order} still pending: {o}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Waits (at most 10 s) until the bus owes no delivery, then checks that every event so
    /// far was handled: a dead letter is a failure here, not a settled event.
    pub async fn await_settled(&self) {
        let audit = self.audit().await;
        audit.await_drained().await;
        let dead = audit.dead_letters().await;
        audit.close().await;
        assert!(dead.is_empty(), "events ended as dead letters: {dead:#?}");
    }

    /// Injects the fault `body` (`POST /api/v1/system/faults`) as the admin; returns it.
    pub async fn inject_fault(&self, admin: &str, body: Value) -> Value {
        let res = self.post("/api/v1/system/faults").bearer_auth(admin).json(&body).send().await;
        let res = res.expect("the fault request is answered");
        assert_eq!(res.status(), StatusCode::CREATED, "inject {body}");
        res.json().await.expect("the fault")
    }

    /// Clears every fault as the admin.
    pub async fn clear_faults(&self, admin: &str) {
        let res = self.delete("/api/v1/system/faults").bearer_auth(admin).send().await;
        assert_eq!(res.expect("answered").status(), StatusCode::NO_CONTENT);
    }

    /// Waits (at most 10 s) until `read` no longer answers within 300 ms: a `hang` fault
    /// has reached the process that serves it (a process of its own polls the faults file).
    pub async fn until_hung(&self, read: impl Fn() -> reqwest::RequestBuilder) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while read().timeout(std::time::Duration::from_millis(300)).send().await.is_ok() {
            assert!(std::time::Instant::now() < deadline, "the hang never took effect");
        }
    }

    /// An auditor's read-only view of the module databases in this app's data directory.
    pub async fn audit(&self) -> Audit {
        Audit::open(&self.database, &self.bus, &self.data_dir()).await
    }

    /// A new customer with `quantity` of a seeded product in the cart, the product set to
    /// `stock` available units first; returns the customer and the product's id.
    pub async fn shopper(&self, stock: i64, quantity: i64) -> (TestUser, String) {
        let admin = self.admin_token().await;
        let product = self.any_product_id().await;
        self.set_stock(&admin, &product, stock).await;
        let user = self.register_login().await;
        self.add_to_cart(&user, &product, quantity).await;
        (user, product)
    }

    /// The id of some seeded product.
    pub async fn any_product_id(&self) -> String {
        let page: Value =
            self.get("/api/v1/products").send().await.expect("list").json().await.expect("page");
        page["items"][0]["id"].as_str().expect("a seeded product").to_owned()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for node in self.nodes.drain(..) {
            let _ = node.stop.send(());
        }
    }
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// The `error.code` of an error answer, asserting the envelope's shape on the way.
pub async fn error_code(res: reqwest::Response) -> String {
    let status = res.status();
    let ct =
        res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(ct.starts_with("application/json"), "{status}: content-type {ct:?}");
    let body: Value = res.json().await.expect("json error body");
    let code = body["error"]["code"].as_str().unwrap_or_else(|| panic!("no error.code in {body}"));
    assert!(body["error"]["message"].is_string(), "no error.message in {body}");
    code.to_owned()
}

/// Sends a request and reads its JSON answer, whatever the status (tests assert on it).
pub trait FetchJson {
    fn fetch_json(self) -> impl std::future::Future<Output = Value> + Send;
}

impl FetchJson for reqwest::RequestBuilder {
    async fn fetch_json(self) -> Value {
        self.send().await.expect("request sent").json().await.expect("a JSON answer")
    }
}
