//! One trace per request: a client's `traceparent` is continued, the answer names the
//! trace (`traceresponse`), and the admin's trace API returns its spans as one tree.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::{FetchJson as _, Setup, StatusCode, TestApp, TestUser};

fn hex(n: u128, digits: usize) -> String {
    format!("{n:0digits$x}")
}

/// The spans of `trace` once `ready` holds for them (export is batched), or a failure
/// after a few seconds.
async fn await_trace(
    app: &TestApp,
    admin: &str,
    trace: &str,
    ready: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let res = app
            .get(&format!("/api/v1/system/traces/{trace}"))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::OK {
            let body: Value = res.json().await.unwrap();
            let spans = body["spans"].as_array().unwrap().clone();
            if ready(&spans) {
                return spans;
            }
            assert!(std::time::Instant::now() < deadline, "trace {trace} incomplete: {body:#}");
        } else {
            assert_eq!(res.status(), StatusCode::NOT_FOUND);
            assert!(std::time::Instant::now() < deadline, "trace {trace} never stored");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Places an order from `user`'s cart as a client whose span `client_span` of `trace` is
/// the request's parent.
async fn place_traced(
    app: &TestApp,
    user: &TestUser,
    key: &str,
    trace: &str,
    client_span: &str,
) -> reqwest::Response {
    app.post("/api/v1/orders")
        .bearer_auth(&user.token)
        .header("idempotency-key", key)
        .header("traceparent", format!("00-{trace}-{client_span}-01"))
        .json(&json!({"payment_token": "tok_visa"}))
        .send()
        .await
        .unwrap()
}

fn named<'a>(spans: &'a [Value], name: &str) -> Option<&'a Value> {
    spans.iter().find(|s| s["name"] == name)
}

/// Whether `span` descends from the span with id `ancestor` within `spans`.
fn descends(spans: &[Value], span: &Value, ancestor: &str) -> bool {
    let mut at = span.clone();
    for _ in 0..spans.len() {
        let Some(parent) = at["parent_span_id"].as_str() else { return false };
        if parent == ancestor {
            return true;
        }
        match spans.iter().find(|s| s["span_id"] == parent) {
            Some(p) => at = p.clone(),
            None => return false,
        }
    }
    false
}

#[tokio::test]
async fn an_order_is_one_trace_that_continues_the_clients() {
    let app = crate::spawn().await;
    let admin = app.admin_token().await;
    let (user, product) = app.shopper(5, 1).await;

    let trace = hex(uuid::Uuid::new_v4().as_u128(), 32);
    let client_span = hex(u128::from(rand_u64()), 16);
    let before = time::OffsetDateTime::now_utc() - Duration::from_secs(1);
    let res = place_traced(&app, &user, "traced-order", &trace, &client_span).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let answer = res.headers()["traceresponse"].to_str().unwrap().to_owned();
    assert!(answer.starts_with(&format!("00-{trace}-")), "the client's trace goes on: {answer}");

    let placed: Value = res.json().await.unwrap();
    let order = app.await_order(&user, placed["id"].as_str().unwrap()).await;
    assert_eq!(order["status"], "confirmed");
    // The saga's events, where their handlers run in a process that reports to the store
    // (on serverless they run in function instances, which do not export yet).
    let messaging = app.setup != Setup::Serverless;
    let saga = [
        "publish orders.order_placed",
        "process orders.order_placed",
        "process orders.payment_requested",
        "process payments.payment_captured",
        "process orders.order_confirmed",
    ];
    let spans = await_trace(&app, &admin, &trace, |spans| {
        named(spans, "POST /api/v1/orders").is_some()
            && named(spans, "orders.place").is_some()
            && (!messaging || saga.iter().all(|name| named(spans, name).is_some()))
    })
    .await;
    let server = named(&spans, "POST /api/v1/orders").unwrap();
    assert_eq!(server["kind"], "server");
    assert_eq!(server["parent_span_id"], client_span.as_str(), "the client's span is its parent");
    let attribute = |span: &Value, key: &str| {
        span["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == key)
            .map(|a| a["value"].clone())
    };
    assert_eq!(attribute(server, "http.route"), Some(json!("/api/v1/orders")));
    assert_eq!(attribute(server, "http.response.status_code"), Some(json!(202)));
    assert_eq!(answer, format!("00-{trace}-{}-01", server["span_id"].as_str().unwrap()));
    let place = named(&spans, "orders.place").unwrap();
    assert_eq!(attribute(place, "rpc.service"), Some(json!("orders")));
    assert_eq!(attribute(place, "rpc.method"), Some(json!("place")));
    // Where orders runs in another process of this test, its server side joins the tree.
    if matches!(app.setup, Setup::Microservices | Setup::MicroservicesPgNats) {
        let call = named(&spans, "POST /internal/orders/place").expect("the HTTP client span");
        assert_eq!(call["kind"], "client");
        assert_eq!(call["parent_span_id"], place["span_id"], "{spans:#?}");
        let served = named(&spans, "/internal/orders/place").expect("orders' server span");
        assert_eq!(served["kind"], "server");
        assert_eq!(served["parent_span_id"], call["span_id"], "{spans:#?}");
    }
    assert!(descends(&spans, place, server["span_id"].as_str().unwrap()), "{spans:#?}");
    // Where orders' work is exported here, its write transaction is a database span under
    // the request.
    if messaging {
        let tx = named(&spans, "TRANSACTION orders").expect("orders' write transaction");
        assert_eq!(tx["kind"], "client");
        let system = if app.setup == Setup::MicroservicesPgNats { "postgresql" } else { "sqlite" };
        assert_eq!(attribute(tx, "db.system.name"), Some(json!(system)));
        assert_eq!(attribute(tx, "db.operation.name"), Some(json!("TRANSACTION")));
        assert!(descends(&spans, tx, server["span_id"].as_str().unwrap()), "{spans:#?}");
    }
    for span in &spans {
        assert_eq!(span["trace_id"], trace.as_str());
    }
    if app.setup == Setup::Serverless {
        // Orders is a function: its invocation, as the function host saw it, is a child
        // of the contract call, with the FaaS attributes.
        let invoked = named(&spans, "orders").expect("the orders function's invocation");
        assert!(descends(&spans, invoked, place["span_id"].as_str().unwrap()), "{spans:#?}");
        assert_eq!(attribute(invoked, "faas.trigger"), Some(json!("http")));
        assert_eq!(attribute(invoked, "faas.coldstart"), Some(json!(true)), "its first call");
        assert!(attribute(invoked, "faas.invocation_id").is_some());
        assert!(attribute(invoked, "faas.init_duration_ms").is_some(), "a cold start's init");
        // A second order finds the instance warm.
        app.add_to_cart(&user, &product, 1).await;
        let trace = hex(uuid::Uuid::new_v4().as_u128(), 32);
        let res = place_traced(&app, &user, "traced-order-2", &trace, &client_span).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        let spans =
            await_trace(&app, &admin, &trace, |spans| named(spans, "orders").is_some()).await;
        let invoked = named(&spans, "orders").unwrap();
        assert_eq!(attribute(invoked, "faas.coldstart"), Some(json!(false)), "warm: {invoked:#}");
    }
    if messaging {
        let publish = named(&spans, "publish orders.order_placed").unwrap();
        assert_eq!(publish["kind"], "producer");
        assert!(descends(&spans, publish, place["span_id"].as_str().unwrap()), "{spans:#?}");
        let process = named(&spans, "process orders.order_placed").unwrap();
        assert_eq!(process["kind"], "consumer");
        assert_eq!(process["parent_span_id"], publish["span_id"], "one message: its child");
        let links = process["links"].as_array().unwrap();
        assert!(
            links.iter().any(|l| l["span_id"] == publish["span_id"]),
            "and linked: {process:#}"
        );
        assert_eq!(attribute(process, "messaging.operation.name"), Some(json!("process")));
        // Both sides name the broker that carried the message.
        let broker = if app.setup == Setup::MicroservicesPgNats { "nats" } else { "microlith" };
        for span in [publish, process] {
            assert_eq!(attribute(span, "messaging.system"), Some(json!(broker)), "{span:#}");
        }
        assert_eq!(attribute(publish, "messaging.operation.name"), Some(json!("publish")));
        assert_eq!(
            attribute(process, "messaging.destination.name"),
            Some(json!("orders.order_placed"))
        );
        // Every step of the saga descends from the client's request.
        for name in saga {
            let span = named(&spans, name).unwrap();
            assert!(
                descends(&spans, span, server["span_id"].as_str().unwrap()),
                "{name}: {spans:#?}"
            );
        }
    }
    listing_finds_it_by_attribute_and_time(&app, &admin, &trace, before).await;
}

/// The listing's attribute and time-range filters select `trace` (a checkout started
/// after `before`) or leave it out.
async fn listing_finds_it_by_attribute_and_time(
    app: &TestApp,
    admin: &str,
    trace: &str,
    before: time::OffsetDateTime,
) {
    let rfc3339 =
        |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
    let (from, to) = (rfc3339(before), rfc3339(before + Duration::from_secs(3600)));
    let listed = async |query: &[(&str, &str)]| -> bool {
        let page: Value = app
            .get("/api/v1/system/traces")
            .query(query)
            .query(&[("limit", "100")])
            .bearer_auth(admin)
            .fetch_json()
            .await;
        page["items"].as_array().unwrap().iter().any(|t| t["trace_id"] == trace)
    };
    let route = ("attribute", "http.route=/api/v1/orders");
    assert!(listed(&[route]).await, "a string attribute");
    assert!(listed(&[("attribute", "http.response.status_code=202")]).await, "a number");
    assert!(listed(&[route, ("from", &from), ("to", &to)]).await, "inside the window");
    assert!(!listed(&[("attribute", "http.response.status_code=500")]).await);
    assert!(!listed(&[("attribute", "http.route=/api/v1/cart")]).await);
    assert!(!listed(&[route, ("to", &from)]).await, "it started after `to`");
    assert!(!listed(&[route, ("from", &to)]).await, "it started before `from`");
}

#[tokio::test]
async fn a_malformed_traceparent_starts_a_new_trace() {
    let app = crate::spawn().await;
    for bad in [
        "00-zz-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-<script>alert(1)</script>-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
    ] {
        let res = app.get("/api/v1/products").header("traceparent", bad).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let answer = res.headers()["traceresponse"].to_str().unwrap().to_owned();
        let parts: Vec<&str> = answer.split('-').collect();
        assert_eq!(parts.len(), 4, "{answer}");
        assert_eq!(parts[1].len(), 32);
        assert!(parts[1].bytes().all(|b| b.is_ascii_hexdigit()) && parts[1] != "0".repeat(32));
        assert!(!answer.contains("zz") && !answer.contains('<'));
        assert!(!answer.contains("4bf92f3577b34da6a3ce929d0e0e4736"), "an unknown version is new");
        assert!(
            !answer.contains("4bf92f3577b34da6a3ce929d0e0e4736"),
            "an unknown version is not continued"
        );
    }
}

#[tokio::test]
async fn the_trace_api_is_for_admins_and_checks_its_input() {
    let app = crate::spawn().await;
    let admin = app.admin_token().await;
    let user = app.register_login().await;
    let res = app.get("/api/v1/system/traces").bearer_auth(&user.token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app.get("/api/v1/system/traces").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    for bad in ["nothex", &"A".repeat(32), &"a".repeat(33)] {
        let res = app
            .get(&format!("/api/v1/system/traces/{bad}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    // Well-formed but no trace's (W3C forbids the all-zero id: none can have it).
    for unknown in ["a".repeat(32), "0".repeat(32)] {
        let res = app
            .get(&format!("/api/v1/system/traces/{unknown}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{unknown}");
    }
    for query in [
        "limit=0",
        "limit=201",
        "min_duration_ms=-1",
        "error=maybe",
        "colour=blue",
        "attribute=no-equals-sign",
        "attribute==value",
        "from=yesterday",
        "to=2026-13-01T00:00:00Z",
        "from=",
        "before=5",
        "cursor=traces.07",
    ] {
        let res = app
            .get(&format!("/api/v1/system/traces?{query}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{query}");
    }
    // An empty range, or one outside what nanoseconds since 1970 hold, is no trace.
    for query in ["from=2026-12-01T10:00:00Z&to=2026-12-01T09:00:00Z", "to=0389-03-08T09:31:50Z"] {
        let url = format!("/api/v1/system/traces?{query}");
        let res = app.get(&url).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{query}");
        let page: serde_json::Value = res.json().await.unwrap();
        assert_eq!(page["items"], serde_json::json!([]), "{query}");
    }
    // Probes are not traced, even with a client's context.
    let probe = hex(uuid::Uuid::new_v4().as_u128(), 32);
    let res = app
        .get("/healthz")
        .header("traceparent", format!("00-{probe}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The admin's own requests are traced: the listing finds them.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let page: Value = app
            .get("/api/v1/system/traces?operation=GET%20/api/v1/system/traces&limit=5")
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !page["items"].as_array().unwrap().is_empty() {
            assert_eq!(page["items"][0]["root_name"], "GET /api/v1/system/traces");
            let res = app
                .get(&format!("/api/v1/system/traces/{probe}"))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "the probe was stored");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no trace of the listing: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rand_u64() -> u64 {
    (uuid::Uuid::new_v4().as_u128() as u64) | 1
}

/// A trace leaves as an OTLP JSON file and comes back in (from CI, or a colleague), all or
/// nothing; files that are not OTLP, or too large, store nothing.
#[tokio::test]
async fn a_trace_goes_out_as_otlp_json_and_comes_back_in() {
    let app = crate::spawn().await;
    let admin = app.admin_token().await;
    let trace = hex(uuid::Uuid::new_v4().as_u128(), 32);
    let res = app
        .get("/api/v1/products")
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let spans =
        await_trace(&app, &admin, &trace, |s| named(s, "GET /api/v1/products").is_some()).await;

    let export = |id: String| {
        let app = &app;
        let admin = &admin;
        async move {
            app.get(&format!("/api/v1/system/traces/{id}/otlp"))
                .bearer_auth(admin)
                .send()
                .await
                .unwrap()
        }
    };
    let res = export(trace.clone()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/json");
    let file = res.text().await.unwrap();
    let otlp: Value = serde_json::from_str(&file).unwrap();
    let first = &otlp["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(first["traceId"], trace.as_str(), "OTLP JSON: ids in hex");
    assert!(first["startTimeUnixNano"].is_string(), "OTLP JSON: 64-bit numbers as strings");

    // The same file, as another trace: imported whole.
    let copy = hex(uuid::Uuid::new_v4().as_u128(), 32);
    let import = |body: Vec<u8>| {
        let app = &app;
        let admin = &admin;
        async move {
            app.post("/api/v1/system/traces/import")
                .bearer_auth(admin)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
        }
    };
    let res = import(file.replace(&trace, &copy).into_bytes()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let imported: Value = res.json().await.unwrap();
    assert_eq!(imported["spans"], spans.len());
    assert_eq!(imported["trace_ids"], json!([copy]));
    let back = await_trace(&app, &admin, &copy, |s| s.len() == spans.len()).await;
    let names = |s: &[Value]| s.iter().map(|s| s["name"].clone()).collect::<Vec<_>>();
    assert_eq!(names(&back), names(&spans));

    // Not OTLP, or a span with a malformed id: a 400, and not one span stored.
    let other = hex(uuid::Uuid::new_v4().as_u128(), 32);
    let half_bad = json!({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": other, "spanId": "00f067aa0ba902b7", "name": "fine"},
        {"traceId": other, "spanId": "0000000000000000", "name": "zero id"},
    ]}]}]});
    for bad in [
        b"not json".to_vec(),
        b"{\"resourceSpans\": 7}".to_vec(),
        b"{}".to_vec(),
        serde_json::to_vec(&half_bad).unwrap(),
    ] {
        let res = import(bad.clone()).await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&bad));
    }
    assert_eq!(export(other).await.status(), StatusCode::NOT_FOUND, "nothing of it stored");

    // Admins only.
    let user = app.register_login().await;
    let res = app
        .get(&format!("/api/v1/system/traces/{trace}/otlp"))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app
        .post("/api/v1/system/traces/import")
        .bearer_auth(&user.token)
        .body(file.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // A 100 MB file is refused once past the limit, without being read whole.
    if app.setup == Setup::Monolith {
        let huge = vec![b' '; 100 * 1024 * 1024];
        match import(huge).await {
            Ok(res) => assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE),
            // The server may close the connection before the client has sent it all.
            Err(e) => assert!(e.is_request() || e.is_body(), "{e:?}"),
        }
    }
}

/// An injected fault and the retries it causes are events of the request's trace, where
/// they happened.
#[tokio::test]
async fn faults_and_retries_are_events_of_the_trace() {
    let app = crate::spawn().await;
    let admin = app.admin_token().await;
    let product = app.any_product_id().await;
    app.inject_fault(
        &admin,
        json!({"target": "gateway->catalog", "kind": "error", "rate": 1.0, "duration_s": 60}),
    )
    .await;
    let trace = hex(uuid::Uuid::new_v4().as_u128(), 32);
    let res = app
        .get(&format!("/api/v1/products/{product}"))
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    drop(res);
    app.clear_faults(&admin).await;
    let event_names = |spans: &[Value]| -> Vec<String> {
        spans
            .iter()
            .flat_map(|s| s["events"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e["name"].as_str().map(str::to_owned))
            .collect()
    };
    let spans = await_trace(&app, &admin, &trace, |spans| {
        let names = event_names(spans);
        names.iter().any(|n| n == "fault injected") && names.iter().any(|n| n == "retrying")
    })
    .await;
    // In the request's span or one below it.
    let server = named(&spans, "GET /api/v1/products/{id}").unwrap();
    let server_id = server["span_id"].as_str().unwrap();
    let struck = spans
        .iter()
        .find(|s| {
            s["events"].as_array().is_some_and(|e| e.iter().any(|e| e["name"] == "fault injected"))
        })
        .unwrap();
    assert!(struck["span_id"] == server_id || descends(&spans, struck, server_id), "{spans:#?}");
    let fault = struck["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "fault injected")
        .unwrap();
    let attributes = fault["attributes"].as_array().unwrap();
    assert!(
        attributes.iter().any(|a| a["key"] == "fault.target" && a["value"] == "gateway->catalog"),
        "{fault}"
    );
}
