//! One paging rule for every list: the same `limit` range, default and error, unknown
//! query parameters refused, and `next_cursor` always present (issue 19).

use serde_json::Value;
use testkit::StatusCode;

#[tokio::test]
async fn every_list_pages_by_the_same_rule() {
    let app = crate::spawn().await;
    let user = app.register_login().await;
    let admin = app.admin_token().await;
    let lists = [
        ("/api/v1/products", &user.token),
        ("/api/v1/orders", &user.token),
        ("/api/v1/notifications", &user.token),
        ("/api/v1/system/dead-letters", &admin),
        ("/api/v1/system/traces", &admin),
    ];
    for (list, token) in lists {
        let get = |query: &str| app.get(&format!("{list}?{query}")).bearer_auth(token).send();
        for bad in ["limit=0", "limit=-1", "limit=101", "limit=2147483648", "limit=1.5"] {
            let res = get(bad).await.unwrap();
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{list}?{bad}");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["code"], "invalid_input", "{list}?{bad}: {body}");
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert_eq!(message, kernel::Limit::RULE, "{list}?{bad}");
        }
        for good in ["limit=1", "limit=100", ""] {
            assert_eq!(get(good).await.unwrap().status(), StatusCode::OK, "{list}?{good}");
        }
        let res = get("sort=price").await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{list} refuses an unknown parameter");
    }
    let res = app.get("/api/v1/payments?sort=price").bearer_auth(&user.token).send().await;
    assert_eq!(res.unwrap().status(), StatusCode::BAD_REQUEST, "payments too");

    // `next_cursor` is there on every page, null on the last.
    for (list, token) in [("/api/v1/orders", &user.token), ("/api/v1/notifications", &user.token)] {
        let page: Value =
            app.get(list).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        assert!(page.as_object().unwrap().contains_key("next_cursor"), "{list}: {page}");
    }
}
