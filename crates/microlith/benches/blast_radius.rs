//! The blast radius of a failing module: for each module made to fail (errors on 100% of
//! calls, a hang, a crash of its process), the success rate of each public endpoint group
//! while the fault is in force, on `monolith` and on `microservices`.
//!
//! Each cell is a fresh `microlith up` (release binary, real processes): users, carts and
//! orders set up first, the fault injected through `POST /api/v1/system/faults`, then
//! `BLAST_WORKERS` clients cycle through the endpoint groups for `BLAST_SECS` seconds. A
//! request succeeds with a 2xx within `BLAST_TIMEOUT_MS`; a stale product read counts as a
//! success (that is the fallback working) and is reported apart.
//!
//! ```text
//! cargo bench -p microlith --bench blast_radius
//! BLAST_SECS=5 BLAST_TOPOLOGIES=microservices cargo bench -p microlith --bench blast_radius
//! ```

// Shared with the topologies bench, which reads fields this one does not.
#[allow(dead_code)]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const MODULES: [&str; 7] =
    ["identity", "catalog", "inventory", "cart", "orders", "payments", "notifications"];
const KINDS: [&str; 3] = ["error", "hang", "crash"];
const GROUPS: [&str; 7] =
    ["auth", "catalog", "inventory", "cart", "orders", "payments", "notifications"];

struct Settings {
    secs: u64,
    workers: usize,
    timeout: Duration,
    topologies: Vec<String>,
    modules: Vec<String>,
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let list = |name: &str, default: &str| -> Vec<String> {
        std::env::var(name).unwrap_or_else(|_| default.into()).split(',').map(Into::into).collect()
    };
    let settings = if bench {
        Settings {
            secs: env("BLAST_SECS", 4),
            workers: env("BLAST_WORKERS", 4) as usize,
            timeout: Duration::from_millis(env("BLAST_TIMEOUT_MS", 2000)),
            topologies: list("BLAST_TOPOLOGIES", "monolith,microservices"),
            modules: list("BLAST_MODULES", &MODULES.join(",")),
        }
    } else {
        // `cargo test --benches`: one cell, to keep the scenario working.
        Settings {
            secs: 1,
            workers: 2,
            timeout: Duration::from_millis(2000),
            topologies: vec!["monolith".into()],
            modules: vec!["payments".into()],
        }
    };
    let kinds: Vec<&str> = if bench { KINDS.to_vec() } else { vec!["error"] };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        for topology in &settings.topologies {
            println!("\n## {topology}: success rate per endpoint group while one module fails");
            println!(
                "(each row a fresh start; {} s of load from {} clients)\n",
                settings.secs, settings.workers
            );
            let mut header = format!("| {:<22} |", "fault");
            for g in GROUPS {
                header.push_str(&format!(" {g:>13} |"));
            }
            println!("{header}");
            println!("|{}|", vec!["---"; GROUPS.len() + 1].join("|"));
            let none = cell(topology, None, &settings).await;
            println!("{}", row("none", &none));
            for module in &settings.modules {
                for kind in &kinds {
                    let r = cell(topology, Some((module, kind)), &settings).await;
                    println!("{}", row(&format!("{module} {kind}"), &r));
                }
            }
        }
    });
}

/// Per group: (requests, successes, of which stale).
type Tally = BTreeMap<&'static str, (u64, u64, u64)>;

fn row(label: &str, t: &Tally) -> String {
    let mut line = format!("| {label:<22} |");
    for g in GROUPS {
        let (n, ok, stale) = t.get(g).copied().unwrap_or_default();
        let cell = if n == 0 {
            "-".to_owned()
        } else {
            let pct = 100.0 * ok as f64 / n as f64;
            if stale > 0 { format!("{pct:.0}% ({stale} stale)") } else { format!("{pct:.0}%") }
        };
        line.push_str(&format!(" {cell:>13} |"));
    }
    line
}

struct Shopper {
    email: String,
    token: String,
}

struct Shop {
    http: reqwest::Client,
    base: String,
    admin: String,
    products: Vec<String>,
    shoppers: Vec<Shopper>,
}

async fn send(req: reqwest::RequestBuilder) -> Option<(u16, bool, Value)> {
    let res = req.send().await.ok()?;
    let status = res.status().as_u16();
    let stale = res.headers().contains_key("x-microlith-stale");
    Some((status, stale, res.json().await.unwrap_or(Value::Null)))
}

async fn prepare(base: &str, n: usize) -> Shop {
    let http = reqwest::Client::new();
    let login = |email: String, password: &'static str| {
        let http = http.clone();
        let url = format!("{base}/api/v1/auth/login");
        async move {
            let (_, _, body) =
                send(http.post(url).json(&json!({"email": email, "password": password})))
                    .await
                    .expect("login");
            body["access_token"].as_str().expect("a token").to_owned()
        }
    };
    let admin = login(common::ADMIN_EMAIL.into(), common::ADMIN_PASSWORD).await;
    let (_, _, page) =
        send(http.get(format!("{base}/api/v1/products?limit=10"))).await.expect("products");
    let products: Vec<String> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_owned())
        .collect();
    // A shop that has been running has served its products: the gateway's cache is warm.
    for p in &products {
        send(http.get(format!("{base}/api/v1/products/{p}"))).await.expect("product");
    }
    let mut shoppers = Vec::new();
    for i in 0..n {
        let email = format!("blast{i}@test.example");
        let body = json!({"email": email, "password": "blast-password", "name": "Blast"});
        send(http.post(format!("{base}/api/v1/auth/register")).json(&body))
            .await
            .expect("register");
        let token = login(email.clone(), "blast-password").await;
        // An order and a cart line, so every read has something to show.
        let put = http
            .put(format!("{base}/api/v1/cart/items/{}", products[i % products.len()]))
            .bearer_auth(&token)
            .json(&json!({"quantity": 1}));
        send(put).await.expect("cart");
        let post = http
            .post(format!("{base}/api/v1/orders"))
            .bearer_auth(&token)
            .header("idempotency-key", format!("prepare-{i}"))
            .json(&json!({"payment_token": "tok_visa"}));
        send(post).await.expect("order");
        shoppers.push(Shopper { email, token });
    }
    Shop { http, base: base.to_owned(), admin, products, shoppers }
}

/// One request of `group` for shopper `i`; (success, stale).
async fn request(shop: &Shop, group: &str, i: usize, n: u64, timeout: Duration) -> (bool, bool) {
    let s = &shop.shoppers[i % shop.shoppers.len()];
    let product = &shop.products[(i + n as usize) % shop.products.len()];
    let url = |p: &str| format!("{}{p}", shop.base);
    let h = &shop.http;
    let req = match group {
        "auth" => h
            .post(url("/api/v1/auth/login"))
            .json(&json!({"email": s.email, "password": "blast-password"})),
        "catalog" => h.get(url(&format!("/api/v1/products/{product}"))),
        "inventory" => h.get(url(&format!("/api/v1/inventory/{product}"))),
        "cart" => h
            .put(url(&format!("/api/v1/cart/items/{product}")))
            .bearer_auth(&s.token)
            .json(&json!({"quantity": 1})),
        "orders" => h
            .post(url("/api/v1/orders"))
            .bearer_auth(&s.token)
            .header("idempotency-key", uuid::Uuid::new_v4().to_string())
            .json(&json!({"payment_token": "tok_visa"})),
        "payments" => h.get(url("/api/v1/payments")).bearer_auth(&s.token),
        _ => h.get(url("/api/v1/notifications")).bearer_auth(&s.token),
    };
    match send(req.timeout(timeout)).await {
        // An order with an empty cart (another request bought it) is an answer too.
        Some((status, stale, _)) => ((200..300).contains(&status) || status == 409, stale),
        None => (false, false),
    }
}

async fn cell(topology: &str, fault: Option<(&str, &str)>, s: &Settings) -> Tally {
    let running = common::up(topology, &[]);
    let shop = Arc::new(prepare(&running.base, s.workers).await);
    if let Some((module, kind)) = fault {
        let body = json!({"target": module, "kind": kind, "duration_s": 120});
        let req = shop
            .http
            .post(format!("{}/api/v1/system/faults", shop.base))
            .bearer_auth(&shop.admin)
            .json(&body);
        match send(req).await {
            Some((201, _, _)) => {}
            // A crash of the monolith can take the answer with it.
            other if kind == "crash" => drop(other),
            other => panic!("cannot inject {body}: {other:?}"),
        }
        // Let a crash happen, and a hang take hold.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let until = Instant::now() + Duration::from_secs(s.secs);
    let mut workers = tokio::task::JoinSet::new();
    for i in 0..s.workers {
        let (shop, timeout) = (shop.clone(), s.timeout);
        workers.spawn(async move {
            let mut tally = Tally::new();
            let mut n = 0u64;
            while Instant::now() < until {
                for group in GROUPS {
                    let (ok, stale) = request(&shop, group, i, n, timeout).await;
                    let e = tally.entry(group).or_default();
                    e.0 += 1;
                    e.1 += u64::from(ok);
                    e.2 += u64::from(stale);
                }
                n += 1;
            }
            tally
        });
    }
    let mut total = Tally::new();
    while let Some(done) = workers.join_next().await {
        for (g, (n, ok, stale)) in done.expect("worker") {
            let e = total.entry(g).or_default();
            e.0 += n;
            e.1 += ok;
            e.2 += stale;
        }
    }
    drop(running);
    total
}
