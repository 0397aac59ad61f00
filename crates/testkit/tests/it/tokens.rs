//! Every way a token can be wrong is a 401; roles and ownership are enforced.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use testkit::{FetchJson as _, StatusCode, TestApp};

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

struct Forger {
    key: EncodingKey,
    kid: String,
    user_id: String,
}

impl Forger {
    async fn new(app: &TestApp, user_id: &str) -> Forger {
        let pem = std::fs::read_to_string(app.signing_key_path()).unwrap();
        let jwks: Value = app.get("/.well-known/jwks.json").fetch_json().await;
        let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
        Forger {
            key: EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
            kid,
            user_id: user_id.into(),
        }
    }

    fn claims(&self) -> Value {
        let t = now();
        json!({"iss": "microlith", "aud": "microlith-api", "sub": self.user_id, "exp": t + 600,
               "nbf": t - 5, "iat": t - 5, "jti": "x", "roles": ["customer"]})
    }

    fn header(&self) -> Header {
        let mut h = Header::new(Algorithm::EdDSA);
        h.typ = Some("at+jwt".into());
        h.kid = Some(self.kid.clone());
        h
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_with(&self.header(), claims, &self.key)
    }

    fn sign_with(&self, header: &Header, claims: &Value, key: &EncodingKey) -> String {
        jsonwebtoken::encode(header, claims, key).unwrap()
    }

    /// Signed with our key over a header written as given (the library's header type
    /// cannot carry every parameter, `crit` among them).
    fn sign_raw(&self, header: &Value, claims: &Value) -> String {
        let message = format!("{}.{}", b64(header), b64(claims));
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &self.key, Algorithm::EdDSA).unwrap();
        format!("{message}.{signature}")
    }
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[tokio::test]
async fn bad_tokens_are_refused() {
    let app = crate::spawn().await;
    let user = app.register_login().await;
    let forger = Forger::new(&app, &user.id).await;

    // The forger's well-formed token works: the failures below are due to their one defect.
    let good = forger.sign(&forger.claims());
    let res = app.get("/api/v1/me").bearer_auth(&good).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // RFC 9068 allows the full media type as `typ`, in any case (RFC 7515, 4.1.9).
    for typ in ["application/at+jwt", "AT+JWT"] {
        let header = json!({"alg": "EdDSA", "typ": typ, "kid": forger.kid});
        let token = forger.sign_raw(&header, &forger.claims());
        let res = app.get("/api/v1/me").bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "typ {typ}");
    }

    let mut cases: Vec<(&str, String)> = Vec::new();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = forger.claims();
        f(&mut c);
        forger.sign(&c)
    };
    cases.push((
        "expired",
        with(&|c| {
            c["exp"] = json!(now() - 3600);
            c["iat"] = json!(now() - 7200);
            c["nbf"] = json!(now() - 7200);
        }),
    ));
    cases.push(("not yet valid", with(&|c| c["nbf"] = json!(now() + 3600))));
    cases.push(("other audience", with(&|c| c["aud"] = json!("someone-else"))));
    cases.push(("other issuer", with(&|c| c["iss"] = json!("evil"))));
    cases.push((
        "no audience",
        with(&|c| {
            c.as_object_mut().unwrap().remove("aud");
        }),
    ));
    cases.push((
        "no expiry",
        with(&|c| {
            c.as_object_mut().unwrap().remove("exp");
        }),
    ));
    cases.push((
        "no subject",
        with(&|c| {
            c.as_object_mut().unwrap().remove("sub");
        }),
    ));
    cases.push(("subject not a user id", with(&|c| c["sub"] = json!("admin"))));

    // Tampered: the payload of a valid token swapped for one that claims admin.
    let parts: Vec<&str> = user.token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["roles"] = json!(["admin"]);
    cases.push(("tampered", format!("{}.{}.{}", parts[0], b64(&claims), parts[2])));

    // alg none, with and without a signature part.
    let none_header = json!({"alg": "none", "typ": "at+jwt", "kid": forger.kid});
    cases.push(("alg none", format!("{}.{}.", b64(&none_header), b64(&forger.claims()))));
    cases.push(("alg none, no dot", format!("{}.{}", b64(&none_header), b64(&forger.claims()))));

    // HS256 with the public key as secret (the classic confusion attack).
    let jwks: Value = app.get("/.well-known/jwks.json").fetch_json().await;
    let public_x = jwks["keys"][0]["x"].as_str().unwrap();
    let mut hs = Header::new(Algorithm::HS256);
    hs.typ = Some("at+jwt".into());
    hs.kid = Some(forger.kid.clone());
    let hs_key = EncodingKey::from_secret(public_x.as_bytes());
    cases.push(("hs256 with public key", forger.sign_with(&hs, &forger.claims(), &hs_key)));

    // Signed by another key, with our kid and with its own.
    let other = identity::SigningKey::generate().unwrap();
    let other_key = EncodingKey::from_ed_pem(other.to_pem().as_bytes()).unwrap();
    cases.push((
        "other key, our kid",
        forger.sign_with(&forger.header(), &forger.claims(), &other_key),
    ));
    let mut h = forger.header();
    h.kid = Some(other.kid().to_owned());
    cases.push(("other key, its kid", forger.sign_with(&h, &forger.claims(), &other_key)));

    // Not an access token (wrong typ) and no kid.
    let mut h = forger.header();
    h.typ = Some("JWT".into());
    cases.push(("typ JWT", forger.sign_with(&h, &forger.claims(), &forger.key)));
    let mut h = forger.header();
    h.kid = None;
    cases.push(("no kid", forger.sign_with(&h, &forger.claims(), &forger.key)));
    // A critical header parameter this verifier does not understand (RFC 7515, 4.1.11).
    let crit = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": forger.kid,
        "crit": ["x-policy"], "x-policy": "read-only"});
    cases.push(("crit header", forger.sign_raw(&crit, &forger.claims())));
    let header = json!({"alg": "EdDSA", "typ": "application/jwt", "kid": forger.kid});
    cases.push(("typ application/jwt", forger.sign_raw(&header, &forger.claims())));
    cases.push(("garbage", "not.a.token".into()));
    cases.push(("empty segments", "..".into()));

    for (name, token) in &cases {
        let res = app.get("/api/v1/me").bearer_auth(token).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{name}");
        assert!(res.headers().contains_key("www-authenticate"), "{name}");
        assert_eq!(testkit::error_code(res).await, "invalid_token", "{name}");
    }

    // Missing token on a route that needs one; a non-Bearer scheme.
    let res = app.get("/api/v1/me").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(testkit::error_code(res).await, "unauthenticated");
    let res = app
        .get("/api/v1/cart")
        .header("authorization", "Basic YWRtaW46YWRtaW4=")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn customers_cannot_use_admin_routes() {
    let app = crate::spawn().await;
    let user = app.register_login().await;
    let id = app.any_product_id().await;
    let before: Value = app.get(&format!("/api/v1/products/{id}")).fetch_json().await;
    let stock_before: Value = app.get(&format!("/api/v1/inventory/{id}")).fetch_json().await;

    let attempts = [
        app.post("/api/v1/products").json(&json!({"name": "x", "category": "tea",
            "price": {"amount": 1, "currency": "USD"}})),
        app.patch(&format!("/api/v1/products/{id}"))
            .json(&json!({"price": {"amount": 1, "currency": "USD"}})),
        app.put(&format!("/api/v1/inventory/{id}")).json(&json!({"available": 0})),
    ];
    for req in attempts {
        let (client, built) = req.bearer_auth(&user.token).build_split();
        let res = client.execute(built.unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(testkit::error_code(res).await, "forbidden");
    }
    // Anonymous: 401.
    let res = app
        .put(&format!("/api/v1/inventory/{id}"))
        .json(&json!({"available": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let after: Value = app.get(&format!("/api/v1/products/{id}")).fetch_json().await;
    let stock_after: Value = app.get(&format!("/api/v1/inventory/{id}")).fetch_json().await;
    assert_eq!(before, after);
    assert_eq!(stock_before, stock_after);
    let total = app.all_products().await.len();
    assert_eq!(total, runtime::DEMO_PRODUCTS.len());
}

#[tokio::test]
async fn a_user_can_never_reach_another_users_cart() {
    let app = crate::spawn().await;
    let alice = app.register_login().await;
    let bob = app.register_login().await;
    let products = app.all_products().await;
    let (p, q) = (products[0]["id"].as_str().unwrap(), products[1]["id"].as_str().unwrap());
    app.put(&format!("/api/v1/cart/items/{p}"))
        .bearer_auth(&bob.token)
        .json(&json!({"quantity": 3}))
        .send()
        .await
        .unwrap();
    let bob_cart: Value = app.get("/api/v1/cart").bearer_auth(&bob.token).fetch_json().await;

    // Alice tries everything she can think of: bob's id in query, headers, bodies, paths.
    let tries = vec![
        app.get(&format!("/api/v1/cart?user_id={}", bob.id)),
        app.get("/api/v1/cart").header("x-user-id", &bob.id),
        app.put(&format!("/api/v1/cart/items/{q}"))
            .json(&json!({"quantity": 1, "user_id": bob.id})),
        app.put(&format!("/api/v1/cart/items/{p}?user_id={}", bob.id))
            .json(&json!({"quantity": 9})),
        app.delete(&format!("/api/v1/cart/items/{p}?user_id={}", bob.id)),
        app.delete(&format!("/api/v1/cart?user_id={}", bob.id)),
        app.get(&format!("/api/v1/cart/{}", bob.id)),
    ];
    for req in tries {
        let (client, built) = req.bearer_auth(&alice.token).build_split();
        let built = built.unwrap();
        let what = format!("{} {}", built.method(), built.url());
        let res = client.execute(built).await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        assert!(!text.contains(&bob.id), "bob's id leaked: {text}");
        assert!(!text.contains(&bob.email), "bob's email leaked: {text}");
        // A cart that comes back is Alice's own, exactly as she sees it right after.
        let alice_cart: Value =
            app.get("/api/v1/cart").bearer_auth(&alice.token).fetch_json().await;
        assert_ne!(alice_cart, bob_cart, "{what}: alice's cart became bob's");
        match status.as_u16() {
            200 => {
                let body: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(body, alice_cart, "{what} answered another cart than alice's");
            }
            204 => assert!(text.is_empty(), "{what}: {text}"),
            400 | 403 | 404 | 422 => {}
            other => panic!("{what}: unexpected {other}: {text}"),
        }
    }
    let bob_after: Value = app.get("/api/v1/cart").bearer_auth(&bob.token).fetch_json().await;
    assert_eq!(bob_cart, bob_after, "bob's cart changed");
    assert_eq!(bob_after["items"][0]["quantity"], 3);
}
