use std::sync::Arc;

use async_trait::async_trait;
use bus::Outbox;
use kernel::{Page, PaymentId, RequestContext, UserId};
use payments_api::{Payment, PaymentQuery, PaymentsError, PaymentsService};
use store::Db;

use crate::CardProvider;
use crate::rows::{SELECT, payment_from_row};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

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
        query: PaymentQuery,
    ) -> Result<Page<Payment, PaymentId>, PaymentsError> {
        let me: UserId = ctx.user()?.user_id;
        let (rows, more) = match query.order {
            None => store::newest_first_for_user(
                &self.db,
                SELECT,
                &me.to_string(),
                query.limit.get(),
                query.after.map(|id| id.to_string()).as_deref(),
            )
            .await
            .map_err(PaymentsError::internal)?,
            // One payment per order: a single, short page.
            Some(o) => {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{SELECT} WHERE user_id = $1 AND order_id = $2 ORDER BY id DESC"
                )))
                .bind(me.to_string())
                .bind(o.to_string())
                .fetch_all(self.db.pool())
                .await
                .map_err(PaymentsError::internal)?;
                if rows.is_empty() {
                    // Someone else's order looks exactly like one without a payment.
                    return Err(PaymentsError::PaymentNotFound);
                }
                (rows, false)
            }
        };
        let items = rows
            .iter()
            .map(|r| payment_from_row(r).map_err(PaymentsError::internal))
            .collect::<Result<Vec<_>, _>>()?;
        let next = if more { items.last().map(|p| p.id) } else { None };
        Ok(Page { items, next })
    }
}
