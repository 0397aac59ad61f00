//! Every module's contract suite, run against the local implementation and against the
//! same implementation reached over real HTTP through its remote client: a placement must
//! not change what a contract means, typed errors included.

use std::time::Duration;

use cart_api::{CartClient, CartQuantity};
use catalog_api::{CatalogClient, Product};
use identity_api::IdentityClient;
use inventory_api::InventoryClient;
use kernel::{Currency, Money, Principal, ProductId, RequestContext, Role, UserId};
use notifications_api::NotificationsClient;
use orders_api::OrdersClient;
use payments_api::PaymentsClient;
use store::Db;
use testkit::serve_internal;

async fn db(dir: &tempfile::TempDir, name: &str) -> Db {
    Db::open_sqlite(&dir.path().join(format!("{name}.db"))).await.expect("open db")
}

fn product(id: ProductId) -> Product {
    Product {
        id,
        name: "thing".into(),
        description: String::new(),
        category: "things".into(),
        price: Money::new(150, Currency::USD),
        created_at: String::new(),
        updated_at: String::new(),
    }
}

#[tokio::test]
async fn identity_local_and_remote() {
    let dir = tempfile::tempdir().unwrap();
    let keys = identity::MemoryKeys::new(identity::SigningKey::generate().unwrap());
    let local = IdentityClient::local(
        identity::Identity::new(db(&dir, "identity").await, keys, Default::default())
            .await
            .unwrap(),
    );
    identity_api::testsuite::run(&local, "local").await;
    let (remote, _server) = serve_internal("identity", identity_api::internal_routes(local)).await;
    identity_api::testsuite::run(&IdentityClient::remote(remote), "remote").await;
}

#[tokio::test]
async fn catalog_local_and_remote() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let local = CatalogClient::local(catalog::Catalog::new(db(&a, "catalog").await).await.unwrap());
    catalog_api::testsuite::run(&local).await;
    let served =
        CatalogClient::local(catalog::Catalog::new(db(&b, "catalog").await).await.unwrap());
    let (remote, _server) = serve_internal("catalog", catalog_api::internal_routes(served)).await;
    catalog_api::testsuite::run(&CatalogClient::remote(remote)).await;
}

/// Other modules' tests read the catalog through the in-memory fake: it keeps the
/// contract's rules too, so those tests cannot pass against a catalog that does not exist.
#[tokio::test]
async fn catalog_fake() {
    catalog_api::testsuite::run(&CatalogClient::fake(Vec::new())).await;
}

#[tokio::test]
async fn inventory_local_and_remote() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c, d) = (ProductId::new(), ProductId::new(), ProductId::new(), ProductId::new());
    let catalog = CatalogClient::fake(vec![product(a), product(b), product(c), product(d)]);
    let local = InventoryClient::from_arc(
        inventory::Inventory::new(db(&dir, "inventory").await, catalog).await.unwrap(),
    );
    inventory_api::testsuite::run(&local, a, b).await;
    let (remote, _server) =
        serve_internal("inventory", inventory_api::internal_routes(local)).await;
    inventory_api::testsuite::run(&InventoryClient::remote(remote), c, d).await;
}

#[tokio::test]
async fn cart_local_and_remote() {
    let dir = tempfile::tempdir().unwrap();
    let p = ProductId::new();
    let local = CartClient::from_arc(
        cart::Cart::new(db(&dir, "cart").await, CatalogClient::fake(vec![product(p)]))
            .await
            .unwrap(),
    );
    cart_api::testsuite::run(&local, p).await;
    let (remote, _server) = serve_internal("cart", cart_api::internal_routes(local)).await;
    cart_api::testsuite::run(&CartClient::remote(remote), p).await;
}

#[tokio::test]
async fn orders_local_and_remote() {
    let dir = tempfile::tempdir().unwrap();
    let p = ProductId::new();
    let cart = CartClient::from_arc(
        cart::Cart::new(db(&dir, "cart").await, CatalogClient::fake(vec![product(p)]))
            .await
            .unwrap(),
    );
    let local = OrdersClient::from_arc(
        orders::Orders::new(db(&dir, "orders").await, cart.clone(), Default::default())
            .await
            .unwrap(),
    );
    let shopper = async || {
        let id = UserId::new();
        let ctx = RequestContext::for_user(Principal { user_id: id, roles: vec![Role::Customer] });
        cart.set_item(&ctx, id, p, CartQuantity::new(1).unwrap()).await.unwrap();
        id
    };
    orders_api::testsuite::run(&local, shopper().await, UserId::new()).await;
    let (remote, _server) = serve_internal("orders", orders_api::internal_routes(local)).await;
    orders_api::testsuite::run(&OrdersClient::remote(remote), shopper().await, UserId::new()).await;
}

#[tokio::test]
async fn payments_and_notifications_local_and_remote() {
    let dir = tempfile::tempdir().unwrap();
    let provider = payments::CardProvider::new(db(&dir, "card-provider").await).await.unwrap();
    let payments = PaymentsClient::from_arc(
        payments::Payments::new(db(&dir, "payments").await, provider).await.unwrap(),
    );
    payments_api::testsuite::run(&payments).await;
    let (remote, _s1) = serve_internal("payments", payments_api::internal_routes(payments)).await;
    payments_api::testsuite::run(&PaymentsClient::remote(remote)).await;

    let notifications = NotificationsClient::from_arc(
        notifications::Notifications::new(db(&dir, "notifications").await).await.unwrap(),
    );
    notifications_api::testsuite::run(&notifications).await;
    let (remote, _s2) =
        serve_internal("notifications", notifications_api::internal_routes(notifications)).await;
    notifications_api::testsuite::run(&NotificationsClient::remote(remote)).await;
}

/// The transport's own failures become the contract's `Unavailable` and `Timeout`.
#[tokio::test]
async fn transport_failures_are_typed() {
    let catalog = CatalogClient::fake(vec![]);
    let (remote, server) = serve_internal("catalog", catalog_api::internal_routes(catalog)).await;
    let client = CatalogClient::remote(remote);
    let ctx = RequestContext::anonymous();
    // A caller whose deadline has passed: no call is made.
    let late = RequestContext::anonymous()
        .with_deadline(Some(std::time::Instant::now() - Duration::from_millis(1)));
    assert_eq!(
        client.get(&late, ProductId::new()).await.unwrap_err(),
        catalog_api::CatalogError::Timeout
    );
    assert_eq!(
        client.get(&ctx, ProductId::new()).await.unwrap_err(),
        catalog_api::CatalogError::ProductNotFound
    );
    server.abort();
    let _ = server.await;
    assert_eq!(
        client.get(&ctx, ProductId::new()).await.unwrap_err(),
        catalog_api::CatalogError::Unavailable
    );
}

/// Internal routes refuse a call without a credential, with one for another service, one
/// signed by a key the shop does not know, or one from a service outside the call graph;
/// the user is believed only from a delegation the public edge signed.
#[tokio::test]
async fn internal_routes_admit_only_the_call_graph_and_proven_users() {
    let catalog = CatalogClient::fake(vec![]);
    let topology = runtime::Topology::load("microservices").unwrap();
    let key = |name: &str| rpc::ServiceKey::generate(name).unwrap();
    let (gateway, payments, inventory) = (key("gateway"), key("payments"), key("inventory"));
    let own = key("catalog");
    let keys = rpc::StaticKeys::new().with(&gateway).with(&payments).with(&inventory).with(&own);
    let keys: std::sync::Arc<dyn rpc::KeySource> = std::sync::Arc::new(keys);
    let verifier = rpc::CredentialVerifier::new(
        "catalog",
        keys.clone(),
        &runtime::trust::edge_name(&topology),
        runtime::trust::call_policy(&topology),
    );
    let signer = rpc::CredentialIssuer::new(own, keys);
    let app = rpc::internal::guard(catalog_api::internal_routes(catalog), verifier, signer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/internal/catalog", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::new();
    let get = format!("[\"{}\"]", ProductId::new());
    let create = serde_json::json!([{
        "name": "Forged", "description": "", "category": "tea",
        "price": {"amount": 1, "currency": "USD"}
    }])
    .to_string();
    let send = |method: &str, body: &str, token: Option<String>, on_behalf_of: Option<String>| {
        let mut req = http
            .post(format!("{base}/{method}"))
            .header("content-type", "application/json")
            // What the shop used to believe: a plain header naming any user as admin.
            .header("x-microlith-caller", format!("{};admin", UserId::new()))
            .body(body.to_owned());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(d) = on_behalf_of {
            req = req.header("x-microlith-on-behalf-of", d);
        }
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            (status, body)
        }
    };
    let code = |body: &serde_json::Value| body["error"]["code"].as_str().unwrap_or("").to_owned();
    let no_keys: std::sync::Arc<dyn rpc::KeySource> = std::sync::Arc::new(rpc::StaticKeys::new());
    let issuer = |k: &rpc::ServiceKey| rpc::CredentialIssuer::new(k.clone(), no_keys.clone());

    assert_eq!(send("get", &get, None, None).await.0, 401);
    let for_cart = issuer(&inventory).token_for("cart").unwrap();
    assert_eq!(send("get", &get, Some(for_cart), None).await.0, 401, "another audience");
    let unknown = issuer(&key("inventory")).token_for("catalog").unwrap();
    assert_eq!(send("get", &get, Some(unknown), None).await.0, 401, "a key the shop never made");
    let inventory_token = issuer(&inventory).token_for("catalog").unwrap();
    let (status, _) = send("get", &get, Some(inventory_token.clone()), None).await;
    assert_eq!(status, 404, "in the call graph: the catalog's own answer");

    // payments calls no one: even with a valid credential of its own, catalog refuses it.
    let payments_token = issuer(&payments).token_for("catalog").unwrap();
    let (status, body) = send("create", &create, Some(payments_token.clone()), None).await;
    assert_eq!((status, code(&body)), (403, "call_not_allowed".into()));
    assert_eq!(send("get", &get, Some(payments_token), None).await.0, 403);
    // inventory may read the catalog, not write it.
    let (status, _) = send("create", &create, Some(inventory_token), None).await;
    assert_eq!(status, 403);

    // The edge may call create, but not for a user it did not prove.
    let edge_token = issuer(&gateway).token_for("catalog").unwrap();
    let (status, _) = send("create", &create, Some(edge_token.clone()), None).await;
    assert_eq!(status, 401, "the caller header alone is no user");
    let admin = Principal { user_id: UserId::new(), roles: vec![Role::Admin] };
    let forged = issuer(&payments).delegating().delegation_for(&admin).unwrap();
    let (status, body) = send("create", &create, Some(edge_token.clone()), forged).await;
    assert_eq!(
        (status, code(&body)),
        (401, "invalid_delegation".into()),
        "payments cannot delegate"
    );
    let customer = Principal { user_id: UserId::new(), roles: vec![Role::Customer] };
    let as_customer = issuer(&gateway).delegating().delegation_for(&customer).unwrap();
    assert_eq!(send("create", &create, Some(edge_token.clone()), as_customer).await.0, 403);
    let as_admin = issuer(&gateway).delegating().delegation_for(&admin).unwrap();
    let (status, body) = send("create", &create, Some(edge_token), as_admin).await;
    assert_eq!((status, body["name"].as_str()), (200, Some("Forged")), "{body}");
}

/// A process that took over a service's port cannot answer in its name: the caller refuses
/// an answer the service did not sign for this very call, even a real one replayed.
#[tokio::test]
async fn only_the_called_service_answers() {
    let id = ProductId::new();
    let (real, gateway, keys) = guarded_catalog(CatalogClient::fake(vec![product(id)])).await;
    let serve = |app: axum::Router| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    };

    // An impostor answering what the catalog would, unsigned.
    let answer = serde_json::to_string(&product(id)).unwrap();
    let impostor = serve(axum::Router::new().fallback(move || {
        let answer = answer.clone();
        async move { ([("content-type", "application/json")], answer) }
    }))
    .await;
    // A relay that forwards the first call to the catalog and replays that answer, signature
    // and all, to every later call.
    let recorded = std::sync::Arc::new(tokio::sync::OnceCell::new());
    let upstream = real.clone();
    let replay = serve(axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (recorded, upstream) = (recorded.clone(), upstream.clone());
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            let (status, headers, bytes) = recorded
                .get_or_init(|| async {
                    let res = reqwest::Client::new()
                        .post(format!("{upstream}{}", parts.uri.path()))
                        .headers(parts.headers.clone())
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    (res.status(), res.headers().clone(), res.bytes().await.unwrap())
                })
                .await
                .clone();
            (status, headers, bytes)
        }
    }))
    .await;

    let client = |base: &str| {
        let endpoints = rpc::StaticEndpoints::new(vec![rpc::Endpoint {
            instance: "catalog-1".into(),
            base_url: base.to_owned(),
        }]);
        let issuer = rpc::CredentialIssuer::new(gateway.clone(), keys.clone());
        CatalogClient::remote(rpc::Remote::new(
            rpc::http_pool(),
            "catalog",
            endpoints,
            issuer,
            Duration::from_secs(5),
        ))
    };
    let ctx = RequestContext::anonymous();
    assert_eq!(client(&real).get(&ctx, id).await.unwrap().id, id, "the catalog's own answer");
    let err = client(&impostor).get(&ctx, id).await.unwrap_err();
    assert_eq!(err, catalog_api::CatalogError::Unavailable, "an unsigned answer is no answer");
    let through_relay = client(&replay);
    assert_eq!(through_relay.get(&ctx, id).await.unwrap().id, id, "relayed as it was signed");
    let err = through_relay.get(&ctx, id).await.unwrap_err();
    assert_eq!(err, catalog_api::CatalogError::Unavailable, "a replayed answer is refused");
}

/// `catalog`'s internal routes behind the guard on a loopback port: the base URL, and the
/// key and public keys a caller in the name of the public edge needs.
async fn guarded_catalog(
    catalog: CatalogClient,
) -> (String, rpc::ServiceKey, std::sync::Arc<dyn rpc::KeySource>) {
    let (gateway, own) = (
        rpc::ServiceKey::generate("gateway").unwrap(),
        rpc::ServiceKey::generate("catalog").unwrap(),
    );
    let keys: std::sync::Arc<dyn rpc::KeySource> =
        std::sync::Arc::new(rpc::StaticKeys::new().with(&gateway).with(&own));
    let verifier =
        rpc::CredentialVerifier::new("catalog", keys.clone(), "gateway", rpc::allow_all());
    let signer = rpc::CredentialIssuer::new(own, keys.clone());
    let app = rpc::internal::guard(catalog_api::internal_routes(catalog), verifier, signer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, gateway, keys)
}

/// A call whose caller has no time left is answered 504 before the module does any work.
#[tokio::test]
async fn a_call_whose_budget_is_spent_is_answered_504_without_work() {
    let mut mock = catalog_api::MockCatalogService::new();
    mock.expect_get().times(0);
    let (base, gateway, keys) = guarded_catalog(CatalogClient::local(mock)).await;
    let token = rpc::CredentialIssuer::new(gateway, keys).token_for("catalog").unwrap();
    let res = reqwest::Client::new()
        .post(format!("{base}/internal/catalog/get"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header(rpc::wire::TIMEOUT_MS, "0")
        .body(format!("[\"{}\"]", ProductId::new()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 504);
    assert_eq!(testkit::error_code(res).await, "deadline_exceeded");
}

/// A connection refused by one instance is tried on the next (the request never left, so
/// this is safe for any call), and that instance is avoided for a while.
#[tokio::test]
async fn a_refused_connection_is_tried_on_another_instance() {
    let id = ProductId::new();
    let (base, gateway, keys) = guarded_catalog(CatalogClient::fake(vec![product(id)])).await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    }; // closed again: connecting is refused
    let endpoint = |instance: &str, base_url: &str| rpc::Endpoint {
        instance: instance.into(),
        base_url: base_url.into(),
    };
    let endpoints =
        rpc::StaticEndpoints::new(vec![endpoint("catalog-1", &dead), endpoint("catalog-2", &base)]);
    let client = CatalogClient::remote(rpc::Remote::new(
        rpc::http_pool(),
        "catalog",
        endpoints.clone(),
        rpc::CredentialIssuer::new(gateway, keys),
        Duration::from_secs(5),
    ));
    let ctx = RequestContext::anonymous();
    for _ in 0..4 {
        assert_eq!(client.get(&ctx, id).await.unwrap().id, id);
    }
    use rpc::Endpoints as _;
    for _ in 0..2 {
        let picked = endpoints.pick(&[]).unwrap();
        assert_eq!(picked.instance, "catalog-2", "the refusing instance is avoided");
    }
}
