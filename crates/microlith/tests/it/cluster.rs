//! The microservices topology as `microlith up` runs it: real processes, supervised.
//! A replica killed with SIGKILL mid-stream, and payments stopped (SIGSTOP) for 30 s
//! during checkouts.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use super::{Running, up_with};

const ADMIN_PASSWORD: &str = "cluster-test-admin-password";

/// The microservices preset with `replicas` instances of cart, in a file of `dir`.
fn topology_file(dir: &Path, cart_replicas: u16) -> String {
    let mut text = String::from("name = \"test-cluster\"\n");
    for m in ["identity", "catalog", "inventory", "cart", "orders", "payments", "notifications"] {
        let replicas = if m == "cart" { cart_replicas } else { 1 };
        text.push_str(&format!(
            "[[service]]\nname = \"{m}\"\nmodules = [\"{m}\"]\nreplicas = {replicas}\n"
        ));
    }
    let path = dir.join("topology.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn start(dir: &Path, cart_replicas: u16) -> Running {
    start_with(dir, cart_replicas, &[])
}

fn start_with(dir: &Path, cart_replicas: u16, extra: &[&str]) -> Running {
    let topology = topology_file(dir, cart_replicas);
    let mut args = vec![
        "--topology",
        &topology,
        "--rate-limit-user",
        "100000",
        "--rate-limit-user-burst",
        "100000",
        "--rate-limit-address",
        "100000",
        "--rate-limit-address-burst",
        "100000",
        "--call-timeout",
        "2000",
    ];
    args.extend_from_slice(extra);
    up_with(&dir.join("data"), Some(ADMIN_PASSWORD), &args)
}

/// The pid of each instance, from the banner (`  cart-1   http://…   pid 1234   cart`).
fn pids(banner: &[String]) -> HashMap<String, i32> {
    banner
        .iter()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "pid")?;
            Some((words[0].to_owned(), words.get(at + 1)?.parse().ok()?))
        })
        .collect()
}

/// A shopper's or admin's HTTP client of a running shop.
pub(super) struct Client {
    pub(super) http: reqwest::Client,
    pub(super) base: String,
}

impl Client {
    async fn call(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let res = req.send().await.expect("an answer");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(super) async fn user(&self, n: usize) -> String {
        let email = format!("shopper{n}-{}@test.example", uuid::Uuid::new_v4().simple());
        let body = json!({"email": email, "password": "a-good-password", "name": "Shopper"});
        let (status, _) =
            self.call(self.http.post(self.url("/api/v1/auth/register")).json(&body)).await;
        assert_eq!(status, 201);
        self.login(&email, "a-good-password").await
    }

    pub(super) async fn login(&self, email: &str, password: &str) -> String {
        let body = json!({"email": email, "password": password});
        let (status, body) =
            self.call(self.http.post(self.url("/api/v1/auth/login")).json(&body)).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub(super) async fn put_one_in_cart(&self, token: &str, product: &str) {
        let put = self
            .http
            .put(self.url(&format!("/api/v1/cart/items/{product}")))
            .bearer_auth(token)
            .json(&json!({"quantity": 1}));
        assert_eq!(self.call(put).await.0, 200);
    }

    async fn topology(&self, admin: &str) -> Value {
        let (status, body) =
            self.call(self.http.get(self.url("/api/v1/system/topology")).bearer_auth(admin)).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub(super) async fn products(&self) -> Vec<String> {
        let (_, page) = self.call(self.http.get(self.url("/api/v1/products?limit=100"))).await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn instance<'a>(topology: &'a Value, id: &str) -> Option<&'a Value> {
    topology["services"]
        .as_array()?
        .iter()
        .flat_map(|s| s["instances"].as_array().into_iter().flatten())
        .find(|i| i["id"] == id)
}

#[tokio::test]
async fn a_killed_cart_replica_is_restarted_and_requests_go_to_the_healthy_one() {
    let _heavy = super::heavy().await;
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), 2);
    let pids = pids(&running.banner);
    // The supervisor started exactly the processes of the placement plan.
    let topology = runtime::Topology::load(&topology_file(dir.path(), 2)).unwrap();
    let planned: Vec<String> =
        runtime::Plan::of(&topology).at_start().map(|p| p.id.clone()).collect();
    let mut started: Vec<String> = pids.keys().cloned().collect();
    let mut planned_sorted = planned.clone();
    started.sort();
    planned_sorted.sort();
    assert_eq!(started, planned_sorted, "the banner lists the plan's processes");
    // The supervisor made the admin before it started anything: no child, not even
    // identity's, holds the password.
    assert!(pids.contains_key("identity-1") && pids.contains_key("gateway"), "{pids:?}");
    for (id, pid) in &pids {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        let has = String::from_utf8_lossy(&environ).contains(ADMIN_PASSWORD);
        assert!(!has, "{id}: the admin password in its environment");
    }
    let victim = pids["cart-1"];
    let client = Arc::new(Client { http: reqwest::Client::new(), base: running.base.clone() });
    let token = client.user(0).await;
    let product = client.products().await[0].clone();
    client.put_one_in_cart(&token, &product).await;

    // A stream of cart reads from 8 clients, each request with a 5 s client timeout.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (client, token, stop) = (client.clone(), token.clone(), stop.clone());
        let served = served.clone();
        workers.push(tokio::spawn(async move {
            let mut seen: Vec<(Instant, u16, Duration)> = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let started = Instant::now();
                let res = client
                    .http
                    .get(client.url("/api/v1/cart"))
                    .bearer_auth(&token)
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await
                    .expect("no request hangs past its timeout");
                if res.status() == 200 {
                    served.fetch_add(1, Ordering::SeqCst);
                }
                seen.push((started, res.status().as_u16(), started.elapsed()));
            }
            seen
        }));
    }
    // Waits on what was served, not on time: the machine may be slow.
    let until_served = async |n: usize, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while served.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "{what}: {} served", served.load(Ordering::SeqCst));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    until_served(100, "before the kill").await;
    let killed_at = Instant::now();
    kill(Pid::from_raw(victim), Signal::SIGKILL).unwrap();
    let at_kill = served.load(Ordering::SeqCst);
    until_served(at_kill + 200, "requests kept being served by cart-2").await;
    stop.store(true, Ordering::SeqCst);
    let mut seen = Vec::new();
    for w in workers {
        seen.extend(w.await.unwrap());
    }

    let failed: Vec<_> = seen.iter().filter(|(_, status, _)| *status != 200).collect();
    let after_ok = seen.iter().filter(|(at, s, _)| *at > killed_at && *s == 200).count();
    let slowest = seen.iter().map(|(_, _, took)| *took).max().unwrap();
    eprintln!(
        "{} requests, {} failed ({:?}), {after_ok} ok after the kill, slowest {slowest:?}",
        seen.len(),
        failed.len(),
        failed.iter().map(|f| f.1).collect::<Vec<_>>()
    );
    // Only the calls in flight on the killed instance can fail, and they fail as 503.
    assert!(failed.len() <= 8, "{} failed", failed.len());
    assert!(failed.iter().all(|(_, status, _)| *status == 503));
    assert!(after_ok >= 200, "requests kept being served by cart-2: {after_ok}");
    assert!(slowest < Duration::from_secs(3), "every request ended within the 2 s call timeout");

    // The supervisor starts cart-1 again; discovery sends traffic to it once healthy.
    let admin = client.login("boss@test.example", ADMIN_PASSWORD).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let t = client.topology(&admin).await;
        if let Some(i) = instance(&t, "cart-1")
            && i["healthy"] == true
            && i["pid"].as_i64() != Some(i64::from(victim))
        {
            break;
        }
        assert!(Instant::now() < deadline, "cart-1 was not restarted: {t}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for _ in 0..10 {
        let get = client.http.get(client.url("/api/v1/cart")).bearer_auth(&token);
        assert_eq!(client.call(get).await.0, 200);
    }
    drop(running);
}

/// Discovery across machines, as the processes see it: every instance announces itself in
/// the NATS key-value bucket, and the gateway and services route by what the bucket says.
#[tokio::test]
async fn discovery_through_the_nats_key_value_bucket() {
    let _heavy = super::heavy().await;
    let Some(url) = testkit::test_nats().await else { return };
    let namespace = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let dir = tempfile::tempdir().unwrap();
    let running = start_with(dir.path(), 2, &["--discovery", &url, "--namespace", &namespace]);
    let victim = pids(&running.banner)["cart-2"];
    let client = Client { http: reqwest::Client::new(), base: running.base.clone() };

    // A purchase crosses gateway → cart → catalog, orders → cart, and the saga.
    let token = client.user(0).await;
    let product = client.products().await[0].clone();
    client.put_one_in_cart(&token, &product).await;
    let post = client
        .http
        .post(client.url("/api/v1/orders"))
        .bearer_auth(&token)
        .header("idempotency-key", "nats-discovery-1")
        .json(&json!({"payment_token": "tok_visa"}));
    let (status, order) = client.call(post).await;
    assert_eq!(status, 202, "{order}");
    let path = format!("/api/v1/orders/{}", order["id"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, o) = client.call(client.http.get(client.url(&path)).bearer_auth(&token)).await;
        if o["status"] == "confirmed" {
            break;
        }
        assert!(Instant::now() < deadline, "not confirmed: {o}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The gateway's view is the bucket's: every instance, healthy, with its pid.
    let admin = client.login("boss@test.example", ADMIN_PASSWORD).await;
    let t = client.topology(&admin).await;
    assert_eq!(t["infra"]["discovery"], json!(url), "{t}");
    for id in ["identity-1", "catalog-1", "cart-1", "cart-2", "orders-1", "payments-1"] {
        let i = instance(&t, id).unwrap_or_else(|| panic!("{id} is not announced: {t}"));
        assert_eq!(i["healthy"], true, "{id}: {t}");
    }

    // cart-2 dies without withdrawing; its restarted successor takes over the entry.
    kill(Pid::from_raw(victim), Signal::SIGKILL).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let t = client.topology(&admin).await;
        if let Some(i) = instance(&t, "cart-2")
            && i["healthy"] == true
            && i["pid"].as_i64().is_some_and(|p| p != i64::from(victim))
        {
            break;
        }
        assert!(Instant::now() < deadline, "cart-2 was not announced again: {t}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for _ in 0..10 {
        let get = client.http.get(client.url("/api/v1/cart")).bearer_auth(&token);
        assert_eq!(client.call(get).await.0, 200);
    }
    drop(running);
    let js = async_nats::jetstream::new(async_nats::connect(&url).await.unwrap());
    let _ = js.delete_stream(format!("KV_{namespace}_instances")).await;
}

/// A `crash` fault on cart: its process aborts, and again after every restart until the
/// fault expires. Only cart is down meanwhile (the gateway stays ready, reporting cart);
/// after, the supervisor's next start stays up.
#[tokio::test]
async fn a_crash_fault_takes_down_only_its_process_until_it_expires() {
    let _heavy = super::heavy().await;
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), 1);
    let victim = pids(&running.banner)["cart-1"];
    let client = Client { http: reqwest::Client::new(), base: running.base.clone() };
    let token = client.user(0).await;
    let admin = client.login("boss@test.example", ADMIN_PASSWORD).await;
    let product = client.products().await[0].clone();
    let crash = json!({"target": "cart", "kind": "crash", "duration_s": 3});
    let post = client.http.post(client.url("/api/v1/system/faults")).bearer_auth(&admin);
    let (status, body) = client.call(post.json(&crash)).await;
    assert_eq!(status, 201, "{body}");
    // Answered once every process acknowledged it: cart's too, which then aborts.
    assert_eq!(body["not_yet_in"], json!([]), "{body}");
    let injected = Instant::now();

    let (mut cart_down, mut reads, mut reported) = (0, 0, 0);
    while injected.elapsed() < Duration::from_millis(2500) {
        // The edge stays ready for a load balancer: it names cart, it does not go away.
        let (status, health) = client.call(client.http.get(client.url("/readyz"))).await;
        assert_eq!(status, 200, "one service down leaves the gateway ready: {health}");
        if health["degraded"].as_array().is_some_and(|d| d.iter().any(|s| s == "cart")) {
            assert_eq!(health["status"], "degraded", "{health}");
            reported += 1;
        }
        let get = client.http.get(client.url("/api/v1/cart")).bearer_auth(&token);
        let started = Instant::now();
        let (status, _) = client.call(get.timeout(Duration::from_secs(5))).await;
        if status != 200 {
            assert_eq!(status, 503, "cart down is a clear 503");
            assert!(started.elapsed() < Duration::from_secs(3), "and it does not hang");
            cart_down += 1;
        }
        let read = client.http.get(client.url(&format!("/api/v1/products/{product}")));
        assert_eq!(client.call(read).await.0, 200, "catalog is untouched");
        reads += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(cart_down > 0, "cart crashed");
    assert!(reported > 0, "the gateway's /readyz reported cart down");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let get = client.http.get(client.url("/api/v1/cart")).bearer_auth(&token);
        if client.call(get).await.0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "cart did not come back after the fault expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let t = client.topology(&admin).await;
    let cart = instance(&t, "cart-1").unwrap_or_else(|| panic!("{t}"));
    assert_ne!(cart["pid"].as_i64(), Some(i64::from(victim)), "a new process: {t}");
    eprintln!("{cart_down} cart requests refused, {reads} catalog reads served meanwhile");
    drop(running);
}

/// One shopper: a product in the cart, an order with a fresh key, again, until `stop`.
/// Returns (order id, when it was accepted) for every 202.
async fn checkouts(
    client: Arc<Client>,
    token: String,
    products: Vec<String>,
    stop: Arc<AtomicBool>,
) -> Vec<(String, Instant)> {
    let mut placed = Vec::new();
    let mut n = 0usize;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let product = &products[n % products.len()];
        client.put_one_in_cart(&token, product).await;
        let post = client
            .http
            .post(client.url("/api/v1/orders"))
            .bearer_auth(&token)
            .header("idempotency-key", uuid::Uuid::new_v4().to_string())
            .json(&json!({"payment_token": "tok_visa"}));
        let (status, body) = client.call(post).await;
        assert_eq!(status, 202, "orders keep being accepted: {body}");
        placed.push((body["id"].as_str().unwrap().to_owned(), Instant::now()));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    placed
}

#[tokio::test]
async fn checkouts_wait_while_payments_is_stopped_and_all_complete_after() {
    let _heavy = super::heavy().await;
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), 1);
    let payments = Pid::from_raw(pids(&running.banner)["payments-1"]);
    let client = Arc::new(Client { http: reqwest::Client::new(), base: running.base.clone() });
    let products: Vec<String> = client.products().await.into_iter().take(8).collect();
    // Enough stock that held reservations do not run it out while payments is away.
    let admin = client.login("boss@test.example", ADMIN_PASSWORD).await;
    for p in &products {
        let put = client
            .http
            .put(client.url(&format!("/api/v1/inventory/{p}")))
            .bearer_auth(&admin)
            .json(&json!({"available": 100_000}));
        assert_eq!(client.call(put).await.0, 200);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut shoppers = Vec::new();
    let mut tokens = Vec::new();
    for n in 0..4 {
        let token = client.user(n).await;
        tokens.push(token.clone());
        let (client, products, stop) = (client.clone(), products.clone(), stop.clone());
        shoppers.push(tokio::spawn(checkouts(client, token, products, stop)));
    }

    tokio::time::sleep(Duration::from_secs(2)).await;
    kill(payments, Signal::SIGSTOP).unwrap();
    let stopped_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(28)).await;
    // Still stopped: what was accepted meanwhile waits, pending.
    let mut pending = 0;
    for token in &tokens {
        let (_, page) = client
            .call(client.http.get(client.url("/api/v1/orders?limit=5")).bearer_auth(token))
            .await;
        pending +=
            page["items"].as_array().unwrap().iter().filter(|o| o["status"] == "pending").count();
    }
    assert!(pending >= 4, "orders accepted while payments is down wait pending: {pending}");
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(stopped_at.elapsed())).await;
    kill(payments, Signal::SIGCONT).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let mut placed = Vec::new();
    for s in shoppers {
        placed.extend(s.await.unwrap());
    }
    let during = placed
        .iter()
        .filter(|(_, at)| {
            *at > stopped_at && at.duration_since(stopped_at) < Duration::from_secs(30)
        })
        .count();
    assert!(during >= 20, "checkouts went on while payments was stopped: {during}");

    // Every accepted order finishes once payments is back.
    let data = dir.path().join("data");
    let embedded = (runtime::BusKind::Embedded, String::new());
    let audit = testkit::Audit::open(&runtime::Database::Sqlite, &embedded, &data).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let orders = loop {
        let orders: HashMap<String, String> = audit.orders().await.into_iter().collect();
        if orders.values().all(|s| s != "pending") {
            break orders;
        }
        assert!(Instant::now() < deadline, "orders still pending 90 s after payments returned");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // With 100,000 units and a good card, every order is confirmed and charged once: a
    // payments that was only stopped loses nothing and charges nothing twice.
    for (id, _) in &placed {
        let status = orders.get(id).unwrap_or_else(|| panic!("accepted order {id} was lost"));
        assert_eq!(status, "confirmed", "{id}");
        assert_eq!(audit.captures(id).await, 1, "{id}");
    }
    let answered: std::collections::HashSet<&String> = placed.iter().map(|(id, _)| id).collect();
    let extra: Vec<&String> = orders.keys().filter(|id| !answered.contains(id)).collect();
    assert!(extra.is_empty(), "orders no checkout answered with: {extra:?}");
    // Confirmation is followed by one more hop (inventory sells the reserved units).
    while audit.backlog().await > 0 {
        assert!(Instant::now() < deadline, "the bus did not drain");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let dead = audit.dead_letters().await;
    assert!(dead.is_empty(), "events ended as dead letters: {dead:#?}");
    for p in &products {
        let s = audit.stock(p).await;
        assert_eq!(s.available + s.reserved + s.sold, s.adjusted, "{p}: {s:?}");
        assert_eq!(s.reserved, 0, "{p}");
        assert_eq!(s.sold, audit.confirmed_units(p).await, "{p}");
    }
    eprintln!("{} orders, all confirmed, {during} placed while payments was stopped", placed.len());
    audit.close().await;
    drop(running);
}

/// A burst of 20 concurrent logins keeps identity's peak resident memory (VmHWM) under
/// 100 MiB, well inside a 128 MB function: argon2id works in 19 MiB per hash (OWASP's
/// parameters), so identity hashes on a few threads, each reusing its memory (it peaked
/// at 420 MiB before).
#[tokio::test]
async fn a_login_burst_keeps_identitys_memory_bounded() {
    let _heavy = super::heavy().await;
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), 1);
    let identity = pids(&running.banner)["identity-1"];
    let client = Arc::new(Client { http: reqwest::Client::new(), base: running.base.clone() });
    let logins: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.login("boss@test.example", ADMIN_PASSWORD).await })
        })
        .collect();
    for login in logins {
        assert!(!login.await.unwrap().is_empty());
    }
    let status = std::fs::read_to_string(format!("/proc/{identity}/status")).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"));
    eprintln!("identity's peak RSS through 20 concurrent logins: {} MiB", peak_kib / 1024);
    assert!(peak_kib < 100 * 1024, "identity peaked at {} MiB", peak_kib / 1024);
    drop(running);
}
