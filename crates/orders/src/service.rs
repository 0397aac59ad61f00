use std::sync::Arc;

use async_trait::async_trait;
use bus::{Outbox, TraceContext};
use cart_api::{CartClient, CartError};
use kernel::{IdempotencyKey, Limit, OrderId, Page, RequestContext, UserId};
use orders_api::events::{OrderLine, OrderPlaced};
use orders_api::{HistoryEntry, Order, OrderItem, OrderStatus, OrdersError, OrdersService, Placed};
use payments_api::PaymentToken;
use sqlx::Row as _;
use store::Db;

use crate::OrdersConfig;
use crate::config::ms;
use crate::rows::{self, PLACED, SELECT_ORDER};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The orders module.
pub struct Orders {
    pub(crate) db: Db,
    pub(crate) outbox: Outbox,
    cart: CartClient,
    pub(crate) config: OrdersConfig,
}

/// Cart's failures as orders': cart refusing the user is orders refusing them.
fn from_cart(e: CartError) -> OrdersError {
    match e {
        CartError::Unauthenticated => OrdersError::Unauthenticated,
        CartError::Forbidden => OrdersError::Forbidden,
        other => OrdersError::from_callee("cart", other),
    }
}

impl Orders {
    pub async fn new(
        db: Db,
        cart: CartClient,
        config: OrdersConfig,
    ) -> anyhow::Result<Arc<Orders>> {
        db.migrate(&MIGRATOR).await?;
        let outbox = Outbox::new(db.clone(), "orders").await?;
        crate::summary::record_since(&db).await?;
        Ok(Arc::new(Orders { db, outbox, cart, config }))
    }

    pub fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }

    /// The first answer given for this user's key, if the key is known and still kept.
    async fn replay(
        &self,
        user: UserId,
        key: &IdempotencyKey,
        fingerprint: &str,
    ) -> Result<Option<Placed>, OrdersError> {
        let cutoff = kernel::now_ms().saturating_sub(ms(self.config.key_retention));
        let row = sqlx::query(
            "SELECT fingerprint, response FROM idempotency_keys \
             WHERE user_id = $1 AND key = $2 AND created_at >= $3",
        )
        .bind(user.to_string())
        .bind(key.as_str())
        .bind(cutoff)
        .fetch_optional(self.db.pool())
        .await
        .map_err(OrdersError::internal)?;
        let Some(row) = row else { return Ok(None) };
        let stored: String = row.try_get("fingerprint").map_err(OrdersError::internal)?;
        if stored != fingerprint {
            return Err(OrdersError::IdempotencyKeyReused);
        }
        let response: String = row.try_get("response").map_err(OrdersError::internal)?;
        let order: Order = serde_json::from_str(&response).map_err(OrdersError::internal)?;
        Ok(Some(Placed { order, replayed: true }))
    }

    async fn full(&self, row: rows::OrderRow) -> Result<Order, OrdersError> {
        let items = rows::items(self.db.pool(), row.id).await.map_err(OrdersError::internal)?;
        let history = rows::history(self.db.pool(), row.id).await.map_err(OrdersError::internal)?;
        Ok(rows::order(row, items, history))
    }

    /// Stores the new order, its key and its `order_placed` event in one transaction.
    /// `Ok(false)` when the key was taken meanwhile by a concurrent request.
    async fn insert(
        &self,
        ctx: &RequestContext,
        user: UserId,
        key: &IdempotencyKey,
        order: &Order,
        deadline_at: i64,
        token: PaymentToken,
    ) -> Result<bool, OrdersError> {
        let fingerprint = token.as_str();
        let now = kernel::now_ms();
        let response = serde_json::to_string(order).map_err(OrdersError::internal)?;
        let mut tx = self.db.begin_write().await.map_err(OrdersError::internal)?;
        // An expired key may be reused: forget it first.
        let cutoff = now.saturating_sub(ms(self.config.key_retention));
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND created_at < $3",
        )
        .bind(user.to_string())
        .bind(key.as_str())
        .bind(cutoff)
        .execute(&mut *tx)
        .await
        .map_err(OrdersError::internal)?;
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys (user_id, key, fingerprint, order_id, response, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user.to_string())
        .bind(key.as_str())
        .bind(fingerprint)
        .bind(order.id.to_string())
        .bind(response)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match claimed {
            Err(e) if store::is_unique_violation(&e) => return Ok(false),
            Err(e) => return Err(OrdersError::internal(e)),
            Ok(_) => {}
        }
        sqlx::query(
            "INSERT INTO orders (id, user_id, status, step, payment_token, total, currency, \
             deadline_at, created_at, updated_at) VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(order.id.to_string())
        .bind(user.to_string())
        .bind(PLACED)
        .bind(token.as_str())
        .bind(order.total.amount)
        .bind(order.total.currency.as_str())
        .bind(deadline_at)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(OrdersError::internal)?;
        for i in &order.items {
            sqlx::query(
                "INSERT INTO order_items (order_id, product_id, name, quantity, unit_price, line_total) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(order.id.to_string())
            .bind(i.product_id.to_string())
            .bind(&i.name)
            .bind(i64::from(i.quantity))
            .bind(i.unit_price.amount)
            .bind(i.line_total.amount)
            .execute(&mut *tx)
            .await
            .map_err(OrdersError::internal)?;
        }
        rows::append_history(&mut tx, order.id, OrderStatus::Pending, PLACED, now)
            .await
            .map_err(OrdersError::internal)?;
        let lines = rows::lines(&order.items).map_err(OrdersError::internal)?;
        let event = OrderPlaced { order_id: order.id, user_id: user, lines, total: order.total };
        self.outbox
            .add(&mut tx, &event, TraceContext::from_request(ctx))
            .await
            .map_err(OrdersError::internal)?;
        tx.commit().await.map_err(OrdersError::internal)?;
        self.outbox.wake();
        Ok(true)
    }
}

#[async_trait]
impl OrdersService for Orders {
    async fn place(
        &self,
        ctx: &RequestContext,
        key: IdempotencyKey,
        payment_token: PaymentToken,
    ) -> Result<Placed, OrdersError> {
        let me = ctx.user()?.user_id;
        // The body's only field: two requests with one key are the same when it matches.
        let fingerprint = payment_token.as_str();
        if let Some(replayed) = self.replay(me, &key, fingerprint).await? {
            return Ok(replayed);
        }
        let cart = self.cart.get(ctx, me).await.map_err(from_cart)?;
        if cart.items.is_empty() {
            return Err(OrdersError::CartEmpty);
        }
        let now = kernel::now_ms();
        let at = kernel::ms_to_rfc3339(now);
        let items: Vec<OrderItem> = cart
            .items
            .into_iter()
            .map(|l| OrderItem {
                product_id: l.product_id,
                name: l.name,
                quantity: l.quantity,
                unit_price: l.unit_price,
                line_total: l.line_total,
            })
            .collect();
        let order = Order {
            id: OrderId::new(),
            status: OrderStatus::Pending,
            items,
            total: cart.total,
            cancel_reason: None,
            history: vec![HistoryEntry {
                status: OrderStatus::Pending,
                step: PLACED.into(),
                at: at.clone(),
            }],
            created_at: at.clone(),
            updated_at: at,
        };
        let deadline_at = now.saturating_add(ms(self.config.saga_deadline));
        if self.insert(ctx, me, &key, &order, deadline_at, payment_token).await? {
            tracing::info!(order_id = %order.id, total = order.total.amount, "order placed");
            return Ok(Placed { order, replayed: false });
        }
        // A concurrent request with this key committed first: answer as it did.
        self.replay(me, &key, fingerprint).await?.ok_or(OrdersError::IdempotencyKeyInUse)
    }

    async fn list(
        &self,
        ctx: &RequestContext,
        limit: Limit,
        after: Option<OrderId>,
    ) -> Result<Page<Order, OrderId>, OrdersError> {
        let me = ctx.user()?.user_id;
        let after = after.map(|id| id.to_string());
        let (rows, more) = store::newest_first_for_user(
            &self.db,
            SELECT_ORDER,
            &me.to_string(),
            limit.get(),
            after.as_deref(),
        )
        .await
        .map_err(OrdersError::internal)?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            items.push(self.full(rows::order_row(r).map_err(OrdersError::internal)?).await?);
        }
        let next = if more { items.last().map(|o| o.id) } else { None };
        Ok(Page { items, next })
    }

    async fn get(&self, ctx: &RequestContext, id: OrderId) -> Result<Order, OrdersError> {
        let me = ctx.user()?.user_id;
        match rows::load_row(self.db.pool(), id).await.map_err(OrdersError::internal)? {
            // Someone else's order answers exactly like a missing one.
            Some(row) if row.user_id == me => self.full(row).await,
            _ => Err(OrdersError::OrderNotFound),
        }
    }
}

/// Lines of an order as the saga's events carry them.
pub(crate) async fn order_lines(
    tx: &mut store::Tx,
    id: OrderId,
) -> Result<Vec<OrderLine>, sqlx::Error> {
    let items = rows::items(&mut **tx, id).await?;
    rows::lines(&items)
}
