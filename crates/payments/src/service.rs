use std::sync::Arc;

use async_trait::async_trait;
use bus::Outbox;
use kernel::{OrderId, RequestContext, UserId};
use payments_api::{Payment, PaymentsError, PaymentsService};
use store::Db;

use crate::CardProvider;
use crate::rows::{SELECT, payment_from_row};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A user's payment listing is capped; one payment per order keeps it small.
const LIST_MAX: i64 = 100;

/// The payments module.
pub struct Payments {
    pub(crate) db: Db,
    pub(crate) outbox: Outbox,
    pub(crate) provider: CardProvider,
}

impl Payments {
    /// `db` is the module's own database; `provider` the card provider it charges through.
    pub async fn new(db: Db, provider: CardProvider) -> anyhow::Result<Arc<Payments>> {
        db.migrate(&MIGRATOR).await?;
        let outbox = Outbox::new(db.clone(), "payments").await?;
        Ok(Arc::new(Payments { db, outbox, provider }))
    }

    pub fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }
}

#[async_trait]
impl PaymentsService for Payments {
    async fn list(
        &self,
        ctx: &RequestContext,
        order: Option<OrderId>,
    ) -> Result<Vec<Payment>, PaymentsError> {
        let me: UserId = ctx.user()?.user_id;
        let rows = match order {
            None => sqlx::query(sqlx::AssertSqlSafe(format!(
                "{SELECT} WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
            )))
            .bind(me.to_string())
            .bind(LIST_MAX),
            Some(o) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "{SELECT} WHERE user_id = $1 AND order_id = $2"
            )))
            .bind(me.to_string())
            .bind(o.to_string()),
        }
        .fetch_all(self.db.pool())
        .await
        .map_err(PaymentsError::internal)?;
        if order.is_some() && rows.is_empty() {
            // Someone else's order looks exactly like one without a payment.
            return Err(PaymentsError::PaymentNotFound);
        }
        rows.iter().map(|r| payment_from_row(r).map_err(PaymentsError::internal)).collect()
    }
}
