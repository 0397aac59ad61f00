use testkit::StatusCode;

#[tokio::test]
async fn a_burst_from_one_user_is_limited_and_others_are_not() {
    let app = crate::spawn_with(|c| {
        c.gateway.per_user = gateway::RateQuota::new(1, 5).unwrap();
    })
    .await;
    let greedy = app.register_login().await;
    let calm = app.register_login().await;

    let mut limited = None;
    for _ in 0..20 {
        let res = app.get("/api/v1/cart").bearer_auth(&greedy.token).send().await.unwrap();
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(res);
            break;
        }
        assert_eq!(res.status(), StatusCode::OK);
    }
    let res = limited.expect("a burst of 20 over a burst quota of 5 is limited");
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(testkit::error_code(res).await, "rate_limited");

    // Another user behind the same address still gets through.
    let res = app.get("/api/v1/cart").bearer_auth(&calm.token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn anonymous_requests_are_limited_per_address() {
    let app = crate::spawn_with(|c| {
        c.gateway.per_address = gateway::RateQuota::new(1, 3).unwrap();
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(app.get("/api/v1/products").send().await.unwrap().status());
    }
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    // Probes are not limited.
    assert_eq!(app.get("/healthz").send().await.unwrap().status(), StatusCode::OK);
}
