//! A function instance killed (SIGKILL, from outside) while it runs an invocation: the
//! trigger retries it and its effect happens once. An injected latency holds the
//! invocation long enough to find the busy instance and kill it; the function host's
//! crash count proves the kill landed mid-invocation.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::{FetchJson, TestApp, TestUser};

async fn inject_latency(app: &TestApp, admin: &str, target: &str, ms: u64) {
    let fault = json!({"target": target, "kind": "latency", "latency_ms": ms, "duration_s": 60});
    app.inject_fault(admin, fault).await;
}

async fn function_stats(app: &TestApp, admin: &str, name: &str) -> Value {
    let view: Value = app.get("/api/v1/system/topology").bearer_auth(admin).fetch_json().await;
    let functions = view["functions"].as_array().expect("functions").clone();
    functions.into_iter().find(|f| f["name"] == name).expect("the function is listed")
}

/// The processes running `microlith function <name>` for this app's data directory.
fn instances(app: &TestApp, name: &str) -> Vec<i32> {
    let data = app.data_dir().into_os_string().into_encoded_bytes();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let runs = args.windows(2).any(|w| w[0] == b"function" && w[1] == name.as_bytes());
        // The host hands each instance the shop's configuration, data directory included,
        // in its environment.
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        let ours = environ.split(|b| *b == 0).any(|var| {
            var.starts_with(runtime::CONFIG_ENV.as_bytes())
                && var.windows(data.len()).any(|w| w == data.as_slice())
        });
        if runs && ours {
            pids.push(pid);
        }
    }
    pids
}

/// Waits until `function` is running an invocation, then kills its instances.
async fn kill_when_busy(app: &TestApp, admin: &str, function: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while function_stats(app, admin, function).await["busy"].as_u64() != Some(1) {
        assert!(Instant::now() < deadline, "{function} never got busy");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pids = instances(app, function);
    assert_eq!(pids.len(), 1, "one instance of {function}: {pids:?}");
    for pid in pids {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL)
            .expect("kill");
    }
}

async fn shopper(app: &TestApp, admin: &str, stock: i64) -> (TestUser, String) {
    let product = app.any_product_id().await;
    app.set_stock(admin, &product, stock).await;
    let user = app.register_login().await;
    app.add_to_cart(&user, &product, 2).await;
    (user, product)
}

#[tokio::test]
async fn an_orders_instance_killed_mid_invocation_is_retried_and_places_one_order() {
    let app = crate::spawn().await;
    let admin = app.admin_token().await;
    let (user, product) = shopper(&app, &admin, 5).await;
    // `orders.place` waits 800 ms on its call to cart: long enough to be killed in it.
    inject_latency(&app, &admin, "orders->cart", 800).await;

    let placing = {
        let app_url = app.url("/api/v1/orders");
        let token = user.token.clone();
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(app_url)
                .bearer_auth(token)
                .header("idempotency-key", "killed-once")
                .json(&json!({"payment_token": "tok_visa"}))
                .send()
                .await
                .expect("order request")
        })
    };
    kill_when_busy(&app, &admin, "orders").await;
    let res = placing.await.expect("the request task");
    // The gateway's edge retried `orders.place` (idempotent by its key) on a new instance.
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let placed: Value = res.json().await.expect("order");
    let id = placed["id"].as_str().expect("order id");

    let stats = function_stats(&app, &admin, "orders").await;
    assert_eq!(stats["crashes"], 1, "the kill landed mid-invocation: {stats}");
    assert!(stats["instances_started"].as_u64() >= Some(2), "{stats}");

    let order = app.await_order(&user, id).await;
    assert_eq!(order["status"], "confirmed", "{order}");
    let again = app.place_order(&user, "tok_visa", "killed-once").await;
    let replayed: Value = again.json().await.expect("replay");
    assert_eq!(replayed["id"], id, "the key names one order");
    app.await_settled().await;
    let audit = app.audit().await;
    assert_eq!(audit.orders().await, [(id.to_owned(), "confirmed".to_owned())], "one order");
    assert_eq!(audit.captures(id).await, 1);
    let row = audit.stock(&product).await;
    assert_eq!((row.available, row.reserved, row.sold), (3, 0, 2));
}

#[tokio::test]
async fn a_payments_events_instance_killed_mid_batch_is_redelivered_and_charges_once() {
    let app = crate::spawn().await;
    let admin = app.admin_token().await;
    let (user, product) = shopper(&app, &admin, 5).await;
    // Payments' handlers wait 800 ms before they charge.
    inject_latency(&app, &admin, "payments", 800).await;

    let id = app.checkout(&user, "tok_visa").await;
    kill_when_busy(&app, &admin, "payments-events").await;

    let order = app.await_order(&user, &id).await;
    assert_eq!(order["status"], "confirmed", "{order}");
    let stats = function_stats(&app, &admin, "payments-events").await;
    assert_eq!(stats["crashes"], 1, "the kill landed mid-batch: {stats}");
    app.await_settled().await;
    let audit = app.audit().await;
    assert_eq!(audit.captures(&id).await, 1, "charged once");
    let row = audit.stock(&product).await;
    assert_eq!((row.available, row.reserved, row.sold), (3, 0, 2));
}
