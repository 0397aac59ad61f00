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
    // Modules placed as functions (one module may have several triggers), in no service.
    let functions = view["functions"].as_array().expect("functions");
    let mut in_functions: Vec<&str> =
        functions.iter().map(|f| f["module"].as_str().expect("module name")).collect();
    in_functions.sort_unstable();
    in_functions.dedup();
    assert!(in_functions.iter().all(|m| !modules.contains(m)), "{modules:?} {in_functions:?}");
    modules.extend(in_functions);
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
    // Exactly the service instances of the placement plan are running, no more, no less.
    let topology = runtime::Topology::load(view["name"].as_str().expect("name")).unwrap();
    let plan = runtime::Plan::of(&topology);
    let planned: std::collections::BTreeSet<&str> = plan
        .at_start()
        .filter(|p| matches!(p.role, runtime::ProcessRole::Service { .. }))
        .map(|p| p.id.as_str())
        .collect();
    let running: std::collections::BTreeSet<&str> = services
        .iter()
        .flat_map(|s| s["instances"].as_array().expect("instances").iter())
        .map(|i| i["id"].as_str().expect("id"))
        .collect();
    assert_eq!(running, planned);
    let database = view["infra"]["database"].as_str().expect("database");
    assert!(database == "sqlite" || database.starts_with("postgres://"), "{database}");
    // The storage is the plan's too: every process started at start opened its databases,
    // and nothing opened a database the plan does not name (functions open theirs when
    // their first instance starts).
    if database == "sqlite" {
        let files: std::collections::BTreeSet<String> = std::fs::read_dir(app.data_dir())
            .expect("data dir")
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".db").map(str::to_owned))
            .collect();
        let named = |p: &runtime::plan::Process| {
            p.databases.iter().map(|d| d.to_string()).collect::<Vec<_>>()
        };
        let at_start: std::collections::BTreeSet<String> =
            plan.at_start().flat_map(named).collect();
        let mut all: std::collections::BTreeSet<String> =
            plan.processes.iter().flat_map(named).collect();
        all.insert(runtime::plan::BUS_DATABASE.into());
        assert!(at_start.is_subset(&files), "{at_start:?} not all in {files:?}");
        assert!(files.is_subset(&all), "{files:?} has some the plan does not name: {all:?}");
    }

    let customer = app.register_login().await;
    let res = app.get("/api/v1/system/topology").bearer_auth(&customer.token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app.get("/api/v1/system/topology").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

/// Every process reports its own edges: here, the process hosting cart saw its calls to
/// catalog when an item went into a cart, wherever cart runs.
#[tokio::test]
async fn every_process_reports_its_own_edges() {
    let app = crate::spawn().await;
    let admin = app.admin_token().await;
    let shopper = app.register_login().await;
    let product = app.any_product_id().await;
    app.add_to_cart(&shopper, &product, 1).await;

    let view: Value = app.get("/api/v1/system/topology").bearer_auth(&admin).fetch_json().await;
    let processes = view["resilience"]["processes"].as_array().expect("processes");
    let process = |id: &str| processes.iter().find(|p| p["process"] == id);
    for s in view["services"].as_array().expect("services") {
        for i in s["instances"].as_array().expect("instances") {
            let id = i["id"].as_str().expect("id");
            let p = process(id).unwrap_or_else(|| panic!("{id} is missing: {view}"));
            assert_eq!(p["reachable"], true, "{p}");
        }
    }
    let cart_service = view["services"]
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["modules"].as_array().expect("modules").iter().any(|m| m == "cart"));
    let Some(cart_service) = cart_service else {
        // Cart is a function: its instances are not processes the view lists (their edges
        // are not collected; a known gap in ARCHITECTURE.md).
        let functions = view["functions"].as_array().expect("functions");
        assert!(functions.iter().any(|f| f["module"] == "cart"), "cart is placed: {view}");
        return;
    };
    let cart_host = cart_service["instances"][0]["id"].as_str().expect("an instance hosts cart");
    let calls_to_catalog = process(cart_host).expect("cart's process")["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["target"] == "catalog")
        .and_then(|t| t["calls"].as_u64())
        .unwrap_or_else(|| panic!("{cart_host} has no catalog target: {view}"));
    assert!(calls_to_catalog >= 1, "{view}");
}
