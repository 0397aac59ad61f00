//! Inside the shop, nothing is believed without proof: forged event batches and job
//! invocations sent to the function host change nothing, whoever sends them.

use std::time::Duration;

use axum::body::Bytes;
use serde_json::{Value, json};
use testkit::{FetchJson, TestApp};

use crate::jobs::{edge, invoke_api, invoke_client};

fn envelope(event_type: &str, source: &str, payload: Value) -> Value {
    json!({
        "id": uuid::Uuid::now_v7(),
        "type": event_type,
        "version": 1,
        "source": source,
        "occurred_at": kernel::now_ms(),
        "trace": {"traceparent": null, "request_id": null},
        "payload": payload,
    })
}

/// What a compromised service holds: its own key, valid for the function host.
fn payments_service(app: &TestApp) -> rpc::CredentialIssuer {
    let topology = runtime::Topology::load("serverless").expect("preset");
    let role = runtime::ProcessRole::Function { name: "payments".into() };
    runtime::Trust::open(&app.data_dir(), &topology, &role).expect("keys").issuer()
}

async fn invoke_raw(
    app: &TestApp,
    issuer: &rpc::CredentialIssuer,
    function: &str,
    payload: &Value,
) -> function_host::Invoked {
    invoke_client(app, issuer.clone())
        .invoke(function, Bytes::from(payload.to_string()), None, Duration::from_secs(30))
        .await
        .expect("the host answers")
}

#[tokio::test]
async fn forged_batches_and_jobs_change_nothing() {
    let app = crate::spawn().await;
    let admin = app.admin_token().await;
    let product = app.any_product_id().await;
    app.set_stock(&admin, &product, 10).await;
    let user = app.register_login().await;
    app.add_to_cart(&user, &product, 2).await;
    let order = app.checkout(&user, "tok_chargeDeclined").await;
    let done = app.await_order(&user, &order).await;
    assert_eq!(done["status"], "cancelled");
    app.await_settled().await;
    let stock_before: Value = app.get(&format!("/api/v1/inventory/{product}")).fetch_json().await;

    // The attack from the report: "stock reserved, payment captured" for the declined order.
    let records = json!([
        envelope(
            "inventory.stock_reserved",
            "inventory",
            json!({
                "order_id": order,
                "lines": [{"product_id": product, "quantity": 2}],
            })
        ),
        envelope(
            "payments.payment_captured",
            "payments",
            json!({
                "payment_id": uuid::Uuid::now_v7(),
                "order_id": order,
                "user_id": user.id,
                "amount": done["total"],
            })
        ),
    ]);
    let url = format!("{}/2015-03-31/functions/orders-events/invocations", invoke_api(&app));
    let http = reqwest::Client::new();

    // 1. A local process with no credential: refused at the door.
    let res = http.post(&url).json(&json!({"Records": records})).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let res = http.post(&url).header("x-amz-invocation-type", "DryRun").send().await.unwrap();
    assert_eq!(res.status(), 403, "a dry run does not confirm the host either");

    // 2. A compromised service, whose credential the host accepts: the function refuses a
    //    batch the event source did not sign, unsigned or signed by the service itself.
    let payments = payments_service(&app);
    let unsigned = json!({"Records": records});
    let done_unsigned = invoke_raw(&app, &payments, "orders-events", &unsigned).await;
    assert!(
        done_unsigned.function_error.is_some(),
        "{}",
        String::from_utf8_lossy(&done_unsigned.body)
    );
    let batch: bus::batch::EventBatch = serde_json::from_value(unsigned.clone()).unwrap();
    let self_signed = runtime::Signed::sign(batch, &payments, "orders-events").unwrap();
    let self_signed = serde_json::to_value(&self_signed).unwrap();
    let done_self = invoke_raw(&app, &payments, "orders-events", &self_signed).await;
    assert!(done_self.function_error.is_some(), "{}", String::from_utf8_lossy(&done_self.body));

    // 3. A batch the event source signed, with one record changed on the way.
    let edge = edge(&app);
    let harmless: bus::batch::EventBatch = serde_json::from_value(json!({"Records": [
        envelope("payments.payment_declined", "payments", json!({
            "payment_id": uuid::Uuid::now_v7(), "order_id": order, "user_id": user.id,
            "reason": "card_declined",
        })),
    ]}))
    .unwrap();
    let mut tampered =
        serde_json::to_value(runtime::Signed::sign(harmless, &edge, "orders-events").unwrap())
            .unwrap();
    tampered["Records"] = records.clone();
    let done_tampered = invoke_raw(&app, &payments, "orders-events", &tampered).await;
    assert!(
        done_tampered.function_error.is_some(),
        "{}",
        String::from_utf8_lossy(&done_tampered.body)
    );

    // 4. A refund for a paid order, and a job run at will, both by the compromised service.
    let refund = json!({"Records": [envelope("orders.refund_requested", "orders", json!({"order_id": order, "user_id": user.id}))]});
    let done_refund = invoke_raw(&app, &payments, "payments-events", &refund).await;
    assert!(done_refund.function_error.is_some());
    let job = runtime::Signed::sign(
        runtime::ScheduledEvent { job: "expire_stale_orders".into(), time: 0 },
        &payments,
        "orders-expire-stale-orders",
    )
    .unwrap();
    let done_job = invoke_raw(
        &app,
        &payments,
        "orders-expire-stale-orders",
        &serde_json::to_value(job).unwrap(),
    )
    .await;
    assert!(done_job.function_error.is_some());

    app.await_settled().await;
    let after = app.await_order(&user, &order).await;
    assert_eq!(after["status"], "cancelled", "{after}");
    assert_eq!(after["history"], done["history"], "no step was added");
    let stock_after: Value = app.get(&format!("/api/v1/inventory/{product}")).fetch_json().await;
    assert_eq!(stock_after, stock_before);
    let payments: Value = app
        .get(&format!("/api/v1/payments?order_id={order}"))
        .bearer_auth(&user.token)
        .fetch_json()
        .await;
    let statuses: Vec<&str> = payments["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert!(statuses.iter().all(|s| *s == "declined"), "{payments}");
}

/// A batch from the shop's own event source in which some events cannot be handled: the
/// function's answer names exactly those (`batchItemFailures`, rejected), and the others
/// take effect. An event of a version the module does not know is one of them.
#[tokio::test]
async fn a_batch_answers_its_failed_items_and_the_rest_take_effect() {
    let app = crate::spawn().await;
    let user = app.register_login().await;
    let good = envelope("identity.registration_attempted", "identity", json!({"user_id": user.id}));
    let mut newer = good.clone();
    newer["id"] = json!(uuid::Uuid::now_v7());
    newer["version"] = json!(2);
    let unknown = envelope("identity.unheard_of", "identity", json!({}));
    let garbled = envelope("identity.registration_attempted", "identity", json!({"who": 1}));
    let records = json!([newer, good, unknown, garbled]);
    let batch = json!({"Records": records});
    let edge = edge(&app);
    let payload: runtime::Signed<bus::batch::EventBatch> = runtime::Signed::sign(
        serde_json::from_value(batch).unwrap(),
        &edge,
        "notifications-events",
    )
    .unwrap();
    let done = invoke_raw(&app, &edge, "notifications-events", &json!(payload)).await;
    assert_eq!(done.function_error, None, "{}", String::from_utf8_lossy(&done.body));
    let answer: Value = serde_json::from_slice(&done.body).unwrap();
    let failed: Vec<&str> = answer["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["reject"], true, "{f}: it can never succeed");
            f["itemIdentifier"].as_str().unwrap()
        })
        .collect();
    let ids = |i: usize| records[i]["id"].as_str().unwrap().to_owned();
    assert_eq!(failed, [ids(0), ids(2), ids(3)], "{answer}");

    let page: Value = app.get("/api/v1/notifications").bearer_auth(&user.token).fetch_json().await;
    let kinds: Vec<&Value> = page["items"].as_array().unwrap().iter().map(|n| &n["kind"]).collect();
    assert_eq!(kinds, [&json!("registration_attempted")], "the good event took effect, once");
}
