//! Notifications: one message per event however often it is delivered, each user's own only.

use bus::{Envelope, Handler, TraceContext};
use kernel::{Limit, OrderId, Principal, RequestContext, Role, UserId};
use notifications::Notifications;
use notifications_api::{NotificationKind, NotificationsError, NotificationsService};
use orders_api::CancelReason;
use orders_api::events::OrderCancelled;

fn user_ctx(user: UserId) -> RequestContext {
    RequestContext::for_user(Principal { user_id: user, roles: vec![Role::Customer] })
}

#[tokio::test]
async fn one_notification_per_event_for_its_user_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = store::Db::open_sqlite(&dir.path().join("n.db")).await.unwrap();
    let n = Notifications::new(db).await.unwrap();
    let (alice, bob) = (UserId::new(), UserId::new());
    let order = OrderId::new();
    let e = OrderCancelled { order_id: order, user_id: alice, reason: CancelReason::OutOfStock };
    let env = Envelope::new("orders", &e, TraceContext::default());
    n.handle(&env).await.unwrap();
    n.handle(&env).await.unwrap();

    let mine = n.list(&user_ctx(alice), Limit::default(), None).await.unwrap();
    assert_eq!(mine.items.len(), 1);
    assert_eq!(mine.items[0].kind, NotificationKind::OrderCancelled);
    assert_eq!(mine.items[0].order_id, Some(order));
    assert!(mine.items[0].body.contains("out of stock"), "{}", mine.items[0].body);
    assert!(n.list(&user_ctx(bob), Limit::default(), None).await.unwrap().items.is_empty());
    assert_eq!(
        n.list(&RequestContext::anonymous(), Limit::default(), None).await.unwrap_err(),
        NotificationsError::Unauthenticated
    );
}

#[tokio::test]
async fn pages_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let db = store::Db::open_sqlite(&dir.path().join("n.db")).await.unwrap();
    let n = Notifications::new(db).await.unwrap();
    let alice = UserId::new();
    let mut orders = Vec::new();
    for _ in 0..5 {
        let order = OrderId::new();
        orders.push(order);
        let e = OrderCancelled {
            order_id: order,
            user_id: alice,
            reason: CancelReason::PaymentDeclined,
        };
        n.handle(&Envelope::new("orders", &e, TraceContext::default())).await.unwrap();
    }
    let first = n.list(&user_ctx(alice), Limit::new(Some(3)).unwrap(), None).await.unwrap();
    assert_eq!(first.items.len(), 3);
    assert_eq!(first.items[0].order_id, Some(orders[4]));
    let rest = n.list(&user_ctx(alice), Limit::new(Some(3)).unwrap(), first.next).await.unwrap();
    assert_eq!(rest.items.len(), 2);
    assert!(rest.next.is_none());
    assert_eq!(rest.items[1].order_id, Some(orders[0]));
}
