use std::sync::Arc;

use async_trait::async_trait;
use kernel::{Limit, NotificationId, OrderId, Page, RequestContext};
use notifications_api::{Notification, NotificationKind, NotificationsError, NotificationsService};
use sqlx::Row as _;
use sqlx::any::AnyRow;
use store::Db;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The recipient of messages for every admin (user ids are UUIDs, so it names no user).
pub(crate) const ADMINS: &str = "admins";

/// The notifications module.
pub struct Notifications {
    pub(crate) db: Db,
}

fn from_row(r: &AnyRow) -> Result<Notification, sqlx::Error> {
    let corrupt = |what: &str| sqlx::Error::Decode(format!("corrupt {what}").into());
    let id: String = r.try_get("id")?;
    let kind: String = r.try_get("kind")?;
    let order: Option<String> = r.try_get("order_id")?;
    Ok(Notification {
        id: NotificationId::parse(&id).ok_or_else(|| corrupt("id"))?,
        kind: NotificationKind::parse(&kind).ok_or_else(|| corrupt("kind"))?,
        order_id: order
            .as_deref()
            .map(|o| OrderId::parse(o).ok_or_else(|| corrupt("order id")))
            .transpose()?,
        subject: r.try_get("subject")?,
        body: r.try_get("body")?,
        created_at: kernel::ms_to_rfc3339(r.try_get("created_at")?),
    })
}

impl Notifications {
    pub async fn new(db: Db) -> anyhow::Result<Arc<Notifications>> {
        db.migrate(&MIGRATOR).await?;
        bus::install(&db).await?;
        Ok(Arc::new(Notifications { db }))
    }
}

#[async_trait]
impl NotificationsService for Notifications {
    async fn list(
        &self,
        ctx: &RequestContext,
        limit: Limit,
        after: Option<NotificationId>,
    ) -> Result<Page<Notification, NotificationId>, NotificationsError> {
        let caller = ctx.user()?;
        let me = caller.user_id.to_string();
        // Admins also see what is written for every admin.
        let recipients: &[&str] = if caller.is_admin() { &[&me, ADMINS] } else { &[&me] };
        const SELECT: &str =
            "SELECT id, kind, order_id, subject, body, created_at FROM notifications";
        let after = after.map(|id| id.to_string());
        let (rows, more) = store::newest_first_for_users(
            &self.db,
            SELECT,
            recipients,
            limit.get(),
            after.as_deref(),
        )
        .await
        .map_err(NotificationsError::internal)?;
        let items = rows
            .iter()
            .map(|r| from_row(r).map_err(NotificationsError::internal))
            .collect::<Result<Vec<_>, _>>()?;
        let next = if more { items.last().map(|n| n.id) } else { None };
        Ok(Page { items, next })
    }
}
