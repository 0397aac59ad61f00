//! Payments' consumer: one charge per order whatever is redelivered, declines, expiry,
//! refunds, and each user seeing only their own payments.

use std::sync::Arc;

use bus::{Envelope, Handler, TraceContext};
use kernel::Limit;
use kernel::{Currency, Money, OrderId, Principal, RequestContext, Role, UserId};
use orders_api::CancelReason;
use orders_api::events::{OrderCancelled, PaymentRequested, RefundRequested};
use payments::{CardProvider, Payments};
use payments_api::{
    DeclineReason, PaymentQuery, PaymentStatus, PaymentToken, PaymentsError, PaymentsService,
};
use store::Db;

struct World {
    dir: tempfile::TempDir,
    payments: Arc<Payments>,
    provider: CardProvider,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_sqlite(&dir.path().join("payments.db")).await.unwrap();
    let pdb = Db::open_sqlite(&dir.path().join("provider.db")).await.unwrap();
    let provider = CardProvider::new(pdb).await.unwrap();
    let payments = Payments::new(db, provider.clone()).await.unwrap();
    World { dir, payments, provider }
}

fn user_ctx(user: UserId) -> RequestContext {
    RequestContext::for_user(Principal { user_id: user, roles: vec![Role::Customer] })
}

fn request(user: UserId, token: PaymentToken, expires_in_ms: i64) -> (OrderId, Envelope) {
    let order_id = OrderId::new();
    let e = PaymentRequested {
        order_id,
        user_id: user,
        amount: Money::new(2599, Currency::USD),
        payment_token: token,
        expires_at: kernel::now_ms() + expires_in_ms,
    };
    (order_id, Envelope::new("orders", &e, TraceContext::default()))
}

#[tokio::test]
async fn a_redelivered_payment_request_charges_once() {
    let w = world().await;
    let user = UserId::new();
    let (order, env) = request(user, PaymentToken::Visa, 60_000);
    w.payments.handle(&env).await.unwrap();
    w.payments.handle(&env).await.unwrap();
    // A second request event for the same order (a new id) does not charge again either.
    let mut again = env.clone();
    again.id = kernel::EventId::new();
    w.payments.handle(&again).await.unwrap();

    assert_eq!(w.provider.captures_for(&order.to_string()).await.unwrap(), 1);
    let list = w.payments.list(&user_ctx(user), PaymentQuery::of_order(order)).await.unwrap().items;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].status, PaymentStatus::Captured);
    assert_eq!(list[0].amount, Money::new(2599, Currency::USD));
    assert_eq!(w.payments.outbox().pending().await.unwrap(), 1, "one captured event");
}

#[tokio::test]
async fn declined_and_expired_requests_take_no_money() {
    let w = world().await;
    let user = UserId::new();
    let (declined, env) = request(user, PaymentToken::ChargeDeclined, 60_000);
    w.payments.handle(&env).await.unwrap();
    let (expired, env) = request(user, PaymentToken::Visa, -1);
    w.payments.handle(&env).await.unwrap();

    for (order, reason) in
        [(declined, DeclineReason::CardDeclined), (expired, DeclineReason::Expired)]
    {
        let p =
            w.payments.list(&user_ctx(user), PaymentQuery::of_order(order)).await.unwrap().items;
        assert_eq!(p[0].status, PaymentStatus::Declined);
        assert_eq!(p[0].decline_reason, Some(reason));
        assert_eq!(w.provider.captures_for(&order.to_string()).await.unwrap(), 0);
    }
    assert_eq!(
        w.payments.list(&user_ctx(user), PaymentQuery::default()).await.unwrap().items.len(),
        2
    );
}

#[tokio::test]
async fn payments_page_newest_first_to_the_oldest() {
    let w = world().await;
    let user = UserId::new();
    let mut orders = Vec::new();
    for _ in 0..3 {
        let (order, env) = request(user, PaymentToken::Visa, 60_000);
        w.payments.handle(&env).await.unwrap();
        orders.push(order);
    }
    let (mut seen, mut after) = (Vec::new(), None);
    loop {
        let limit = Limit::new(Some(2)).unwrap();
        let page = w
            .payments
            .list(&user_ctx(user), PaymentQuery { order: None, limit, after })
            .await
            .unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|p| p.order_id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    orders.reverse();
    assert_eq!(seen, orders, "every payment once, newest first");
}

#[tokio::test]
async fn a_refund_request_refunds_a_capture_once() {
    let w = world().await;
    let user = UserId::new();
    let (order, env) = request(user, PaymentToken::Visa, 60_000);
    w.payments.handle(&env).await.unwrap();
    let refund = Envelope::new(
        "orders",
        &RefundRequested { order_id: order, user_id: user },
        TraceContext::default(),
    );
    // Before payments knows the order was cancelled, it does not refund: it waits.
    let early = w.payments.handle(&refund).await.unwrap_err();
    assert!(matches!(early, bus::HandleError::Retry(_)), "{early:?}");
    assert_eq!(w.provider.refunds_for(&order.to_string()).await.unwrap(), 0);
    cancel(&w, order, user).await;
    w.payments.handle(&refund).await.unwrap();
    w.payments.handle(&refund).await.unwrap();
    let p = w.payments.list(&user_ctx(user), PaymentQuery::of_order(order)).await.unwrap().items;
    assert_eq!(p[0].status, PaymentStatus::Refunded);
    assert_eq!(w.provider.refunds_for(&order.to_string()).await.unwrap(), 1, "money given back");
    assert_eq!(w.payments.outbox().pending().await.unwrap(), 2, "captured, then refunded once");

    // A cancellation in another user's name proves nothing for this one.
    let (other, env) = request(user, PaymentToken::Visa, 60_000);
    w.payments.handle(&env).await.unwrap();
    cancel(&w, other, UserId::new()).await;
    let refund = RefundRequested { order_id: other, user_id: user };
    let err = w.payments.handle(&Envelope::new("orders", &refund, TraceContext::default())).await;
    assert!(matches!(err, Err(bus::HandleError::Reject(_))), "{err:?}");
    assert_eq!(w.provider.refunds_for(&other.to_string()).await.unwrap(), 0);
}

#[tokio::test]
async fn users_see_only_their_own_payments() {
    let w = world().await;
    let (alice, bob) = (UserId::new(), UserId::new());
    let (order, env) = request(alice, PaymentToken::Visa, 60_000);
    w.payments.handle(&env).await.unwrap();
    assert_eq!(
        w.payments.list(&user_ctx(bob), PaymentQuery::of_order(order)).await.unwrap_err(),
        PaymentsError::PaymentNotFound
    );
    assert!(
        w.payments.list(&user_ctx(bob), PaymentQuery::default()).await.unwrap().items.is_empty()
    );
    assert_eq!(
        w.payments.list(&RequestContext::anonymous(), PaymentQuery::default()).await.unwrap_err(),
        PaymentsError::Unauthenticated
    );
}

#[tokio::test]
async fn unknown_events_are_rejected_not_retried() {
    let w = world().await;
    let mut env = request(UserId::new(), PaymentToken::Visa, 60_000).1;
    env.event_type = "orders.something_else".into();
    assert!(matches!(w.payments.handle(&env).await, Err(bus::HandleError::Reject(_))));
}

/// Orders asks for a refund only for a cancelled order: a refund request for a confirmed
/// order, or one naming another user, moves no money and is refused (a dead letter).
#[tokio::test]
async fn a_refund_of_a_confirmed_order_is_refused() {
    let w = world().await;
    let user = UserId::new();
    let (order, env) = request(user, PaymentToken::Visa, 60_000);
    w.payments.handle(&env).await.unwrap();
    let confirmed = orders_api::events::OrderConfirmed {
        order_id: order,
        user_id: user,
        lines: Vec::new(),
        total: Money::new(2599, Currency::USD),
        placed_at: kernel::now_ms(),
    };
    w.payments.handle(&Envelope::new("orders", &confirmed, TraceContext::default())).await.unwrap();
    for user_id in [user, UserId::new()] {
        let refund = Envelope::new(
            "orders",
            &RefundRequested { order_id: order, user_id },
            TraceContext::default(),
        );
        let err = w.payments.handle(&refund).await.unwrap_err();
        assert!(matches!(err, bus::HandleError::Reject(_)), "{err:?}");
    }
    let p = w.payments.list(&user_ctx(user), PaymentQuery::of_order(order)).await.unwrap().items;
    assert_eq!(p[0].status, PaymentStatus::Captured);
    assert_eq!(w.provider.captures_for(&order.to_string()).await.unwrap(), 1, "still captured");
    assert_eq!(w.payments.outbox().pending().await.unwrap(), 1, "no refunded event");
}

/// The state a crash leaves between the provider's charge and payments' commit: the money
/// moved, payments recorded nothing. The redelivered request must not charge again: the
/// provider answers the repeated idempotency key (the order id) with the first charge.
#[tokio::test]
async fn a_crash_after_the_charge_and_before_the_commit_charges_once() {
    let w = world().await;
    let user = UserId::new();
    let (order, env) = request(user, PaymentToken::Visa, 60_000);
    w.payments.handle(&env).await.unwrap();
    let first = charge_id(&w, order).await;

    // Roll payments' transaction back by hand: no payment, no inbox record, no event.
    let db = Db::open_sqlite(&w.dir.path().join("payments.db")).await.unwrap();
    for sql in ["DELETE FROM payments", "DELETE FROM bus_inbox", "DELETE FROM bus_outbox"] {
        sqlx::query(sql).execute(db.pool()).await.unwrap();
    }
    db.close().await;
    assert_eq!(w.provider.captures_for(&order.to_string()).await.unwrap(), 1, "money moved");

    w.payments.handle(&env).await.unwrap();
    assert_eq!(w.provider.captures_for(&order.to_string()).await.unwrap(), 1, "charged once");
    let again = charge_id(&w, order).await;
    assert_eq!(again, first, "the first charge, answered again");
    let list = w.payments.list(&user_ctx(user), PaymentQuery::of_order(order)).await.unwrap().items;
    assert_eq!(list[0].status, PaymentStatus::Captured);
    assert_eq!(w.payments.outbox().pending().await.unwrap(), 1, "one captured event");
}

/// The provider's charge id that payments recorded for `order`.
async fn charge_id(w: &World, order: OrderId) -> String {
    use sqlx::Row as _;
    let db = Db::open_sqlite(&w.dir.path().join("payments.db")).await.unwrap();
    let row = sqlx::query("SELECT provider_charge_id FROM payments WHERE order_id = $1")
        .bind(order.to_string())
        .fetch_one(db.pool())
        .await
        .unwrap();
    let value = row.try_get("provider_charge_id").unwrap();
    db.close().await;
    value
}

/// Orders cancelled `order` of `user`, as the bus delivers it to payments.
async fn cancel(w: &World, order: OrderId, user: UserId) {
    let e =
        OrderCancelled { order_id: order, user_id: user, reason: CancelReason::DeadlineExceeded };
    w.payments.handle(&Envelope::new("orders", &e, TraceContext::default())).await.unwrap();
}
