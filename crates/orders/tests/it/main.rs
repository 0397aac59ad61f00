//! The orders module on its own database, its cart a mock and the saga's outcomes fed to
//! its handler as the bus would deliver them.

use std::sync::Arc;

use bus::{Envelope, Event as _, Handler as _, TraceContext};
use cart_api::{Cart, CartClient, CartLine, MockCartService};
use inventory_api::ReservationLine;
use inventory_api::events::{StockRejected, StockReserved};
use kernel::{
    Currency, IdempotencyKey, Money, OrderId, PaymentId, Principal, ProductId, Quantity,
    RequestContext, Role, UserId,
};
use orders::{Orders, OrdersConfig};
use orders_api::events::{DailySalesSummary, OrderCancelled, RefundRequested};
use orders_api::{OrderStatus, OrdersService as _};
use payments_api::PaymentToken;
use payments_api::events::PaymentCaptured;
use sqlx::Row as _;

const DAY_MS: i64 = 86_400_000;

struct Shop {
    _dir: tempfile::TempDir,
    db: store::Db,
    orders: Arc<Orders>,
    product: ProductId,
}

async fn shop() -> Shop {
    let dir = tempfile::tempdir().unwrap();
    let db = store::Db::open_sqlite(&dir.path().join("orders.db")).await.unwrap();
    let product = ProductId::new();
    let mut cart = MockCartService::new();
    cart.expect_get().returning(move |_, _| {
        let price = Money::new(1250, Currency::USD);
        Ok(Cart {
            items: vec![CartLine {
                product_id: product,
                name: "Mug".into(),
                quantity: 2,
                unit_price: price,
                line_total: Money::new(2500, Currency::USD),
            }],
            total: Money::new(2500, Currency::USD),
        })
    });
    let orders =
        Orders::new(db.clone(), CartClient::local(cart), OrdersConfig::default()).await.unwrap();
    Shop { _dir: dir, db, orders, product }
}

impl Shop {
    async fn place(&self, user: UserId, key: &str) -> OrderId {
        let ctx =
            RequestContext::for_user(Principal { user_id: user, roles: vec![Role::Customer] });
        let key = IdempotencyKey::parse(key).unwrap();
        let token = PaymentToken::parse("tok_visa").unwrap();
        let placed = self.orders.place(&ctx, key, token).await.unwrap();
        placed.order.id
    }

    async fn deliver<E: bus::Event>(&self, source: &str, event: &E) {
        let envelope = Envelope::new(source, event, TraceContext::default());
        self.orders.handle(&envelope).await.unwrap();
    }

    async fn confirm(&self, user: UserId, order: OrderId) {
        let line =
            ReservationLine { product_id: self.product, quantity: Quantity::new(2).unwrap() };
        self.deliver("inventory", &StockReserved { order_id: order, lines: vec![line] }).await;
        let captured = PaymentCaptured {
            payment_id: PaymentId::new(),
            order_id: order,
            user_id: user,
            amount: Money::new(2500, Currency::USD),
        };
        self.deliver("payments", &captured).await;
    }

    /// The types of the events in the outbox, oldest first.
    async fn sent(&self) -> Vec<String> {
        let rows = sqlx::query("SELECT event_type FROM bus_outbox ORDER BY occurred_at, id")
            .fetch_all(self.db.pool())
            .await
            .unwrap();
        rows.iter().map(|r| r.get("event_type")).collect()
    }

    /// The summaries in the outbox, oldest first.
    async fn summaries_sent(&self) -> Vec<DailySalesSummary> {
        let rows = sqlx::query(
            "SELECT envelope FROM bus_outbox WHERE event_type = $1 ORDER BY occurred_at",
        )
        .bind(DailySalesSummary::TYPE)
        .fetch_all(self.db.pool())
        .await
        .unwrap();
        rows.iter()
            .map(|r| {
                let envelope: Envelope =
                    serde_json::from_str(&r.get::<String, _>("envelope")).unwrap();
                envelope.decode().unwrap()
            })
            .collect()
    }
}

#[tokio::test]
async fn a_days_sales_are_summarised_once_after_it_ends() {
    let shop = shop().await;
    let (alice, bob) = (UserId::new(), UserId::new());
    let paid = shop.place(alice, "one").await;
    shop.confirm(alice, paid).await;
    let also_paid = shop.place(bob, "two").await;
    shop.confirm(bob, also_paid).await;
    let rejected = shop.place(bob, "three").await;
    shop.deliver("inventory", &StockRejected { order_id: rejected, product_id: shop.product })
        .await;
    let _pending = shop.place(alice, "four").await;

    let now = kernel::now_ms();
    let today = kernel::ms_to_rfc3339(now)[..10].to_owned();
    // Run on the next day, the summary is today's.
    let sent = shop.orders.send_daily_summary(now + DAY_MS).await.unwrap().expect("sent");
    let expected = DailySalesSummary {
        day: today,
        orders_confirmed: 2,
        units_sold: 4,
        revenue: vec![Money::new(5000, Currency::USD)],
        orders_cancelled: 1,
    };
    assert_eq!(sent, expected, "pending orders are not sales");
    assert_eq!(shop.summaries_sent().await, std::slice::from_ref(&expected));

    // Later the same day, or by another process: nothing more.
    assert_eq!(shop.orders.send_daily_summary(now + DAY_MS + 1000).await.unwrap(), None);
    assert_eq!(shop.summaries_sent().await.len(), 1);

    // Yesterday ended before this shop existed: there is nothing to tell.
    assert_eq!(shop.orders.send_daily_summary(now).await.unwrap(), None);
    // Tomorrow sold nothing; its summary says so.
    let quiet = shop.orders.send_daily_summary(now + 2 * DAY_MS).await.unwrap().expect("sent");
    assert_eq!((quiet.orders_confirmed, quiet.units_sold, quiet.orders_cancelled), (0, 0, 0));
    assert!(quiet.revenue.is_empty());
    assert!(quiet.day > expected.day);
    let status = |o: OrderId| async move {
        let row = sqlx::query("SELECT status FROM orders WHERE id = $1")
            .bind(o.to_string())
            .fetch_one(shop.db.pool())
            .await
            .unwrap();
        OrderStatus::parse(&row.get::<String, _>("status"))
    };
    assert_eq!(status(paid).await, Some(OrderStatus::Confirmed));
}

/// The saga checks what it is told: a capture that is not the order's total, or not from
/// its user, or for an order that does not exist, confirms nothing and is refused (the bus
/// parks it as a dead letter for an operator).
#[tokio::test]
async fn a_capture_that_does_not_match_the_order_confirms_nothing() {
    let shop = shop().await;
    let user = UserId::new();
    let order = shop.place(user, "key-capture-mismatch").await;
    let line = ReservationLine { product_id: shop.product, quantity: Quantity::new(2).unwrap() };
    shop.deliver("inventory", &StockReserved { order_id: order, lines: vec![line] }).await;
    let capture = |order_id, user_id, amount| PaymentCaptured {
        payment_id: PaymentId::new(),
        order_id,
        user_id,
        amount,
    };
    let usd = |n| Money::new(n, Currency::USD);
    let refused = [
        capture(order, user, usd(1)),
        capture(order, user, Money::new(2500, Currency::parse("EUR").unwrap())),
        capture(order, UserId::new(), usd(2500)),
        capture(OrderId::new(), user, usd(2500)),
    ];
    for bad in refused {
        let envelope = Envelope::new("payments", &bad, TraceContext::default());
        let err = shop.orders.handle(&envelope).await.unwrap_err();
        assert!(matches!(err, bus::HandleError::Reject(_)), "{err:?}");
        assert_eq!(status(&shop, order).await, "pending", "{bad:?}");
    }
    shop.deliver("payments", &capture(order, user, usd(2500))).await;
    assert_eq!(status(&shop, order).await, "confirmed", "the order's own capture confirms it");
}

async fn status(shop: &Shop, order: OrderId) -> String {
    let row = sqlx::query("SELECT status FROM orders WHERE id = $1")
        .bind(order.to_string())
        .fetch_one(shop.db.pool())
        .await
        .unwrap();
    row.try_get("status").unwrap()
}

/// The sweeper cancels a pending order once its deadline has passed, not before; money
/// captured for it afterwards is asked back, once.
#[tokio::test]
async fn the_sweeper_cancels_an_overdue_order_and_a_late_capture_is_refunded() {
    let shop = shop().await;
    let user = UserId::new();
    let order = shop.place(user, "key-overdue").await;
    let line = ReservationLine { product_id: shop.product, quantity: Quantity::new(2).unwrap() };
    shop.deliver("inventory", &StockReserved { order_id: order, lines: vec![line] }).await;
    let deadline = OrdersConfig::default().saga_deadline.as_millis() as i64;
    let now = kernel::now_ms();

    assert_eq!(shop.orders.sweep_at(now + deadline - 1000).await.unwrap(), 0, "not yet due");
    assert_eq!(status(&shop, order).await, "pending");
    assert_eq!(shop.orders.sweep_at(now + deadline + 1000).await.unwrap(), 1);
    assert_eq!(status(&shop, order).await, "cancelled");
    let reason: String = sqlx::query("SELECT cancel_reason FROM orders WHERE id = $1")
        .bind(order.to_string())
        .fetch_one(shop.db.pool())
        .await
        .unwrap()
        .get("cancel_reason");
    assert_eq!(reason, "deadline_exceeded");
    assert_eq!(shop.orders.sweep_at(now + deadline + 2000).await.unwrap(), 0, "once");
    assert_eq!(shop.sent().await.iter().filter(|t| *t == OrderCancelled::TYPE).count(), 1);

    // The charge went through while the sweeper cancelled: give the money back.
    let captured = PaymentCaptured {
        payment_id: PaymentId::new(),
        order_id: order,
        user_id: user,
        amount: Money::new(2500, Currency::USD),
    };
    let envelope = Envelope::new("payments", &captured, TraceContext::default());
    shop.orders.handle(&envelope).await.unwrap();
    shop.orders.handle(&envelope).await.unwrap(); // redelivered: the inbox drops it
    assert_eq!(status(&shop, order).await, "cancelled", "a refund does not revive the order");
    let refunds = shop.sent().await.iter().filter(|t| *t == RefundRequested::TYPE).count();
    assert_eq!(refunds, 1, "{:?}", shop.sent().await);
}

/// An `Idempotency-Key` names one order for its retention (24 h), and is forgotten after.
#[tokio::test]
async fn an_idempotency_key_is_forgotten_after_its_retention() {
    let shop = shop().await;
    let user = UserId::new();
    let first = shop.place(user, "key-retained").await;
    assert_eq!(shop.place(user, "key-retained").await, first, "a replay names the same order");
    let retention = OrdersConfig::default().key_retention.as_millis() as i64;
    assert_eq!(retention, DAY_MS, "24 h, as documented");
    shop.orders.sweep_at(kernel::now_ms() + retention - 60_000).await.unwrap();
    assert_eq!(shop.place(user, "key-retained").await, first, "still remembered");
    shop.orders.sweep_at(kernel::now_ms() + retention + 60_000).await.unwrap();
    assert_ne!(shop.place(user, "key-retained").await, first, "forgotten: a new order");
}
