use serde_json::Value;
use testkit::FetchJson as _;

/// Every public route, as (method, path). Adding a route means adding it here, and the
/// test checks it is both served and documented.
const PUBLIC_ROUTES: &[(&str, &str)] = &[
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("get", "/api/v1/me"),
    ("get", "/.well-known/jwks.json"),
    ("post", "/api/v1/system/keys/rotate"),
    ("get", "/api/v1/products"),
    ("post", "/api/v1/products"),
    ("get", "/api/v1/products/{id}"),
    ("patch", "/api/v1/products/{id}"),
    ("get", "/api/v1/inventory/{product_id}"),
    ("put", "/api/v1/inventory/{product_id}"),
    ("get", "/api/v1/cart"),
    ("delete", "/api/v1/cart"),
    ("put", "/api/v1/cart/items/{product_id}"),
    ("delete", "/api/v1/cart/items/{product_id}"),
    ("post", "/api/v1/orders"),
    ("get", "/api/v1/orders"),
    ("get", "/api/v1/orders/{id}"),
    ("get", "/api/v1/payments"),
    ("get", "/api/v1/notifications"),
    ("get", "/api/v1/system/dead-letters"),
    ("get", "/api/v1/system/topology"),
    ("get", "/api/v1/system/traces"),
    ("get", "/api/v1/system/traces/{trace_id}"),
    ("post", "/api/v1/system/dead-letters/{subscriber}/{event_id}/replay"),
    ("get", "/api/v1/system/traces/{trace_id}/otlp"),
    ("post", "/api/v1/system/traces/import"),
    ("post", "/api/v1/system/faults"),
    ("get", "/api/v1/system/faults"),
    ("delete", "/api/v1/system/faults"),
    ("delete", "/api/v1/system/faults/{id}"),
    ("get", "/metrics"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/openapi.json"),
];

#[tokio::test]
async fn openapi_documents_every_public_route_and_only_those() {
    let app = crate::spawn().await;
    let doc: Value = app.get("/openapi.json").fetch_json().await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    let mut routes = PUBLIC_ROUTES.to_vec();
    // The trace store's OTLP receiver, for the spans of the other processes: only where
    // there are other processes.
    if app.setup != testkit::Setup::Monolith {
        routes.push(("post", "/v1/traces"));
    }
    let mut expected: Vec<(String, String)> =
        routes.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
    expected.sort();
    assert_eq!(documented, expected);
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    // Every documented route is served: the router never answers "no such route" for it.
    let id = app.any_product_id().await;
    for (method, path) in routes {
        let concrete = path.replace("{id}", &id).replace("{product_id}", &id);
        let res = app
            .http
            .request(method.to_uppercase().parse().unwrap(), app.url(&concrete))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        if status == 404 || status == 405 {
            let code = testkit::error_code(res).await;
            assert!(
                code != "not_found" && code != "method_not_allowed",
                "{method} {path} is not routed"
            );
        }
    }
}

/// The statuses the edge answers on its own are documented on every operation they apply
/// to (issue 19: 415, 400 on `{id}` routes, 401, 413, 429 and 504 were missing).
#[tokio::test]
async fn openapi_lists_the_edges_own_answers() {
    let app = crate::spawn().await;
    let doc: Value = app.get("/openapi.json").fetch_json().await;
    // Outside authentication and rate limits: probes, the scrape, the span receiver.
    let outside_the_edge = ["/healthz", "/readyz", "/metrics", "/v1/traces"];
    for (path, item) in doc["paths"].as_object().unwrap() {
        if outside_the_edge.contains(&path.as_str()) {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            let statuses = op["responses"].as_object().unwrap();
            let mut expected = vec!["401", "429", "503", "504"];
            if path.contains('{') {
                expected.push("400");
            }
            if op.get("requestBody").is_some() {
                expected.extend(["400", "413", "415"]);
            }
            for status in expected {
                let answer = &statuses.get(status);
                assert!(answer.is_some(), "{method} {path} does not document {status}");
            }
        }
    }
    // What the document says is what the edge does.
    let wrong_type = app
        .post("/api/v1/auth/login")
        .header("content-type", "text/plain")
        .body("ada")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 415);
    let user = app.register_login().await;
    let bad_id = app.get("/api/v1/orders/not-an-id").bearer_auth(&user.token).send().await;
    assert_eq!(bad_id.unwrap().status(), 400);
}

/// `$ref`s resolved in `doc`.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => &doc["components"]["schemas"][name],
        None => v,
    }
}

/// The limits the server enforces are in the schema, made from the same typed values that
/// parse the input (issue 19: valid by the schema meant refused by the server).
#[tokio::test]
async fn openapi_shows_the_limits_the_server_enforces() {
    let app = crate::spawn().await;
    let doc: Value = app.get("/openapi.json").fetch_json().await;
    let schemas = &doc["components"]["schemas"];
    let property = |schema: &str, field: &str| resolve(&doc, &schemas[schema]["properties"][field]);
    let quantity = property("SetQuantityRequest", "quantity");
    assert_eq!(
        (quantity["minimum"].as_f64(), quantity["maximum"].as_f64()),
        (Some(1.0), Some(99.0))
    );
    let password = property("RegisterRequest", "password");
    assert_eq!(
        (password["minLength"].as_u64(), password["maxLength"].as_u64()),
        (Some(8), Some(128))
    );
    let category = property("NewProductRequest", "category");
    assert_eq!(category["pattern"], "^[a-z0-9-]+$");
    assert_eq!(category["maxLength"].as_u64(), Some(40));
    let params = doc["paths"]["/api/v1/products"]["get"]["parameters"].as_array().unwrap();
    let param = |name: &str| params.iter().find(|p| p["name"] == name).unwrap();
    let limit = resolve(&doc, &param("limit")["schema"]);
    assert_eq!((limit["minimum"].as_f64(), limit["maximum"].as_f64()), (Some(1.0), Some(100.0)));
    assert_eq!(resolve(&doc, &param("category")["schema"])["pattern"], "^[a-z0-9-]+$");
}

/// Every `$ref` of the document points at a schema the document has.
#[tokio::test]
async fn openapi_has_no_dangling_references() {
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(map) => {
                if let Some(r) = map.get("$ref").and_then(Value::as_str) {
                    out.push(r);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let app = crate::spawn().await;
    let doc: Value = app.get("/openapi.json").fetch_json().await;
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for r in found {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{r}"));
        assert!(doc["components"]["schemas"][name].is_object(), "dangling {r}");
    }
}

/// The document is browsable at `/docs`, every file from the binary itself: the page
/// loads nothing from another origin.
#[tokio::test]
async fn the_api_is_browsable_without_a_cdn() {
    let app = crate::spawn().await;
    let res = app.get("/docs/").send().await.unwrap();
    assert_eq!(res.status(), testkit::StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(page.contains("swagger-ui"), "{page}");
    assert!(!page.contains("http://") && !page.contains("https://"), "an outside URL: {page}");
    let init = app.get("/docs/swagger-initializer.js").send().await.unwrap().text().await.unwrap();
    assert!(init.contains("/openapi.json"), "{init}");
    for asset in ["/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"] {
        let res = app.get(asset).send().await.unwrap();
        assert_eq!(res.status(), testkit::StatusCode::OK, "{asset}");
        assert!(res.bytes().await.unwrap().len() > 10_000, "{asset} is the real file");
    }
}
