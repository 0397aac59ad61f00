//! `--otlp-endpoint`: the shop's spans also go to an OpenTelemetry collector over OTLP/HTTP.
//! The collector here is a real OTLP/HTTP endpoint: it decodes the protobuf.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message as _;
use serde_json::{Value, json};

use crate::cluster::Client;

type Received = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

async fn collect(State(received): State<Received>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/x-protobuf") {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE;
    }
    match ExportTraceServiceRequest::decode(body) {
        Ok(request) => {
            received.lock().unwrap().push(request);
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

fn string(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    })
}

#[tokio::test]
async fn spans_reach_an_otlp_collector() {
    let received = Received::default();
    let collector = axum::Router::new()
        .route("/v1/traces", axum::routing::post(collect))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, collector).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("http://{addr}");
    let shop = crate::up_with(&dir.path().join("data"), None, &["--otlp-endpoint", &endpoint]);
    let trace = list_products_in_a_new_trace(&shop.base).await;

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found =
            received.lock().unwrap().iter().flat_map(|r| r.resource_spans.iter()).find_map(|rs| {
                let resource = rs.resource.as_ref()?;
                rs.scope_spans.iter().flat_map(|s| s.spans.iter()).find_map(|span| {
                    let hex: String = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                    (hex == trace && span.name == "GET /api/v1/products").then(|| {
                        (resource.attributes.clone(), span.kind, span.parent_span_id.clone())
                    })
                })
            });
        if let Some((resource, kind, parent)) = found {
            assert_eq!(string(&resource, "service.name").as_deref(), Some("shop"));
            assert_eq!(string(&resource, "microlith.topology").as_deref(), Some("monolith"));
            assert_eq!(string(&resource, "service.instance.id").as_deref(), Some("shop-1"));
            assert_eq!(kind, 2, "SPAN_KIND_SERVER");
            assert_eq!(parent, vec![0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
            break;
        }
        assert!(Instant::now() < deadline, "the collector got no span of trace {trace}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    crate::stop(shop);
}

/// Lists the products as a client whose span `00f067aa0ba902b7` of a new trace is the
/// request's parent; returns the trace id.
async fn list_products_in_a_new_trace(base: &str) -> String {
    let trace = format!("{:032x}", uuid::Uuid::new_v4().as_u128());
    let res = reqwest::Client::new()
        .get(format!("{base}/api/v1/products"))
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    trace
}

#[test]
fn a_bad_otlp_endpoint_is_refused_before_anything_starts() {
    for bad in ["localhost:4318", "ftp://collector", "not a url"] {
        let out = std::process::Command::new(crate::BIN)
            .args(["up", "--otlp-endpoint", bad, "--data-dir", "/nonexistent/never-created"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--otlp-endpoint"), "{bad}: {err}");
    }
    let out = std::process::Command::new(crate::BIN)
        .args(["up", "--trace-sample-ratio", "1.5", "--data-dir", "/nonexistent/never-created"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--trace-sample-ratio"));
}

/// Every process of `microlith up` sends its spans to the store in the gateway's process:
/// one checkout is one trace there, across the services (microservices) or the function
/// instances (serverless), and a span batch nobody signed is refused.
#[tokio::test]
async fn a_checkout_is_one_trace_across_the_processes_of_up() {
    let _heavy = crate::heavy().await;
    for (topology, suffix) in [("microservices", ""), ("serverless", "-events")] {
        let dir = tempfile::tempdir().unwrap();
        let shop = crate::up_with(
            &dir.path().join("data"),
            Some(ADMIN_PASSWORD),
            &["--topology", topology],
        );
        let client = Client { http: reqwest::Client::new(), base: shop.base.clone() };
        let (http, url) = (&client.http, |path: &str| client.url(path));
        let shopper = client.user(0).await;
        let product = client.products().await.remove(0);
        client.put_one_in_cart(&shopper, &product).await;
        let trace = format!("{:032x}", uuid::Uuid::new_v4().as_u128());
        let placed = http
            .post(url("/api/v1/orders"))
            .bearer_auth(&shopper)
            .header("idempotency-key", uuid::Uuid::new_v4().to_string())
            .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
            .json(&json!({"payment_token": "tok_visa"}))
            .send()
            .await
            .unwrap();
        assert_eq!(placed.status(), 202, "{topology}");

        let admin = client.login("boss@test.example", ADMIN_PASSWORD).await;
        let notified = format!("notifications{suffix}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let spans = loop {
            let res = stored_trace(&client, &admin, &trace).await;
            if res.status() == 200 {
                let body: Value = res.json().await.unwrap();
                let spans = body["spans"].as_array().unwrap().clone();
                let confirmed = spans.iter().any(|s| {
                    s["service_name"] == notified.as_str()
                        && s["name"] == "process orders.order_confirmed"
                });
                if confirmed {
                    break spans;
                }
            }
            assert!(Instant::now() < deadline, "{topology}: no span of {notified} in {trace}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert_trace_shape(topology, suffix, &spans);
        refuses_unsigned_batches(http, &shop.base).await;
        crate::stop(shop);
    }
}

const ADMIN_PASSWORD: &str = "otlp-test-admin-password";

/// `GET /api/v1/system/traces/{trace}` as `admin`.
async fn stored_trace(client: &Client, admin: &str, trace: &str) -> reqwest::Response {
    let url = client.url(&format!("/api/v1/system/traces/{trace}"));
    client.http.get(url).bearer_auth(admin).send().await.unwrap()
}

fn assert_trace_shape(topology: &str, suffix: &str, spans: &[Value]) {
    let by_id = |id: &Value| spans.iter().find(|s| s["span_id"] == *id);
    let one = |service: &str, name: &str| {
        spans
            .iter()
            .find(|s| s["service_name"] == service && s["name"] == name)
            .unwrap_or_else(|| panic!("{topology}: no span {name:?} of {service}: {spans:#?}"))
    };
    let root = one("gateway", "POST /api/v1/orders");
    assert_eq!(root["kind"], "server");
    assert_eq!(root["parent_span_id"], "00f067aa0ba902b7", "{topology}: the client's parent");
    // The contract call leaves the gateway's process as a client span and arrives in the
    // process of orders as a server span, its child; on serverless through the function
    // host's invocation span, in between.
    let call = one("gateway", "POST /internal/orders/place");
    assert_eq!(call["kind"], "client");
    let served = one("orders", "/internal/orders/place");
    assert_eq!(served["kind"], "server");
    let caller = if topology == "serverless" {
        let invoked = one("gateway", "orders");
        assert_eq!(invoked["parent_span_id"], call["span_id"], "{topology}");
        invoked
    } else {
        call
    };
    assert_eq!(served["parent_span_id"], caller["span_id"], "{topology}");
    // Each step of the saga is a `process` span in the process that handled it: the child
    // of the message's `publish` span, and linked to it.
    for (service, event) in [
        ("inventory", "orders.order_placed"),
        ("orders", "inventory.stock_reserved"),
        ("payments", "orders.payment_requested"),
        ("notifications", "orders.order_confirmed"),
    ] {
        let process = one(&format!("{service}{suffix}"), &format!("process {event}"));
        assert_eq!(process["kind"], "consumer");
        let publish = by_id(&process["parent_span_id"])
            .unwrap_or_else(|| panic!("{topology}: the publish span of {event}"));
        assert_eq!(publish["name"], format!("publish {event}"));
        assert_eq!(publish["kind"], "producer");
        assert_eq!(process["links"][0]["span_id"], publish["span_id"]);
        // `up` runs the embedded broker.
        for span in [process, publish] {
            assert_eq!(attribute(span, "messaging.system"), Some(json!("microlith")), "{span:#}");
        }
    }
    if topology == "serverless" {
        // The function host's invocation, in the gateway's process: the first call of
        // `orders` started an instance.
        let invoked = one("gateway", "orders");
        assert_eq!(attribute(invoked, "faas.trigger"), Some(json!("http")));
        assert_eq!(attribute(invoked, "faas.coldstart"), Some(json!(true)));
        // The cold start's init phase, a child of the invocation.
        let init = spans
            .iter()
            .find(|s| s["name"] == "init" && s["parent_span_id"] == invoked["span_id"])
            .unwrap_or_else(|| panic!("no init span under the cold invocation: {spans:#?}"));
        let at = |s: &Value, k: &str| s[k].as_i64().unwrap();
        assert!(at(init, "end_unix_nano") > at(init, "start_unix_nano"), "{init}");
        assert!(at(init, "end_unix_nano") <= at(invoked, "end_unix_nano"), "{init} {invoked}");
    }
}

/// The value of `span`'s attribute `key`, as the trace API gives it.
fn attribute(span: &Value, key: &str) -> Option<Value> {
    let attributes = span["attributes"].as_array()?;
    attributes.iter().find(|a| a["key"] == key).map(|a| a["value"].clone())
}

async fn refuses_unsigned_batches(http: &reqwest::Client, base: &str) {
    let body = ExportTraceServiceRequest::default().encode_to_vec();
    for credential in [None, Some("Bearer not-a-credential")] {
        let mut req = http
            .post(format!("{base}/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(body.clone());
        if let Some(c) = credential {
            req = req.header("authorization", c);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "{credential:?}");
    }
}

/// `--log-format json`: one JSON object per line, and the lines logged while serving a
/// request name its trace (and their span), so a log search finds the trace and back.
#[tokio::test]
async fn json_log_lines_name_their_trace() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let shop = crate::up_logging(&data, None, &["--log-format", "json"], "debug,sqlx=warn");
    let trace = list_products_in_a_new_trace(&shop.base).await;
    // A registration logs inside its request ("user registered").
    let registered = format!("{:032x}", uuid::Uuid::new_v4().as_u128());
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/register", shop.base))
        .header("traceparent", format!("00-{registered}-00f067aa0ba902b7-01"))
        .json(&serde_json::json!({"email": "jo@test.example", "password": "long enough password", "name": "Jo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    crate::stop(shop);
    let log = std::fs::read_to_string(crate::stderr_path(&data)).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.iter().all(|l| l["level"].is_string() && l["timestamp"].is_string()));
    // The access line, logged once the answer is made, names the trace in a field.
    let access = lines.iter().find(|l| l["target"] == "microlith::access");
    let access = access.unwrap_or_else(|| panic!("no access line in:\n{log}"));
    let access_of_request = lines
        .iter()
        .filter(|l| l["target"] == "microlith::access")
        .find(|l| l["fields"]["trace_id"] == trace.as_str());
    assert!(access_of_request.is_some(), "no access line of trace {trace}: {access}");
    // The lines logged inside a request name it in the OpenTelemetry ids.
    let of_request: Vec<&Value> =
        lines.iter().filter(|l| l["openTelemetry"]["traceId"] == registered.as_str()).collect();
    assert!(!of_request.is_empty(), "no line of trace {registered} in:\n{log}");
    for line in of_request {
        let span = line["openTelemetry"]["spanId"].as_str().unwrap();
        assert!(span.len() == 16 && span != "00f067aa0ba902b7", "the server's own span: {line}");
    }
}

/// With a head-sampling ratio of 0, a trace that ends well is not kept, while one with an
/// error still is: what the sampler dropped is held back until its trace turns out sound.
#[tokio::test]
async fn a_trace_with_an_error_is_kept_whatever_the_sample_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let shop = crate::up_with(
        &dir.path().join("data"),
        Some(ADMIN_PASSWORD),
        &["--trace-sample-ratio", "0"],
    );
    let client = Client { http: reqwest::Client::new(), base: shop.base.clone() };
    let http = &client.http;
    let trace_of = |res: &reqwest::Response| {
        let header = res.headers()["traceresponse"].to_str().unwrap().to_owned();
        assert!(header.ends_with("-00"), "not sampled at the head: {header}");
        header.split('-').nth(1).unwrap().to_owned()
    };
    let fine = http.get(client.url("/api/v1/products")).send().await.unwrap();
    assert_eq!(fine.status(), 200);
    let fine = trace_of(&fine);

    let admin = client.login("boss@test.example", ADMIN_PASSWORD).await;
    let fault = json!({"target": "catalog", "kind": "error", "rate": 1.0, "duration_s": 60});
    let res = http
        .post(client.url("/api/v1/system/faults"))
        .bearer_auth(&admin)
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let unseen = uuid::Uuid::new_v4();
    let failed = http.get(client.url(&format!("/api/v1/products/{unseen}"))).send().await.unwrap();
    assert_eq!(failed.status(), 503);
    let failed = trace_of(&failed);

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let res = stored_trace(&client, &admin, &failed).await;
        if res.status() == 200 {
            let body: Value = res.json().await.unwrap();
            let spans = body["spans"].as_array().unwrap();
            let server = spans.iter().find(|s| s["name"] == "GET /api/v1/products/{id}");
            assert!(server.is_some_and(|s| s["status_code"] == "error"), "{body:#}");
            break;
        }
        assert!(Instant::now() < deadline, "the failed request's trace was not kept");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let res = stored_trace(&client, &admin, &fine).await;
    assert_eq!(res.status(), 404, "a sound trace the sampler dropped stays dropped");
    crate::stop(shop);
}
