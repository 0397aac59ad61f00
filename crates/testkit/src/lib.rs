//! The test harness: [`TestApp::spawn`] starts the real shop (the same `runtime::Shop` as
//! `microlith up`) on a listener bound to port 0, with a fresh data directory, and offers
//! typed helpers for the common steps (register and log in, act as admin, pick a product).
#![allow(clippy::missing_panics_doc)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt as _;
use identity_api::Password;
use kernel::Email;
use runtime::{
    AdminCredentials, BusKind, Database, Instance, ProcessRole, Registry, Shop, ShopConfig,
    Topology,
};
use serde_json::{Value, json};
use sqlx::Row as _;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use reqwest::StatusCode;

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

/// The NATS server tests use: `MICROLITH_TEST_NATS`, default the local one. `None` (with a
/// notice) when it does not answer, except under `CI`, where that is a failure.
pub async fn test_nats() -> Option<String> {
    let url =
        std::env::var("MICROLITH_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let reachable =
        tokio::time::timeout(std::time::Duration::from_secs(3), async_nats::connect(&url)).await;
    match reachable {
        Ok(Ok(client)) => {
            keep_store_directory(client).await;
            Some(url)
        }
        Ok(Err(e)) => unreachable_service("NATS", &url, &e.to_string()),
        Err(_) => unreachable_service("NATS", &url, "no answer within 3 s"),
    }
}

/// Makes sure the server keeps one stream of its own, never deleted. NATS 2.9 removes an
/// account's store directory when its last stream is deleted; a stream created at that
/// moment fails with "could not create storage directory" (10077). Tests create and delete
/// their namespaces' streams in parallel, so without a stream that stays they can hit it.
/// The anchor stays on the server for later runs (and other test binaries) too.
async fn keep_store_directory(client: async_nats::Client) {
    let js = async_nats::jetstream::new(client);
    let anchor = async_nats::jetstream::stream::Config {
        name: "MICROLITH_TEST_ANCHOR".into(),
        subjects: vec!["microlith-test-anchor".into()],
        max_messages: 1,
        ..Default::default()
    };
    if let Err(e) = js.get_or_create_stream(anchor).await {
        skip_notice(&format!("cannot keep the NATS store directory: {e}"));
    }
}

/// The streams of one test's bus namespace; deleted when the last handle goes.
struct NatsNamespace {
    url: String,
    name: String,
}

impl Drop for NatsNamespace {
    fn drop(&mut self) {
        let (url, prefix) = (self.url.clone(), format!("{}_", self.name.to_uppercase()));
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async {
                let Ok(client) = async_nats::connect(&url).await else { return };
                let js = async_nats::jetstream::new(client);
                let names: Vec<String> =
                    js.stream_names().filter_map(async |n| n.ok()).collect().await;
                for name in names.into_iter().filter(|n| n.starts_with(&prefix)) {
                    let _ = js.delete_stream(&name).await;
                }
            });
        })
        .join();
    }
}

/// The PostgreSQL server tests use: `MICROLITH_TEST_PG`, default the local one. `None`
/// (with a notice) when it does not answer, except under `CI`, where that is a failure.
pub async fn test_postgres() -> Option<String> {
    let url = std::env::var("MICROLITH_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    sqlx::any::install_default_drivers();
    let reachable = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        sqlx::any::AnyPoolOptions::new().max_connections(1).connect(&url),
    )
    .await;
    match reachable {
        Ok(Ok(pool)) => {
            pool.close().await;
            Some(url)
        }
        Ok(Err(e)) => unreachable_service("PostgreSQL", &url, &e.to_string()),
        Err(_) => unreachable_service("PostgreSQL", &url, "no answer within 3 s"),
    }
}

fn unreachable_service(what: &str, url: &str, why: &str) -> Option<String> {
    if std::env::var_os("CI").is_some() {
        panic!("{what} at {url} is required under CI: {why}");
    }
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    skip_notice(&format!("{test} skipped: {what} at {url} is unreachable ({why})"));
    None
}

/// Prints `line` where the test runner shows it: straight to the process's stderr, which
/// the runner does not capture (it captures only `print!`/`eprint!` of the test thread).
pub fn skip_notice(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "notice: {line}");
}

/// Ends a test binary whose every test needs a server that is not there, with one closing
/// line that says how many tests were skipped and why (the runner's own summary never
/// comes). Runs before any test has done work: every test checks first.
fn skip_binary(why: &str) -> ! {
    let listed = std::env::current_exe().ok().and_then(|exe| {
        let out = std::process::Command::new(exe).args(["--list", "--format=terse"]).output();
        out.ok().map(|o| {
            String::from_utf8_lossy(&o.stdout).lines().filter(|l| l.ends_with(": test")).count()
        })
    });
    let count = listed.map_or_else(|| "all".to_owned(), |n| n.to_string());
    skip_notice(&format!("test result: skipped. {count} tests not run: {why}"));
    std::process::exit(0)
}

/// A fresh database on the test server's URL: `…/microlith_test_<random>`.
fn fresh_database(server: &str) -> (String, String) {
    let name = format!("microlith_test_{}", uuid::Uuid::new_v4().simple());
    let base = server.rsplit_once('/').map_or(server, |(b, _)| b);
    (format!("{base}/{name}"), name)
}

/// Drops a test database (best effort; from a thread of its own because `Drop` cannot wait).
fn drop_database(url: String, name: String) {
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        rt.block_on(async {
            let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
            let maintenance = format!("{base}/postgres");
            if let Ok(pool) =
                sqlx::any::AnyPoolOptions::new().max_connections(1).connect(&maintenance).await
            {
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
                pool.close().await;
            }
        });
    })
    .join();
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

/// A PostgreSQL database made for one test; dropped when the last handle goes.
struct PgDatabase {
    url: String,
    name: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        drop_database(self.url.clone(), self.name.clone());
    }
}

/// One served process of the shop.
struct Node {
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

/// Serves `router` on a fresh loopback port until stopped, then closes `shop`.
async fn serve(router: axum::Router, shop: Option<Shop>) -> (SocketAddr, Node) {
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
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let (pg, nats) = match setup {
            Setup::MicroservicesPgNats => {
                let (Some(pg), Some(nats)) = (test_postgres().await, test_nats().await) else {
                    skip_binary("it needs PostgreSQL and NATS (set CI to make this a failure)");
                };
                let (url, name) = fresh_database(&pg);
                let namespace = format!("t{}", uuid::Uuid::new_v4().simple());
                (
                    Some(Arc::new(PgDatabase { url, name })),
                    Some(Arc::new(NatsNamespace { url: nats, name: namespace })),
                )
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

/// Reads module databases directly, as an auditor would, to check what the public API
/// cannot show: units sold, charges the card provider made, events the bus stored.
pub struct Audit {
    identity: store::Db,
    orders: store::Db,
    payments: store::Db,
    inventory: store::Db,
    provider: store::Db,
    bus: BusView,
}

/// Where the audit reads the bus's state.
enum BusView {
    Embedded(store::Db),
    Nats { js: async_nats::jetstream::Context, ns: String },
}

impl BusView {
    /// The namespace's event streams, each with its consumers' names.
    async fn nats_streams(
        js: &async_nats::jetstream::Context,
        ns: &str,
    ) -> Vec<(async_nats::jetstream::stream::Stream, Vec<String>)> {
        let prefix = format!("{}_", ns.to_uppercase());
        let names: Vec<String> = js.stream_names().filter_map(async |n| n.ok()).collect().await;
        let mut out = Vec::new();
        for name in names.into_iter().filter(|n| n.starts_with(&prefix)) {
            let stream = js.get_stream(&name).await.expect("stream");
            let consumers: Vec<String> =
                stream.consumer_names().filter_map(async |n| n.ok()).collect().await;
            out.push((stream, consumers));
        }
        out
    }
}

/// One product's stock row: `available + reserved + sold = adjusted` must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockRow {
    pub available: i64,
    pub reserved: i64,
    pub sold: i64,
    /// The sum of every restock.
    pub adjusted: i64,
}

impl Audit {
    /// The databases of a shop whose modules use `database` and whose bus is `bus` (with its
    /// namespace), with its data directory.
    pub async fn open(
        database: &Database,
        bus: &(BusKind, String),
        data_dir: &std::path::Path,
    ) -> Audit {
        let open = async |name: &'static str| runtime::open_db(database, data_dir, name).await;
        Audit {
            identity: open("identity").await.expect("identity db"),
            orders: open("orders").await.expect("orders db"),
            payments: open("payments").await.expect("payments db"),
            inventory: open("inventory").await.expect("inventory db"),
            provider: open(runtime::plan::PROVIDER_DATABASE).await.expect("provider db"),
            bus: match &bus.0 {
                // The embedded broker is a SQLite file whatever the modules use.
                BusKind::Embedded => BusView::Embedded(
                    runtime::open_db(&Database::Sqlite, data_dir, runtime::plan::BUS_DATABASE)
                        .await
                        .expect("bus db"),
                ),
                BusKind::Nats(url) => BusView::Nats {
                    js: async_nats::jetstream::new(
                        async_nats::connect(url).await.expect("nats connects"),
                    ),
                    ns: bus.1.clone(),
                },
            },
        }
    }

    pub async fn stock(&self, product: &str) -> StockRow {
        let row = sqlx::query(
            "SELECT available, reserved, sold, adjusted FROM stock WHERE product_id = $1",
        )
        .bind(product)
        .fetch_one(self.inventory.pool())
        .await
        .expect("stock row");
        StockRow {
            available: row.get("available"),
            reserved: row.get("reserved"),
            sold: row.get("sold"),
            adjusted: row.get("adjusted"),
        }
    }

    /// Every order's id and status (`cancelled:<reason>` for a cancelled one).
    pub async fn orders(&self) -> Vec<(String, String)> {
        sqlx::query(
            "SELECT id, CASE WHEN status = 'cancelled' THEN 'cancelled:' || cancel_reason \
             ELSE status END AS status FROM orders ORDER BY id",
        )
        .fetch_all(self.orders.pool())
        .await
        .expect("orders")
        .iter()
        .map(|r| (r.get("id"), r.get("status")))
        .collect()
    }

    /// Units of `product` in confirmed orders: what inventory must have sold.
    pub async fn confirmed_units(&self, product: &str) -> i64 {
        sqlx::query(
            "SELECT CAST(COALESCE(SUM(i.quantity), 0) AS BIGINT) AS n FROM order_items i \
             JOIN orders o ON o.id = i.order_id WHERE o.status = 'confirmed' AND i.product_id = $1",
        )
        .bind(product)
        .fetch_one(self.orders.pool())
        .await
        .expect("confirmed units")
        .get("n")
    }

    /// Successful charges the card provider made for `order`.
    pub async fn captures(&self, order: &str) -> i64 {
        sqlx::query(
            "SELECT COUNT(*) AS n FROM provider_charges WHERE order_ref = $1 AND outcome = 'succeeded'",
        )
        .bind(order)
        .fetch_one(self.provider.pool())
        .await
        .expect("provider charges")
        .get("n")
    }

    /// What payments recorded for `order`: its status, if it recorded anything. A payments
    /// module that never started (a function never invoked) has no table yet: nothing.
    pub async fn payment(&self, order: &str) -> Option<String> {
        match sqlx::query("SELECT status FROM payments WHERE order_id = $1")
            .bind(order)
            .fetch_optional(self.payments.pool())
            .await
        {
            Ok(row) => row.map(|r| r.get("status")),
            Err(e) if is_missing_table(&e) => None,
            Err(e) => panic!("payments: {e}"),
        }
    }

    /// Successful charges for `order` that the card provider gave back.
    pub async fn refunds(&self, order: &str) -> i64 {
        sqlx::query(
            "SELECT COUNT(*) AS n FROM provider_charges \
             WHERE order_ref = $1 AND outcome = 'succeeded' AND refunded_at IS NOT NULL",
        )
        .bind(order)
        .fetch_one(self.provider.pool())
        .await
        .expect("provider refunds")
        .get("n")
    }

    /// Every (subscriber, event id) the bus owes or owed a delivery of.
    pub async fn deliveries(&self) -> Vec<(String, String)> {
        match &self.bus {
            BusView::Embedded(db) => sqlx::query(
                "SELECT s.subscriber, m.id FROM bus_messages m \
                 JOIN bus_subscriptions s ON s.event_type = m.event_type ORDER BY m.id",
            )
            .fetch_all(db.pool())
            .await
            .expect("bus messages")
            .iter()
            .map(|r| (r.get("subscriber"), r.get("id")))
            .collect(),
            // Events are stored on `ns.ev.<domain>.<event>.<id>`; each subscriber has a
            // consumer `<subscriber>__<domain>_<event>`.
            BusView::Nats { js, ns } => {
                let mut out = Vec::new();
                for (stream, consumers) in BusView::nats_streams(js, ns).await {
                    let subjects: Vec<String> = stream
                        .info_with_subjects(format!("{ns}.ev.>"))
                        .await
                        .expect("subjects")
                        .filter_map(async |r| r.ok().map(|(s, _)| s))
                        .collect()
                        .await;
                    for subject in subjects {
                        let parts: Vec<&str> = subject.split('.').collect();
                        let [_, "ev", domain, event, id] = parts[..] else { continue };
                        let suffix = format!("__{domain}_{event}");
                        for c in &consumers {
                            if let Some(subscriber) = c.strip_suffix(&suffix) {
                                out.push((subscriber.to_owned(), id.to_owned()));
                            }
                        }
                    }
                }
                out.sort();
                out
            }
        }
    }

    /// Waits (at most 10 s) until the bus owes no delivery; dead letters are not owed.
    pub async fn await_drained(&self) {
        for _ in 0..400 {
            if self.backlog().await == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the bus did not drain within 10 s");
    }

    /// Every dead letter, as `subscriber event_type: last error` (the subject on NATS).
    pub async fn dead_letters(&self) -> Vec<String> {
        match &self.bus {
            BusView::Embedded(db) => sqlx::query(
                "SELECT d.subscriber, m.event_type, d.last_error FROM bus_dead_letters d \
                 JOIN bus_messages m ON m.id = d.event_id ORDER BY d.dead_at",
            )
            .fetch_all(db.pool())
            .await
            .expect("dead letters")
            .iter()
            .map(|r| {
                let (s, t, e): (String, String, String) =
                    (r.get("subscriber"), r.get("event_type"), r.get("last_error"));
                format!("{s} {t}: {e}")
            })
            .collect(),
            BusView::Nats { js, ns } => {
                let Ok(stream) = js.get_stream(format!("{}_DLQ", ns.to_uppercase())).await else {
                    return Vec::new(); // no dead letter was ever written
                };
                stream
                    .info_with_subjects(format!("{ns}.dlq.>"))
                    .await
                    .expect("dead-letter subjects")
                    .filter_map(async |r| r.ok().map(|(s, _)| s))
                    .collect()
                    .await
            }
        }
    }

    /// Events still owed: written to a module's outbox and not yet published, or published
    /// and not yet handled by every subscriber (0 once the saga has settled).
    pub async fn backlog(&self) -> i64 {
        let mut unsent = 0;
        for db in [&self.identity, &self.inventory, &self.orders, &self.payments] {
            let query = sqlx::query("SELECT COUNT(*) AS n FROM bus_outbox WHERE sent_at IS NULL");
            match query.fetch_one(db.pool()).await {
                Ok(row) => unsent += row.get::<i64, _>("n"),
                // A module that never ran (a function never invoked) has no outbox yet.
                Err(e) if is_missing_table(&e) => {}
                Err(e) => panic!("outbox: {e}"),
            }
        }
        unsent + self.undelivered().await
    }

    /// Deliveries the bus still owes.
    async fn undelivered(&self) -> i64 {
        match &self.bus {
            BusView::Embedded(db) => sqlx::query("SELECT COUNT(*) AS n FROM bus_deliveries")
                .fetch_one(db.pool())
                .await
                .expect("bus deliveries")
                .get("n"),
            BusView::Nats { js, ns } => {
                let mut owed = 0;
                for (stream, consumers) in BusView::nats_streams(js, ns).await {
                    for c in consumers {
                        let info = stream.consumer_info(&c).await.expect("consumer info");
                        owed += info.num_pending as i64 + info.num_ack_pending as i64;
                    }
                }
                owed
            }
        }
    }

    pub async fn close(self) {
        self.identity.close().await;
        self.orders.close().await;
        self.payments.close().await;
        self.inventory.close().await;
        self.provider.close().await;
        if let BusView::Embedded(db) = self.bus {
            db.close().await;
        }
    }
}

/// SQLite's "no such table" or PostgreSQL's `undefined_table` (42P01).
fn is_missing_table(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| {
        d.code().as_deref() == Some("42P01") || d.message().contains("no such table")
    })
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
async fn start_cluster(config: ShopConfig) -> (SocketAddr, Vec<Node>) {
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
