use super::*;

fn key(name: &str) -> ServiceKey {
    ServiceKey::generate(name).unwrap()
}

fn verifier(service: &str, keys: StaticKeys) -> CredentialVerifier {
    CredentialVerifier::new(service, Arc::new(keys), "gateway", allow_all())
}

/// An issuer that knows no one's public key (answers are checked in their own test).
fn issuer(key: ServiceKey) -> CredentialIssuer {
    CredentialIssuer::new(key, Arc::new(StaticKeys::new()))
}

/// Signs `claims` with `key` as `kid`, for tokens the issuer would never mint.
fn forge(key: &ServiceKey, claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(&header(key.name()), claims, &key.encoding).unwrap()
}

#[test]
fn a_credential_names_its_caller_and_one_audience() {
    let orders = key("orders");
    let issuer = issuer(orders.clone());
    let token = issuer.token_for("cart").unwrap();
    assert_eq!(issuer.token_for("cart").unwrap(), token, "cached");
    let keys = StaticKeys::new().with(&orders);
    assert_eq!(verifier("cart", keys.clone()).verify(&token).unwrap(), "orders");
    assert!(verifier("payments", keys.clone()).verify(&token).is_err(), "another audience");
    assert!(verifier("cart", StaticKeys::new()).verify(&token).is_err(), "unknown signer");
    assert!(verifier("cart", keys).verify("garbage").is_err());
}

#[test]
fn a_callee_cannot_mint_in_the_callers_name() {
    // payments signs with its own key but claims to be orders.
    let orders = key("orders");
    let payments = key("payments");
    let keys = StaticKeys::new().with(&orders).with(&payments);
    let now = now_secs();
    let mut h = header("orders");
    h.kid = Some("orders".into());
    let claims = serde_json::json!({"iss": "orders", "sub": "orders", "aud": "cart", "iat": now, "exp": now + 30});
    let forged = jsonwebtoken::encode(&h, &claims, &payments.encoding).unwrap();
    assert!(matches!(
        verifier("cart", keys.clone()).verify(&forged),
        Err(CredentialError::Invalid(_))
    ));
    // Signed by payments as payments, but naming orders as the subject.
    let claims = serde_json::json!({"iss": "payments", "sub": "orders", "aud": "cart", "iat": now, "exp": now + 30});
    assert!(verifier("cart", keys).verify(&forge(&payments, &claims)).is_err());
}

#[test]
fn long_lived_and_future_tokens_are_refused() {
    let payments = key("payments");
    let keys = StaticKeys::new().with(&payments);
    let now = now_secs();
    let ten_years = serde_json::json!({"iss": "payments", "sub": "payments", "aud": "catalog", "iat": now, "exp": now + 315_360_000});
    assert_eq!(
        verifier("catalog", keys.clone()).verify(&forge(&payments, &ten_years)),
        Err(CredentialError::TooLong)
    );
    let future = serde_json::json!({"iss": "payments", "sub": "payments", "aud": "catalog", "iat": now + 3600, "exp": now + 3630});
    assert!(verifier("catalog", keys.clone()).verify(&forge(&payments, &future)).is_err());
    let no_iat = serde_json::json!({"iss": "payments", "sub": "payments", "aud": "catalog", "exp": now + 30});
    assert!(verifier("catalog", keys).verify(&forge(&payments, &no_iat)).is_err());
}

#[test]
fn only_the_edge_signs_delegations() {
    let gateway = key("gateway");
    let payments = key("payments");
    let keys = StaticKeys::new().with(&gateway).with(&payments);
    let alice = Principal { user_id: UserId::new(), roles: vec![Role::Customer] };
    let edge = issuer(gateway).delegating();
    let token = edge.delegation_for(&alice).unwrap().unwrap();
    assert_eq!(verifier("cart", keys.clone()).verify_delegation(&token).unwrap(), alice);
    // A delegation is not a service credential, nor the other way round.
    assert!(verifier("cart", keys.clone()).verify(&token).is_err());
    assert!(
        verifier("cart", keys.clone()).verify_delegation(&edge.token_for("cart").unwrap()).is_err()
    );

    let service = issuer(payments.clone());
    assert_eq!(service.delegation_for(&alice).unwrap(), None, "a service may not delegate");
    let admin = Principal { user_id: UserId::new(), roles: vec![Role::Admin] };
    let forged = issuer(payments).delegating().delegation_for(&admin).unwrap().unwrap();
    assert!(matches!(
        verifier("catalog", keys).verify_delegation(&forged),
        Err(CredentialError::NotTheDelegator { .. })
    ));
}

#[test]
fn a_signed_payload_covers_every_byte() {
    let gateway = key("gateway");
    let keys = StaticKeys::new().with(&gateway);
    let issuer = issuer(gateway);
    let payload = br#"{"Records":[{"id":1}]}"#;
    let token = issuer.sign_payload("orders-events", payload).unwrap();
    let v = verifier("orders-events", keys.clone());
    assert_eq!(v.verify_payload(&token, payload).unwrap(), "gateway");
    assert_eq!(
        v.verify_payload(&token, br#"{"Records":[{"id":2}]}"#),
        Err(CredentialError::DigestMismatch)
    );
    assert!(verifier("payments-events", keys).verify_payload(&token, payload).is_err());
    // A plain credential vouches for no payload, and a payload signature is no credential.
    assert_eq!(
        v.verify_payload(&issuer.token_for("orders-events").unwrap(), payload),
        Err(CredentialError::DigestMismatch)
    );
    assert!(v.verify(&token).is_err());
}

#[test]
fn keys_survive_pem() {
    let a = key("cart");
    let b = ServiceKey::from_pem("cart", a.to_pem()).unwrap();
    assert_eq!(a.public_x(), b.public_x());
    assert!(ServiceKey::from_pem("cart", "garbage").is_err());
    assert!(!format!("{a:?}").contains("PRIVATE"));
}

#[test]
fn an_answer_is_the_callees_and_answers_one_call_only() {
    let (orders, cart, payments) = (key("orders"), key("cart"), key("payments"));
    let keys = Arc::new(StaticKeys::new().with(&orders).with(&cart).with(&payments));
    let caller = CredentialIssuer::new(orders.clone(), keys.clone());
    let callee = CredentialIssuer::new(cart.clone(), keys.clone());
    let body = br#"{"lines":[]}"#;
    let sig = callee.sign_answer("orders", "n1", 200, body).unwrap();
    assert_eq!(caller.check_answer("cart", "n1", 200, body, Some(&sig)), Ok(()));

    let refused = |callee: &str, nonce: &str, status: u16, body: &[u8], sig: Option<&str>| {
        caller.check_answer(callee, nonce, status, body, sig).unwrap_err()
    };
    assert_eq!(refused("cart", "n1", 200, body, None), CredentialError::Unsigned);
    assert_eq!(
        refused("cart", "n2", 200, body, Some(&sig)),
        CredentialError::DigestMismatch,
        "replayed to another call"
    );
    assert_eq!(
        refused("cart", "n1", 404, body, Some(&sig)),
        CredentialError::DigestMismatch,
        "another status"
    );
    assert_eq!(
        refused("cart", "n1", 200, b"{}", Some(&sig)),
        CredentialError::DigestMismatch,
        "another body"
    );
    assert!(matches!(
        refused("catalog", "n1", 200, body, Some(&sig)),
        CredentialError::WrongSigner { .. }
    ));
    // Another service of the shop, signing well, is still not the service called.
    let other = CredentialIssuer::new(payments, keys.clone())
        .sign_answer("orders", "n1", 200, body)
        .unwrap();
    assert!(matches!(
        refused("cart", "n1", 200, body, Some(&other)),
        CredentialError::WrongSigner { .. }
    ));
    // An answer meant for another caller.
    let to_payments = callee.sign_answer("payments", "n1", 200, body).unwrap();
    assert!(matches!(
        refused("cart", "n1", 200, body, Some(&to_payments)),
        CredentialError::Invalid(_)
    ));
    // A service credential or a signed payload is not an answer.
    let token = callee.token_for("orders").unwrap();
    assert_eq!(refused("cart", "n1", 200, body, Some(&token)), CredentialError::DigestMismatch);
    let payload = callee.sign_payload("orders", body).unwrap();
    assert_eq!(refused("cart", "n1", 200, body, Some(&payload)), CredentialError::DigestMismatch);
}

#[test]
fn a_remembered_token_is_believed_only_until_it_expires() {
    let orders = key("orders");
    let v = verifier("cart", StaticKeys::new().with(&orders));
    let token = issuer(orders.clone()).token_for("cart").unwrap();
    assert_eq!(v.verify(&token).unwrap(), "orders");
    assert_eq!(v.verify(&token).unwrap(), "orders", "remembered");
    assert!(v.verify_delegation(&token).is_err(), "a credential is never a delegation");

    // A token that expired since it was verified is checked again, and refused.
    let now = now_secs();
    let claims = serde_json::json!({"iss": "orders", "sub": "orders", "aud": "cart", "iat": now - 130, "exp": now - 100});
    let stale = forge(&orders, &claims);
    v.verified.insert(stale.clone(), (Verified::Caller("orders".into()), now - 100));
    assert!(v.verify(&stale).is_err());
}
