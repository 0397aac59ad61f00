use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use cart_api::{CartError, CartLine, CartQuantity, CartService};
use catalog_api::{CatalogClient, CatalogError};
use kernel::{Currency, Money, ProductId, RequestContext, UserId};
use sqlx::Row as _;
use store::Db;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// At most this many different products in one cart, so a cart stays cheap to price.
pub const MAX_LINES: usize = 50;

/// The cart module.
pub struct Cart {
    pub(crate) db: Db,
    catalog: CatalogClient,
}

/// Catalog's failures as cart's: a product it does not know is one this
/// module does not know either.
fn from_catalog(e: CatalogError) -> CartError {
    match e {
        CatalogError::ProductNotFound => CartError::ProductNotFound,
        other => CartError::from_callee("catalog", other),
    }
}

/// Only the owner of a cart (or an admin, e.g. checkout's system context) may touch it.
fn authorize(ctx: &RequestContext, user: UserId) -> Result<(), CartError> {
    let caller = ctx.user()?;
    if caller.user_id == user || caller.is_admin() { Ok(()) } else { Err(CartError::Forbidden) }
}

impl Cart {
    pub async fn new(db: Db, catalog: CatalogClient) -> anyhow::Result<Arc<Cart>> {
        db.migrate(&MIGRATOR).await?;
        bus::install(&db).await?;
        Ok(Arc::new(Cart { db, catalog }))
    }

    async fn lines(&self, user: UserId) -> Result<Vec<(ProductId, u32)>, CartError> {
        sqlx::query(
            "SELECT product_id, quantity FROM cart_items WHERE user_id = $1 ORDER BY added_at, product_id",
        )
        .bind(user.to_string())
        .fetch_all(self.db.pool())
        .await
        .map_err(CartError::internal)?
        .iter()
        .map(|r| {
            let p: String = r.try_get("product_id").map_err(CartError::internal)?;
            let q: i64 = r.try_get("quantity").map_err(CartError::internal)?;
            let p = ProductId::parse(&p).ok_or_else(|| CartError::internal("corrupt product id"))?;
            Ok((p, u32::try_from(q).map_err(CartError::internal)?))
        })
        .collect()
    }

    async fn priced(
        &self,
        ctx: &RequestContext,
        user: UserId,
    ) -> Result<cart_api::Cart, CartError> {
        let lines = self.lines(user).await?;
        let ids = lines.iter().map(|(p, _)| *p).collect();
        let quotes: HashMap<ProductId, _> = self
            .catalog
            .quote(ctx, ids)
            .await
            .map_err(from_catalog)?
            .into_iter()
            .map(|q| (q.product_id, q))
            .collect();
        let mut total = Money::zero(Currency::USD);
        let mut items = Vec::with_capacity(lines.len());
        // A line whose product catalog no longer knows is not shown and not charged.
        for (product_id, quantity) in lines {
            let Some(q) = quotes.get(&product_id) else { continue };
            let line_total =
                q.unit_price.checked_mul(i64::from(quantity)).map_err(CartError::internal)?;
            total = total.checked_add(line_total).map_err(CartError::internal)?;
            items.push(CartLine {
                product_id,
                name: q.name.clone(),
                quantity,
                unit_price: q.unit_price,
                line_total,
            });
        }
        Ok(cart_api::Cart { items, total })
    }
}

#[async_trait]
impl CartService for Cart {
    async fn get(&self, ctx: &RequestContext, user: UserId) -> Result<cart_api::Cart, CartError> {
        authorize(ctx, user)?;
        self.priced(ctx, user).await
    }

    async fn set_item(
        &self,
        ctx: &RequestContext,
        user: UserId,
        product: ProductId,
        quantity: CartQuantity,
    ) -> Result<cart_api::Cart, CartError> {
        authorize(ctx, user)?;
        self.catalog.get(ctx, product).await.map_err(from_catalog)?;
        let mut tx = self.db.begin_write().await.map_err(CartError::internal)?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, \
             COUNT(CASE WHEN product_id = $2 THEN 1 END) AS present \
             FROM cart_items WHERE user_id = $1",
        )
        .bind(user.to_string())
        .bind(product.to_string())
        .fetch_one(&mut *tx)
        .await
        .map_err(CartError::internal)?;
        let n: i64 = row.try_get("n").map_err(CartError::internal)?;
        // COUNT, not SUM: SUM of integers is NUMERIC on PostgreSQL.
        let present: i64 = row.try_get("present").map_err(CartError::internal)?;
        if present == 0 && n as usize >= MAX_LINES {
            return Err(CartError::CartFull(MAX_LINES));
        }
        sqlx::query(
            "INSERT INTO cart_items (user_id, product_id, quantity, added_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (user_id, product_id) \
             DO UPDATE SET quantity = excluded.quantity, updated_at = excluded.updated_at",
        )
        .bind(user.to_string())
        .bind(product.to_string())
        .bind(i64::from(quantity.get()))
        .bind(kernel::now_ms())
        .execute(&mut *tx)
        .await
        .map_err(CartError::internal)?;
        tx.commit().await.map_err(CartError::internal)?;
        self.priced(ctx, user).await
    }

    async fn remove_item(
        &self,
        ctx: &RequestContext,
        user: UserId,
        product: ProductId,
    ) -> Result<cart_api::Cart, CartError> {
        authorize(ctx, user)?;
        sqlx::query("DELETE FROM cart_items WHERE user_id = $1 AND product_id = $2")
            .bind(user.to_string())
            .bind(product.to_string())
            .execute(self.db.pool())
            .await
            .map_err(CartError::internal)?;
        self.priced(ctx, user).await
    }

    async fn clear(&self, ctx: &RequestContext, user: UserId) -> Result<(), CartError> {
        authorize(ctx, user)?;
        sqlx::query("DELETE FROM cart_items WHERE user_id = $1")
            .bind(user.to_string())
            .execute(self.db.pool())
            .await
            .map_err(CartError::internal)?;
        Ok(())
    }
}
