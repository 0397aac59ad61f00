//! `GET /api/v1/system/topology`: what runs where, for admins only.

use serde_json::Value;
use testkit::{FetchJson as _, StatusCode};

#[tokio::test]
async fn admins_see_every_module_placed_once_and_healthy() {
    let app = crate::spawn().await;
    let admin = app.admin_token().await;
    let view: Value = app.get("/api/v1/system/topology").bearer_auth(&admin).fetch_json().await;
    let services = view["services"].as_array().expect("services");
    let mut modules: Vec<&str> = services
        .iter()
        .flat_map(|s| s["modules"].as_array().expect("modules").iter())
        .map(|m| m.as_str().expect("module name"))
        .collect();
    modules.sort_unstable();
    assert_eq!(
        modules,
        ["cart", "catalog", "identity", "inventory", "notifications", "orders", "payments"]
    );
    for s in services {
        let instances = s["instances"].as_array().expect("instances");
        assert!(!instances.is_empty(), "{s}");
        assert!(instances.iter().all(|i| i["healthy"] == true), "{s}");
    }
    let database = view["infra"]["database"].as_str().expect("database");
    assert!(database == "sqlite" || database.starts_with("postgres://"), "{database}");

    let customer = app.register_login().await;
    let res = app.get("/api/v1/system/topology").bearer_auth(&customer.token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app.get("/api/v1/system/topology").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}
