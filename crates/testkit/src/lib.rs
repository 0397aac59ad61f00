//! The test harness: [`TestApp::spawn`] starts the real shop (the same `runtime::Shop` as
//! `microlith up`) on a listener bound to port 0, with a fresh data directory, and offers
//! typed helpers for the common steps (register and log in, act as admin, pick a product).
#![allow(clippy::missing_panics_doc)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use identity_api::Password;
use kernel::Email;
use runtime::{AdminCredentials, Shop, ShopConfig};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use reqwest::StatusCode;

pub const ADMIN_EMAIL: &str = "admin@test.example";
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// A running shop. Dropping it stops the server; the data directory lives as long as the
/// last `TestApp` started on it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    dir: Arc<tempfile::TempDir>,
    tweak: Arc<dyn Fn(&mut ShopConfig) + Send + Sync>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
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
    /// The shop with test-friendly rate limits (high, so only the rate-limit tests hit them).
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// The shop with `tweak` applied to its configuration.
    pub async fn spawn_with(tweak: impl Fn(&mut ShopConfig) + Send + Sync + 'static) -> TestApp {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        Self::start(dir, Arc::new(tweak)).await
    }

    async fn start(
        dir: Arc<tempfile::TempDir>,
        tweak: Arc<dyn Fn(&mut ShopConfig) + Send + Sync>,
    ) -> TestApp {
        let admin = AdminCredentials {
            email: Email::parse(ADMIN_EMAIL).expect("admin email"),
            password: Some(Password::new(ADMIN_PASSWORD.into()).expect("admin password")),
        };
        let mut config = ShopConfig::new(dir.path().join("data"), admin);
        config.gateway.per_user = gateway::RateQuota::new(10_000, 10_000).expect("quota");
        config.gateway.per_address = gateway::RateQuota::new(10_000, 10_000).expect("quota");
        tweak(&mut config);
        let shop = Shop::start(config).await.expect("shop starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let router = shop.router.clone();
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            gateway::serve(listener, router, shutdown).await.expect("server runs");
            shop.close().await;
        });
        TestApp {
            addr,
            http: reqwest::Client::new(),
            dir,
            tweak,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Stops the server gracefully and starts a new one on the same data directory.
    pub async fn restart(mut self) -> TestApp {
        self.stop().await;
        Self::start(self.dir.clone(), self.tweak.clone()).await
    }

    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task");
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

    /// The id of some seeded product.
    pub async fn any_product_id(&self) -> String {
        let page: Value =
            self.get("/api/v1/products").send().await.expect("list").json().await.expect("page");
        page["items"][0]["id"].as_str().expect("a seeded product").to_owned()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
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
