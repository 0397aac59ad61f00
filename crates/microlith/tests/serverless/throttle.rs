//! A function at its concurrency limit with no queue throttles (the Invoke API's 429
//! inside the shop); the shopper sees a 503 with `Retry-After`, never a 429 or a 500.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_throttled_function_reaches_the_shopper_as_503_with_retry_after() {
    let app = crate::spawn_with(|c| {
        for f in &mut c.topology.functions {
            if f.name == "cart" {
                (f.max_concurrency, f.max_queue) = (1, 0);
            }
        }
    })
    .await;
    let admin = app.admin_token().await;
    let user = app.register_login().await;
    // Each cart call holds the one instance for 2 s.
    let slow = json!({"target": "cart", "kind": "latency", "latency_ms": 2000, "duration_s": 60});
    app.inject_fault(&admin, slow).await;

    let reads = (0..6).map(|_| {
        let req = app.get("/api/v1/cart").bearer_auth(&user.token).timeout(Duration::from_secs(30));
        async move {
            let res = req.send().await.unwrap();
            let retry_after = res.headers().get("retry-after").cloned();
            (res.status(), retry_after)
        }
    });
    let answers = futures::future::join_all(reads).await;
    let throttled: Vec<_> = answers.iter().filter(|(s, _)| *s != StatusCode::OK).collect();
    assert!(!throttled.is_empty(), "one instance cannot serve six 2 s calls at once: {answers:?}");
    for (status, retry_after) in throttled {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{answers:?}");
        assert_eq!(retry_after.as_ref().map(|v| v.to_str().unwrap()), Some("1"), "{answers:?}");
    }
    assert!(answers.iter().any(|(s, _)| *s == StatusCode::OK), "the instance served one");
}

/// The topology's `[prices]` replace Lambda's list prices in the cost estimate.
#[tokio::test]
async fn the_topologys_prices_make_the_cost_estimate() {
    let app = crate::spawn_with(|c| {
        c.topology.prices = function_host::Prices {
            per_request: 1.0,
            per_gb_second_x86_64: 0.0,
            per_gb_second_arm64: 0.0,
        };
    })
    .await;
    let admin = app.admin_token().await;
    for _ in 0..3 {
        app.any_product_id().await; // one catalog invocation each
    }
    let view: serde_json::Value =
        testkit::FetchJson::fetch_json(app.get("/api/v1/system/topology").bearer_auth(&admin))
            .await;
    let catalog = view["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "catalog")
        .cloned()
        .expect("catalog is a function");
    let invocations = catalog["invocations"].as_f64().unwrap();
    assert!(invocations >= 3.0, "{catalog}");
    // $1 a request, nothing for compute: the estimate is the count of invocations.
    assert_eq!(catalog["cost_usd"].as_f64(), Some(invocations), "{catalog}");
}
