//! The daily sales summary: after a UTC day ends, what it sold, once, as an event that
//! notifications turns into a message for the admins. Run by a loop in the process that
//! hosts orders, or by a scheduled function.

use std::time::Duration;

use bus::TraceContext;
use kernel::{Currency, Money};
use orders_api::events::DailySalesSummary;
use sqlx::Row as _;

use crate::Orders;

const DAY_MS: i64 = 86_400_000;

/// How often the loop looks for a day to summarise: a summary goes out within this long
/// after midnight UTC.
pub const SUMMARY_CHECK_EVERY: Duration = Duration::from_secs(3600);

/// Records when this shop's orders began, once: now, or its earliest order if older.
pub(crate) async fn record_since(db: &store::Db) -> Result<(), sqlx::Error> {
    let earliest: Option<i64> = sqlx::query("SELECT MIN(created_at) AS at FROM orders")
        .fetch_one(db.pool())
        .await?
        .try_get("at")?;
    let now = kernel::now_ms();
    sqlx::query(
        "INSERT INTO orders_since (id, created_at) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
    )
    .bind(earliest.map_or(now, |e| e.min(now)))
    .execute(db.pool())
    .await?;
    Ok(())
}

impl Orders {
    /// Sends the summary of the UTC day before the one holding `now_ms`, unless it was
    /// sent already or that day ended before the shop's orders began; returns it when
    /// this call sent it.
    pub async fn send_daily_summary(
        &self,
        now_ms: i64,
    ) -> Result<Option<DailySalesSummary>, sqlx::Error> {
        let end = now_ms.div_euclid(DAY_MS) * DAY_MS;
        let start = end - DAY_MS;
        let since: Option<i64> = sqlx::query("SELECT created_at FROM orders_since")
            .fetch_optional(self.db.pool())
            .await?
            .map(|r| r.try_get("created_at"))
            .transpose()?;
        if since.is_some_and(|since| end <= since) {
            // The day ended before the shop had orders at all: nothing to tell.
            return Ok(None);
        }
        let stamp = kernel::ms_to_rfc3339(start);
        let day = stamp.get(..10).unwrap_or(&stamp).to_owned();
        let pool = self.db.pool();
        // Sums are cast: PostgreSQL's SUM of BIGINT is NUMERIC.
        let by_currency = sqlx::query(
            "SELECT o.currency AS currency, COUNT(*) AS n, CAST(SUM(o.total) AS BIGINT) AS revenue \
             FROM orders o JOIN order_history h ON h.order_id = o.id \
             WHERE h.status = 'confirmed' AND h.at >= $1 AND h.at < $2 \
             GROUP BY o.currency ORDER BY o.currency",
        )
        .bind(start)
        .bind(end)
        .fetch_all(pool)
        .await?;
        let mut summary = DailySalesSummary {
            day,
            orders_confirmed: 0,
            units_sold: 0,
            revenue: Vec::new(),
            orders_cancelled: 0,
        };
        for r in &by_currency {
            let currency: String = r.try_get("currency")?;
            let currency = Currency::parse(&currency)
                .map_err(|e| sqlx::Error::Decode(format!("corrupt currency: {e}").into()))?;
            let n: i64 = r.try_get("n")?;
            summary.orders_confirmed += n.unsigned_abs();
            summary.revenue.push(Money::new(r.try_get("revenue")?, currency));
        }
        let units: i64 = sqlx::query(
            "SELECT CAST(COALESCE(SUM(i.quantity), 0) AS BIGINT) AS n \
             FROM order_items i JOIN order_history h ON h.order_id = i.order_id \
             WHERE h.status = 'confirmed' AND h.at >= $1 AND h.at < $2",
        )
        .bind(start)
        .bind(end)
        .fetch_one(pool)
        .await?
        .try_get("n")?;
        summary.units_sold = units.unsigned_abs();
        let cancelled: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM order_history \
             WHERE status = 'cancelled' AND at >= $1 AND at < $2",
        )
        .bind(start)
        .bind(end)
        .fetch_one(pool)
        .await?
        .try_get("n")?;
        summary.orders_cancelled = cancelled.unsigned_abs();

        let mut tx = self.db.begin_write().await?;
        let claimed = sqlx::query(
            "INSERT INTO sales_summaries (day, sent_at) VALUES ($1, $2) ON CONFLICT (day) DO NOTHING",
        )
        .bind(&summary.day)
        .bind(kernel::now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            return Ok(None);
        }
        self.outbox.add(&mut tx, &summary, TraceContext::default()).await?;
        tx.commit().await?;
        self.outbox.wake();
        tracing::info!(
            day = summary.day,
            orders = summary.orders_confirmed,
            "daily sales summary sent"
        );
        Ok(Some(summary))
    }
}
