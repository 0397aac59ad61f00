//! The contract's rules as a test suite any implementation (local or remote) must pass.

use kernel::{Limit, Principal, RequestContext, Role, UserId};

use crate::{NotificationsClient, NotificationsError};

pub async fn run(client: &NotificationsClient) {
    let me =
        RequestContext::for_user(Principal { user_id: UserId::new(), roles: vec![Role::Customer] });
    let page = client.list(&me, Limit::default(), None).await.expect("list");
    assert!(page.items.is_empty());
    assert_eq!(page.next, None);
    assert_eq!(
        client.list(&RequestContext::anonymous(), Limit::default(), None).await.unwrap_err(),
        NotificationsError::Unauthenticated
    );
}
