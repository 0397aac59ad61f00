//! Scheduled functions, invoked as the host's schedule (or EventBridge) would: the daily
//! sales summary reaches the admins, and only them.

use std::time::Duration;

use axum::body::Bytes;
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::{FetchJson, TestApp};

const DAY_MS: i64 = 86_400_000;

/// The function host's Invoke API, as the other processes of the shop find it.
pub fn invoke_api(app: &TestApp) -> String {
    let file = runtime::function_host_file(&app.data_dir());
    let host: Value = serde_json::from_slice(&std::fs::read(file).expect("host file")).unwrap();
    format!("http://{}", host["address"].as_str().expect("address"))
}

/// The credentials of the process that runs the edge (and the event source), read from the
/// shop's keys, as that process holds them.
pub fn edge(app: &TestApp) -> rpc::CredentialIssuer {
    let topology = runtime::Topology::load("serverless").expect("preset");
    runtime::Trust::open(&app.data_dir(), &topology, &runtime::ProcessRole::Gateway)
        .expect("the shop's keys")
        .issuer()
}

/// A client of the Invoke API with `issuer`'s credential for the function host.
pub fn invoke_client(app: &TestApp, issuer: rpc::CredentialIssuer) -> function_host::HttpInvoker {
    function_host::HttpInvoker::new(
        reqwest::Client::new(),
        invoke_api(app),
        std::sync::Arc::new(move || issuer.token_for(runtime::trust::FUNCTION_HOST).ok()),
    )
}

/// Invokes `function` with `job` through the host's Invoke API, signed as the host's
/// scheduler signs it.
async fn invoke(app: &TestApp, function: &str, job: &str, time: i64) -> Value {
    let edge = edge(app);
    let event = runtime::ScheduledEvent { job: job.into(), time };
    let signed = runtime::Signed::sign(event, &edge, function).expect("signed");
    let payload = Bytes::from(serde_json::to_vec(&signed).unwrap());
    let client = invoke_client(app, edge);
    let done =
        client.invoke(function, payload, None, Duration::from_secs(30)).await.expect("invoked");
    assert_eq!(done.function_error, None, "{}", String::from_utf8_lossy(&done.body));
    serde_json::from_slice(&done.body).expect("json answer")
}

async fn notifications(app: &TestApp, token: &str) -> Vec<Value> {
    let page: Value = app.get("/api/v1/notifications").bearer_auth(token).fetch_json().await;
    page["items"].as_array().expect("items").clone()
}

#[tokio::test]
async fn the_daily_sales_summary_reaches_the_admins_once() {
    let app = crate::spawn().await;
    let admin = app.admin_token().await;
    let product = app.any_product_id().await;
    app.set_stock(&admin, &product, 10).await;
    let user = app.register_login().await;
    app.add_to_cart(&user, &product, 3).await;
    let order = app.checkout(&user, "tok_visa").await;
    let placed = app.await_order(&user, &order).await;
    assert_eq!(placed["status"], "confirmed");

    // Fired tomorrow, the job summarises today.
    let tomorrow = kernel::now_ms() + DAY_MS;
    let today = kernel::ms_to_rfc3339(kernel::now_ms())[..10].to_owned();
    let done = invoke(&app, "orders-daily-sales-summary", "daily_sales_summary", tomorrow).await;
    assert_eq!(done, json!({"job": "daily_sales_summary", "sent": today}));
    let again = invoke(&app, "orders-daily-sales-summary", "daily_sales_summary", tomorrow).await;
    assert_eq!(again["sent"], Value::Null, "once per day");

    app.await_settled().await;
    let notes = notifications(&app, &admin).await;
    let summaries: Vec<&Value> =
        notes.iter().filter(|n| n["kind"] == "daily_sales_summary").collect();
    assert_eq!(summaries.len(), 1, "{notes:?}");
    assert_eq!(summaries[0]["subject"], format!("Sales on {today}"));
    let body = summaries[0]["body"].as_str().unwrap();
    assert!(body.contains("1 order(s) were confirmed: 3 unit(s) sold for"), "{body}");
    assert!(summaries[0].get("order_id").is_none());
    let customer = notifications(&app, &user.token).await;
    assert!(customer.iter().all(|n| n["kind"] != "daily_sales_summary"), "{customer:?}");

    // The wrong job for a function is its error, not a crash.
    let edge = edge(&app);
    let event = runtime::ScheduledEvent { job: "reindex".into(), time: 0 };
    let signed = runtime::Signed::sign(event, &edge, "orders-daily-sales-summary").unwrap();
    let res = reqwest::Client::new()
        .post(format!(
            "{}/2015-03-31/functions/orders-daily-sales-summary/invocations",
            invoke_api(&app)
        ))
        .bearer_auth(edge.token_for(runtime::trust::FUNCTION_HOST).unwrap())
        .json(&signed)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let kind = res.headers().get("x-amz-function-error").expect("a function error");
    assert_ne!(kind, "Runtime.ExitError", "the instance did not crash");
}

/// The order, as its customer sees it.
async fn order(app: &TestApp, user: &testkit::TestUser, id: &str) -> Value {
    app.get(&format!("/api/v1/orders/{id}")).bearer_auth(&user.token).fetch_json().await
}

/// The expiry job, fired as of a time past an order's deadline, cancels it while payments
/// hangs; the charge that then goes through is refunded: the compensation, end to end.
#[tokio::test]
async fn the_expiry_job_cancels_an_overdue_order_and_a_late_capture_is_refunded() {
    let app = crate::spawn().await;
    let admin = app.admin_token().await;
    let product = app.any_product_id().await;
    app.set_stock(&admin, &product, 5).await;
    let user = app.register_login().await;
    app.add_to_cart(&user, &product, 1).await;
    let hang = json!({"target": "payments", "kind": "hang", "duration_s": 60});
    app.inject_fault(&admin, hang).await;

    let id = app.checkout(&user, "tok_visa").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // Stock reserved: orders has asked payments for the money in the same step.
    while !order(&app, &user, &id).await["history"].to_string().contains("stock_reserved") {
        assert!(std::time::Instant::now() < deadline, "stock never reserved");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A day later: past the deadline (15 min by default) of every order placed now.
    let later = kernel::now_ms() + DAY_MS;
    let done = invoke(&app, "orders-expire-stale-orders", "expire_stale_orders", later).await;
    assert_eq!(done, json!({"job": "expire_stale_orders", "cancelled": 1}));
    let cancelled = order(&app, &user, &id).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["cancel_reason"], "deadline_exceeded");
    let audit = app.audit().await;
    assert_eq!(audit.payment(&id).await, None, "payments, hung, had recorded nothing");
    audit.close().await;

    // Payments comes back and charges (the deadline it was given has not passed by its own
    // clock): orders asks for the money back, payments refunds it.
    app.clear_faults(&admin).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let res = app.get("/api/v1/payments").query(&[("order_id", &id)]).bearer_auth(&user.token);
        let page: Value = res.send().await.unwrap().json().await.unwrap();
        if page["items"][0]["status"] == "refunded" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never refunded: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.await_settled().await;
    let audit = app.audit().await;
    assert_eq!((audit.captures(&id).await, audit.refunds(&id).await), (1, 1));
    let row = audit.stock(&product).await;
    assert_eq!((row.available, row.reserved, row.sold), (5, 0, 0), "stock released");
    assert_eq!(order(&app, &user, &id).await["status"], "cancelled");
    let kinds: Vec<Value> =
        notifications(&app, &user.token).await.iter().map(|n| n["kind"].clone()).collect();
    assert!(kinds.contains(&json!("payment_refunded")), "{kinds:?}");
}
