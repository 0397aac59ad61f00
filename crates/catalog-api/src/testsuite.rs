//! The contract's rules as a test suite any implementation (local or remote) must pass.

use kernel::{Currency, Money, Principal, ProductId, RequestContext, Role, UserId, page_params};

use crate::{
    CatalogClient, CatalogError, ListParams, NewProduct, NewProductRequest, ProductPatch,
    ProductPatchRequest, ProductQuery,
};

fn usd(amount: i64) -> Money {
    Money { amount, currency: Currency::USD }
}

pub async fn run(client: &CatalogClient) {
    let sys = RequestContext::system();
    let customer =
        RequestContext::for_user(Principal { user_id: UserId::new(), roles: vec![Role::Customer] });
    let new = NewProduct::parse(NewProductRequest {
        name: "Suite Teapot".into(),
        description: "Holds tea".into(),
        category: "suite".into(),
        price: usd(2500),
    })
    .expect("new product");

    assert_eq!(client.create(&customer, new.clone()).await.unwrap_err(), CatalogError::Forbidden);
    assert_eq!(
        client.create(&RequestContext::anonymous(), new.clone()).await.unwrap_err(),
        CatalogError::Unauthenticated
    );
    let created = client.create(&sys, new).await.expect("create");
    assert_eq!(client.get(&customer, created.id).await.expect("get"), created);
    assert_eq!(
        client.get(&customer, ProductId::new()).await.unwrap_err(),
        CatalogError::ProductNotFound
    );

    let patch = ProductPatch::parse(ProductPatchRequest {
        price: Some(usd(1999)),
        ..ProductPatchRequest::default()
    })
    .expect("patch");
    let updated = client.update(&sys, created.id, patch).await.expect("update");
    assert_eq!(updated.price, usd(1999));
    assert_eq!(updated.name, created.name);

    let query = ProductQuery::parse(ListParams {
        q: Some("SUITE teapot".into()),
        category: Some("suite".into()),
        ..ListParams::default()
    })
    .expect("query");
    let page = client.list(&customer, query).await.expect("list");
    assert_eq!(page.items, vec![updated.clone()]);
    assert_eq!(page.next, None);

    // Paging: a page of one, then the rest after its cursor.
    let (limit, _) = page_params::<ProductId>(Some("1"), None).expect("limit");
    let first = client
        .list(&customer, ProductQuery { limit, ..ProductQuery::default() })
        .await
        .expect("first page");
    assert_eq!(first.items.len(), 1);
    if let Some(cursor) = first.next {
        let next = client
            .list(&customer, ProductQuery { limit, after: Some(cursor), ..ProductQuery::default() })
            .await
            .expect("next page");
        assert_ne!(next.items.first().map(|p| p.id), Some(first.items[0].id));
    }

    let quotes = client.quote(&sys, vec![created.id, ProductId::new()]).await.expect("quote");
    assert_eq!(quotes.len(), 1, "unknown ids are left out");
    assert_eq!(quotes[0].unit_price, usd(1999));
}
