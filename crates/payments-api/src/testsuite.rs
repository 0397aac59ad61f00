//! The contract's rules as a test suite any implementation (local or remote) must pass.

use kernel::{OrderId, Principal, RequestContext, Role, UserId};

use crate::{PaymentQuery, PaymentsClient, PaymentsError};

pub async fn run(client: &PaymentsClient) {
    let me =
        RequestContext::for_user(Principal { user_id: UserId::new(), roles: vec![Role::Customer] });
    assert!(client.list(&me, PaymentQuery::default()).await.expect("list").items.is_empty());
    assert_eq!(
        client.list(&me, PaymentQuery::of_order(OrderId::new())).await.unwrap_err(),
        PaymentsError::PaymentNotFound
    );
    assert_eq!(
        client.list(&RequestContext::anonymous(), PaymentQuery::default()).await.unwrap_err(),
        PaymentsError::Unauthenticated
    );
}
