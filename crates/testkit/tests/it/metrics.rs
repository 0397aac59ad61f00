//! `/metrics` after a purchase: a scrape in the Prometheus text format that keeps the
//! naming conventions, with the RED histograms of the public routes and of each edge, the
//! bus's and the outboxes' backlogs, and the process's own figures.

use testkit::prometheus::Exposition;
use testkit::{StatusCode, TestApp};

async fn scrape(app: &TestApp) -> Exposition {
    let res = app.get("/metrics").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    Exposition::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[tokio::test]
async fn a_purchase_shows_in_metrics_that_keep_the_prometheus_conventions() {
    let app = crate::spawn().await;
    let (user, _) = app.shopper(5, 1).await;
    let order = app.checkout(&user, "tok_visa").await;
    assert_eq!(app.await_order(&user, &order).await["status"], "confirmed");
    // A method nobody knows, and a path no route matches: neither may mint a series.
    let brew = reqwest::Method::from_bytes(b"BREW").unwrap();
    let res = app.get("/").send().await.unwrap();
    drop(res);
    let odd = reqwest::Client::new().request(brew, app.url("/api/v1/products")).send().await;
    assert!(odd.is_ok_and(|r| r.status().is_client_error()));
    let unknown = format!("/api/v1/nowhere-{}", uuid::Uuid::new_v4().simple());
    assert_eq!(app.get(&unknown).send().await.unwrap().status(), StatusCode::NOT_FOUND);

    // A first scrape, and a probe, that the second must not count.
    scrape(&app).await;
    assert_eq!(app.get("/healthz").send().await.unwrap().status(), StatusCode::OK);
    let m = scrape(&app).await;
    assert_eq!(m.breaches(), Vec::<String>::new());

    // RED per public route (OpenTelemetry's `http.server.request.duration`).
    let placed = m.find(
        "http_server_request_duration_seconds_count",
        &[
            ("http_request_method", "POST"),
            ("http_route", "/api/v1/orders"),
            ("http_response_status_code", "202"),
        ],
    );
    assert!(placed.is_some_and(|s| s.value >= 1.0), "no checkout in {:#?}", m.families.keys());
    let other =
        m.find("http_server_request_duration_seconds_count", &[("http_request_method", "_OTHER")]);
    assert!(other.is_some(), "an unknown method is counted as _OTHER");
    for s in m.samples("http_server_request_duration_seconds_count") {
        assert_ne!(s.labels.get("http_request_method").map(String::as_str), Some("BREW"));
        assert!(
            s.labels.values().all(|v| !v.contains("nowhere")),
            "a raw path became a label: {s:?}"
        );
        // Only a request refused before it reached a route (404, 405, a bad token, a rate
        // limit) or a CORS preflight has no route: scrapes and probes, which answer 200
        // outside the routes, are left out.
        let preflight = s.labels.get("http_request_method").is_some_and(|m| m == "OPTIONS");
        if !s.labels.contains_key("http_route") && !preflight {
            let status =
                s.labels.get("http_response_status_code").and_then(|c| c.parse::<u16>().ok());
            assert!(status.is_some_and(|c| c >= 400), "a request outside the routes: {s:?}");
        }
    }
    // RED per edge (`rpc.client.call.duration`): the gateway's call to orders.
    let edge = m.find(
        "rpc_client_call_duration_seconds_count",
        &[("caller", "gateway"), ("rpc_service", "orders")],
    );
    assert!(edge.is_some_and(|s| s.value >= 1.0), "no edge gateway → orders");

    // The process's own figures.
    for name in ["process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"]
    {
        assert!(m.find(name, &[]).is_some_and(|s| s.value > 0.0), "{name}");
    }
    assert!(m.find("process_cpu_seconds_total", &[]).is_some());
    // What the bus owes each subscriber, and what each outbox has not published yet: each
    // process reports its own, so the public listener has them where the gateway's process
    // hosts the modules.
    if crate::SETUP != testkit::Setup::Monolith {
        return;
    }
    for subscriber in ["inventory", "orders", "payments", "notifications"] {
        for name in ["microlith_bus_backlog_messages", "microlith_bus_lag_seconds"] {
            assert!(
                m.find(name, &[("subscriber", subscriber)]).is_some(),
                "{name} of {subscriber}"
            );
        }
    }
    for module in ["orders", "inventory", "payments"] {
        for name in ["microlith_outbox_backlog_messages", "microlith_outbox_age_seconds"] {
            assert!(m.find(name, &[("module", module)]).is_some(), "{name} of {module}");
        }
    }
}
