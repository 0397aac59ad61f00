//! `/metrics` of the processes `microlith up` starts: each reports its own (a service its
//! subscribers and outboxes, the gateway's process the function host's cold starts), in
//! the Prometheus conventions; and `--metrics-listen` takes it off the public listener.

use testkit::prometheus::Exposition;

use crate::cluster::Client;

async fn scrape(url: &str) -> Exposition {
    let res = reqwest::get(url).await.unwrap();
    assert_eq!(res.status(), 200, "{url}");
    let text = res.text().await.unwrap();
    let m = Exposition::parse(&text).unwrap_or_else(|e| panic!("{url}: {e}\n{text}"));
    assert_eq!(m.breaches(), Vec::<String>::new(), "{url}");
    m
}

/// The `http://…` of the banner line that starts with `label`.
fn address(banner: &[String], label: &str) -> String {
    banner
        .iter()
        .find(|l| l.trim_start().starts_with(label))
        .and_then(|l| l.split_whitespace().find(|w| w.starts_with("http://")))
        .unwrap_or_else(|| panic!("no {label} in {banner:#?}"))
        .trim_end_matches("/metrics")
        .to_owned()
}

#[tokio::test]
async fn each_process_reports_its_own_metrics_and_the_public_listener_can_leave_them_out() {
    let _heavy = crate::heavy().await;
    for topology in ["microservices", "serverless"] {
        let dir = tempfile::tempdir().unwrap();
        let shop = crate::up_with(
            &dir.path().join("data"),
            Some("metrics-test-admin-password"),
            &["--topology", topology, "--metrics-listen", "127.0.0.1:0"],
        );
        let client = Client { http: reqwest::Client::new(), base: shop.base.clone() };
        let shopper = client.user(0).await;
        let product = client.products().await.remove(0);
        client.put_one_in_cart(&shopper, &product).await;
        let placed = client
            .http
            .post(client.url("/api/v1/orders"))
            .bearer_auth(&shopper)
            .header("idempotency-key", uuid::Uuid::new_v4().to_string())
            .json(&serde_json::json!({"payment_token": "tok_visa"}))
            .send()
            .await
            .unwrap();
        assert_eq!(placed.status(), 202, "{topology}");

        let public = client.http.get(client.url("/metrics")).send().await.unwrap();
        assert_eq!(public.status(), 404, "{topology}: /metrics is off the public listener");
        let edge = scrape(&format!("{}/metrics", address(&shop.banner, "metrics:"))).await;
        let route = [("http_route", "/api/v1/orders"), ("http_request_method", "POST")];
        assert!(
            edge.find("http_server_request_duration_seconds_count", &route).is_some(),
            "{topology}: the checkout's route"
        );
        match topology {
            "microservices" => {
                // The payments service's internal listener: its subscriber and its outbox.
                let payments =
                    scrape(&format!("{}/metrics", address(&shop.banner, "payments-1"))).await;
                for (name, labels) in [
                    ("microlith_bus_backlog_messages", [("subscriber", "payments")]),
                    ("microlith_bus_lag_seconds", [("subscriber", "payments")]),
                    ("microlith_outbox_age_seconds", [("module", "payments")]),
                ] {
                    assert!(payments.find(name, &labels).is_some(), "{name} of payments");
                }
            }
            _ => {
                // The function host, in the gateway's process: the first call of orders
                // started an instance.
                let orders = [("faas_name", "orders")];
                for name in [
                    "faas_coldstarts_total",
                    "faas_init_duration_seconds_count",
                    "faas_invocations_total",
                ] {
                    let s = edge.find(name, &orders);
                    assert!(s.is_some_and(|s| s.value >= 1.0), "{name} of orders");
                }
            }
        }
        crate::stop(shop);
    }
}
