//! The orders tables: reading an order back, appending to its history, and the guarded
//! status change every saga step goes through.

use kernel::{Currency, Money, OrderId, ProductId, Quantity, UserId};
use orders_api::events::OrderLine;
use orders_api::{CancelReason, HistoryEntry, Order, OrderItem, OrderStatus};
use payments_api::PaymentToken;
use sqlx::Executor;
use sqlx::Row as _;
use sqlx::any::AnyRow;
use store::Tx;

fn corrupt(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("corrupt {what}").into())
}

/// Where a pending order's saga is.
pub(crate) const PLACED: &str = "placed";
pub(crate) const PAYMENT_REQUESTED: &str = "payment_requested";
/// A finished order's step.
pub(crate) const DONE: &str = "done";

/// One row of `orders`.
#[derive(Debug, Clone)]
pub(crate) struct OrderRow {
    pub id: OrderId,
    pub user_id: UserId,
    pub status: OrderStatus,
    pub cancel_reason: Option<CancelReason>,
    pub payment_token: PaymentToken,
    pub total: Money,
    pub deadline_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

pub(crate) const SELECT_ORDER: &str = "SELECT id, user_id, status, cancel_reason, payment_token, \
    total, currency, deadline_at, created_at, updated_at FROM orders";

pub(crate) fn order_row(r: &AnyRow) -> Result<OrderRow, sqlx::Error> {
    let id: String = r.try_get("id")?;
    let user: String = r.try_get("user_id")?;
    let status: String = r.try_get("status")?;
    let reason: Option<String> = r.try_get("cancel_reason")?;
    let token: String = r.try_get("payment_token")?;
    let currency: String = r.try_get("currency")?;
    Ok(OrderRow {
        id: OrderId::parse(&id).ok_or_else(|| corrupt("order id"))?,
        user_id: UserId::parse(&user).ok_or_else(|| corrupt("user id"))?,
        status: OrderStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        cancel_reason: reason
            .map(|r| CancelReason::parse(&r).ok_or_else(|| corrupt("cancel reason")))
            .transpose()?,
        payment_token: PaymentToken::parse(&token).ok_or_else(|| corrupt("payment token"))?,
        total: Money::new(
            r.try_get("total")?,
            Currency::parse(&currency).map_err(|_| corrupt("currency"))?,
        ),
        deadline_at: r.try_get("deadline_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub(crate) async fn load_row<'c, E>(db: E, id: OrderId) -> Result<Option<OrderRow>, sqlx::Error>
where
    E: Executor<'c, Database = sqlx::Any>,
{
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT_ORDER} WHERE id = $1")))
        .bind(id.to_string())
        .fetch_optional(db)
        .await?;
    row.as_ref().map(order_row).transpose()
}

pub(crate) async fn items<'c, E>(db: E, id: OrderId) -> Result<Vec<OrderItem>, sqlx::Error>
where
    E: Executor<'c, Database = sqlx::Any>,
{
    let rows = sqlx::query(
        "SELECT product_id, name, quantity, unit_price, line_total FROM order_items \
         WHERE order_id = $1 ORDER BY product_id",
    )
    .bind(id.to_string())
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| {
            let p: String = r.try_get("product_id")?;
            let q: i64 = r.try_get("quantity")?;
            Ok(OrderItem {
                product_id: ProductId::parse(&p).ok_or_else(|| corrupt("product id"))?,
                name: r.try_get("name")?,
                quantity: u32::try_from(q).map_err(|_| corrupt("quantity"))?,
                unit_price: Money::new(r.try_get("unit_price")?, Currency::USD),
                line_total: Money::new(r.try_get("line_total")?, Currency::USD),
            })
        })
        .collect()
}

pub(crate) fn lines(items: &[OrderItem]) -> Result<Vec<OrderLine>, sqlx::Error> {
    items
        .iter()
        .map(|i| {
            Ok(OrderLine {
                product_id: i.product_id,
                quantity: Quantity::new(i64::from(i.quantity))
                    .ok_or_else(|| corrupt("quantity"))?,
            })
        })
        .collect()
}

pub(crate) async fn history<'c, E>(db: E, id: OrderId) -> Result<Vec<HistoryEntry>, sqlx::Error>
where
    E: Executor<'c, Database = sqlx::Any>,
{
    let rows =
        sqlx::query("SELECT status, step, at FROM order_history WHERE order_id = $1 ORDER BY seq")
            .bind(id.to_string())
            .fetch_all(db)
            .await?;
    rows.iter()
        .map(|r| {
            let status: String = r.try_get("status")?;
            Ok(HistoryEntry {
                status: OrderStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
                step: r.try_get("step")?,
                at: kernel::ms_to_rfc3339(r.try_get("at")?),
            })
        })
        .collect()
}

pub(crate) fn order(row: OrderRow, items: Vec<OrderItem>, history: Vec<HistoryEntry>) -> Order {
    Order {
        id: row.id,
        status: row.status,
        items,
        total: row.total,
        cancel_reason: row.cancel_reason,
        history,
        created_at: kernel::ms_to_rfc3339(row.created_at),
        updated_at: kernel::ms_to_rfc3339(row.updated_at),
    }
}

pub(crate) async fn append_history(
    tx: &mut Tx,
    id: OrderId,
    status: OrderStatus,
    step: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO order_history (order_id, seq, status, step, at) \
         SELECT $1, COUNT(*) + 1, $2, $3, $4 FROM order_history WHERE order_id = $1",
    )
    .bind(id.to_string())
    .bind(status.as_str())
    .bind(step)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A saga step: moves a pending order that is at step `from` to `(status, step)`, records
/// `history_step`, and returns the order as it now is. `None` when the order is not at
/// `from` any more (another step or the deadline got there first): the caller then does
/// nothing, which is what makes every step safe to run late or twice.
pub(crate) async fn advance(
    tx: &mut Tx,
    id: OrderId,
    from: &[&str],
    to: (OrderStatus, &str),
    reason: Option<CancelReason>,
    history_step: &str,
) -> Result<Option<OrderRow>, sqlx::Error> {
    let now = kernel::now_ms();
    let mut changed = false;
    for step in from {
        let done = sqlx::query(
            "UPDATE orders SET status = $1, step = $2, cancel_reason = $3, updated_at = $4 \
             WHERE id = $5 AND status = 'pending' AND step = $6",
        )
        .bind(to.0.as_str())
        .bind(to.1)
        .bind(reason.map(CancelReason::as_str))
        .bind(now)
        .bind(id.to_string())
        .bind(*step)
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() == 1 {
            changed = true;
            break;
        }
    }
    if !changed {
        return Ok(None);
    }
    append_history(tx, id, to.0, history_step, now).await?;
    load_row(&mut **tx, id).await
}
