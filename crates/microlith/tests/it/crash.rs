//! Crash safety: `microlith up` killed with SIGKILL at random moments while shoppers check
//! out, restarted on the same data directory each time. Afterwards every order is
//! `confirmed` or `cancelled`, no order was charged twice, and per product
//! `available + reserved + sold = adjusted` (the initial stock plus every restock) with
//! `sold` equal to the units of confirmed orders.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rand::Rng as _;
use serde_json::{Value, json};

use super::{Running, stop, up_with};

const KILLS: usize = 24;
const SHOPPERS: usize = 6;
const ADMIN_PASSWORD: &str = "crash-test-admin-password";

fn start(data: &Path) -> Running {
    up_with(
        data,
        Some(ADMIN_PASSWORD),
        &["--rate-limit-user", "100000", "--rate-limit-address", "100000"],
    )
}

/// Where the shop currently listens; every restart gets a new port.
#[derive(Clone)]
struct Shop {
    base: Arc<RwLock<String>>,
    http: reqwest::Client,
}

impl Shop {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.read().unwrap())
    }

    /// Sends until an answer arrives: while the process is down, a request fails to
    /// connect (or loses its connection) and is sent again, as a careful client would.
    async fn send(&self, build: impl Fn(&Shop) -> reqwest::RequestBuilder) -> (u16, Value) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(res) = build(self).timeout(Duration::from_secs(10)).send().await {
                let status = res.status().as_u16();
                if let Ok(body) = res.json::<Value>().await
                    && status != 503
                {
                    return (status, body);
                }
            }
            assert!(Instant::now() < deadline, "no answer for 60 s");
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
}

async fn login(shop: &Shop, email: &str, password: &str) -> String {
    let (status, body) = shop
        .send(|s| {
            s.http
                .post(s.url("/api/v1/auth/login"))
                .json(&json!({"email": email, "password": password}))
        })
        .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// One shopper: put a product in the cart, check out with a fresh key (retrying that same
/// key through crashes), wait until the order is finished, repeat.
async fn shopper(
    shop: Shop,
    token: String,
    products: Vec<String>,
    stop: Arc<AtomicBool>,
) -> Vec<String> {
    let mut orders = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let product = products[rand::thread_rng().gen_range(0..products.len())].clone();
        let quantity = rand::thread_rng().gen_range(1..=3);
        let (status, body) = shop
            .send(|s| {
                s.http
                    .put(s.url(&format!("/api/v1/cart/items/{product}")))
                    .bearer_auth(&token)
                    .json(&json!({"quantity": quantity}))
            })
            .await;
        assert_eq!(status, 200, "{body}");
        let key = uuid::Uuid::new_v4().to_string();
        let card = if rand::thread_rng().gen_bool(0.2) { "tok_chargeDeclined" } else { "tok_visa" };
        let (status, body) = shop
            .send(|s| {
                s.http
                    .post(s.url("/api/v1/orders"))
                    .bearer_auth(&token)
                    .header("idempotency-key", &key)
                    .json(&json!({"payment_token": card}))
            })
            .await;
        match status {
            202 => {
                let id = body["id"].as_str().unwrap().to_owned();
                // Wait for the saga, through crashes, before the next purchase.
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    let (_, order) = shop
                        .send(|s| {
                            s.http.get(s.url(&format!("/api/v1/orders/{id}"))).bearer_auth(&token)
                        })
                        .await;
                    if order["status"] != "pending" || stop.load(Ordering::SeqCst) {
                        break;
                    }
                    assert!(Instant::now() < deadline, "order {id} pending for 60 s");
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
                orders.push(id);
            }
            // A confirmation of the previous order may have taken this line out of the cart.
            409 => assert_eq!(body["error"]["code"], "cart_empty", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    orders
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_checkouts_loses_nothing_and_charges_once() {
    let _heavy = super::heavy().await;
    let dir = tempfile::tempdir().unwrap();
    let data: PathBuf = dir.path().join("data");
    let first = start(&data);
    let shop =
        Shop { base: Arc::new(RwLock::new(first.base.clone())), http: reqwest::Client::new() };

    // A few products with small stock, so some orders also run out.
    let admin = login(&shop, "boss@test.example", ADMIN_PASSWORD).await;
    let (_, page) = shop.send(|s| s.http.get(s.url("/api/v1/products?limit=3"))).await;
    let products: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    for p in &products {
        let (status, _) = shop
            .send(|s| {
                s.http
                    .put(s.url(&format!("/api/v1/inventory/{p}")))
                    .bearer_auth(&admin)
                    .json(&json!({"available": 150}))
            })
            .await;
        assert_eq!(status, 200);
    }
    let mut tokens = Vec::new();
    for i in 0..SHOPPERS {
        let email = format!("shopper{i}@test.example");
        let (status, _) = shop
            .send(|s| {
                s.http.post(s.url("/api/v1/auth/register")).json(
                    &json!({"email": email, "password": "shopper-password", "name": "Shopper"}),
                )
            })
            .await;
        assert_eq!(status, 201);
        tokens.push(login(&shop, &email, "shopper-password").await);
    }

    let stop_flag = Arc::new(AtomicBool::new(false));
    let mut shoppers = Vec::new();
    for token in tokens.clone() {
        shoppers.push(tokio::spawn(shopper(
            shop.clone(),
            token,
            products.clone(),
            stop_flag.clone(),
        )));
    }

    // The killer: let the shop run a random while, SIGKILL it, start it again.
    let kills = Arc::new(AtomicUsize::new(0));
    let killer = {
        let (data, base, kills) = (data.clone(), shop.base.clone(), kills.clone());
        tokio::task::spawn_blocking(move || {
            let mut running = first;
            for _ in 0..KILLS {
                let ms = rand::thread_rng().gen_range(30..600);
                std::thread::sleep(Duration::from_millis(ms));
                running.kill_hard(); // SIGKILL: no shutdown code runs
                kills.fetch_add(1, Ordering::SeqCst);
                running = start(&data);
                *base.write().unwrap() = running.base.clone();
            }
            running
        })
    };
    let last = killer.await.unwrap();
    assert_eq!(kills.load(Ordering::SeqCst), KILLS);
    stop_flag.store(true, Ordering::SeqCst);
    let mut seen = HashSet::new();
    for s in shoppers {
        for id in s.await.unwrap() {
            assert!(seen.insert(id.clone()), "two checkouts answered with one order {id}");
        }
    }
    assert!(seen.len() >= 10, "the stream placed orders: {}", seen.len());

    // After the last restart, with nothing killed any more, every saga finishes.
    let embedded = (runtime::BusKind::Embedded, String::new());
    let audit = testkit::Audit::open(&runtime::Database::Sqlite, &embedded, &data).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let orders = audit.orders().await;
        let pending = orders.iter().filter(|(_, s)| s == "pending").count();
        if pending == 0 && audit.backlog().await == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{pending} orders still pending after 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop(last);

    let orders: HashMap<String, String> = audit.orders().await.into_iter().collect();
    for id in &seen {
        assert!(orders.contains_key(id), "an acknowledged order {id} was lost");
    }
    // Each shopper retries one key until it gets an answer before it makes another, and
    // every 202 names an order: so the orders are exactly those answers. One more is a key
    // that made a second order (a customer charged twice).
    let extra: Vec<&String> = orders.keys().filter(|id| !seen.contains(*id)).collect();
    assert!(extra.is_empty(), "orders no checkout answered with (a key used twice?): {extra:?}");
    let dead = audit.dead_letters().await;
    assert!(dead.is_empty(), "events ended as dead letters: {dead:#?}");
    let (mut confirmed, mut cancelled) = (0, HashMap::<&str, usize>::new());
    for (id, status) in &orders {
        let captures = audit.captures(id).await;
        match status.as_str() {
            "confirmed" => {
                confirmed += 1;
                assert_eq!(captures, 1, "confirmed order {id} charged {captures} times");
            }
            s if s.starts_with("cancelled:") => {
                *cancelled.entry(&s["cancelled:".len()..]).or_default() += 1;
                assert_eq!(captures, 0, "cancelled order {id} was charged");
            }
            other => panic!("order {id} ended {other}"),
        }
    }
    for p in &products {
        let row = audit.stock(p).await;
        assert!(row.available >= 0 && row.reserved >= 0 && row.sold >= 0, "{row:?}");
        assert_eq!(row.reserved, 0, "nothing stays held: {row:?}");
        assert_eq!(row.available + row.reserved + row.sold, row.adjusted, "{row:?}");
        assert_eq!(row.sold, audit.confirmed_units(p).await, "sold = confirmed units of {p}");
    }
    println!(
        "{KILLS} SIGKILLs, {} orders: {confirmed} confirmed, cancelled: {cancelled:?}",
        orders.len()
    );
}
