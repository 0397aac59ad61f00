use async_trait::async_trait;
use catalog_api::{
    CatalogError, CatalogService, NewProduct, PriceQuote, Product, ProductPatch, ProductQuery,
};
use kernel::{Currency, Money, Page, ProductId, RequestContext};
use sqlx::Row as _;
use store::Db;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

const COLUMNS: &str =
    "id, name, description, category, price_amount, price_currency, created_at, updated_at";

/// The catalog module.
pub struct Catalog {
    db: Db,
}

impl Catalog {
    pub async fn new(db: Db) -> anyhow::Result<Catalog> {
        db.migrate(&MIGRATOR).await?;
        Ok(Catalog { db })
    }

    /// Whether the catalog has no product yet (decides the first-start seeding).
    pub async fn is_empty(&self) -> anyhow::Result<bool> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM products").fetch_one(self.db.pool()).await?;
        Ok(row.try_get::<i64, _>("n")? == 0)
    }

    async fn fetch(&self, id: ProductId) -> Result<Option<Product>, CatalogError> {
        let sql = format!("SELECT {COLUMNS} FROM products WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(self.db.pool())
            .await
            .map_err(CatalogError::internal)?;
        row.as_ref().map(product_from_row).transpose()
    }
}

fn product_from_row(row: &sqlx::any::AnyRow) -> Result<Product, CatalogError> {
    let id: String = row.try_get("id").map_err(CatalogError::internal)?;
    let currency: String = row.try_get("price_currency").map_err(CatalogError::internal)?;
    Ok(Product {
        id: ProductId::parse(&id).ok_or_else(|| CatalogError::internal("corrupt product id"))?,
        name: row.try_get("name").map_err(CatalogError::internal)?,
        description: row.try_get("description").map_err(CatalogError::internal)?,
        category: row.try_get("category").map_err(CatalogError::internal)?,
        price: Money::new(
            row.try_get("price_amount").map_err(CatalogError::internal)?,
            Currency::parse(&currency).map_err(CatalogError::internal)?,
        ),
        created_at: kernel::ms_to_rfc3339(
            row.try_get("created_at").map_err(CatalogError::internal)?,
        ),
        updated_at: kernel::ms_to_rfc3339(
            row.try_get("updated_at").map_err(CatalogError::internal)?,
        ),
    })
}

/// `%text%` for LIKE, with LIKE's own wildcards escaped so a search for `50%` means it.
fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

#[async_trait]
impl CatalogService for Catalog {
    async fn list(
        &self,
        _: &RequestContext,
        q: ProductQuery,
    ) -> Result<Page<Product, ProductId>, CatalogError> {
        // The statement is assembled from fixed fragments only; every value is a bind.
        let mut sql = format!("SELECT {COLUMNS} FROM products WHERE 1 = 1");
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if q.after.is_some() {
            sql.push_str(&format!(" AND id > ${}", next()));
        }
        if q.category.is_some() {
            sql.push_str(&format!(" AND category = ${}", next()));
        }
        if q.text.is_some() {
            let i = next();
            sql.push_str(&format!(
                " AND (name_lower LIKE ${i} ESCAPE '\\' OR description_lower LIKE ${i} ESCAPE '\\')"
            ));
        }
        sql.push_str(&format!(" ORDER BY id LIMIT ${}", next()));

        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(c) = &q.after {
            query = query.bind(c.to_string());
        }
        if let Some(c) = &q.category {
            query = query.bind(c.as_str().to_owned());
        }
        if let Some(t) = &q.text {
            query = query.bind(like_pattern(t));
        }
        // One more than asked tells whether another page exists.
        let limit = q.limit.get() as usize;
        query = query.bind(limit as i64 + 1);
        let rows = query.fetch_all(self.db.pool()).await.map_err(CatalogError::internal)?;
        let mut items = rows.iter().map(product_from_row).collect::<Result<Vec<_>, _>>()?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|p| p.id)
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn get(&self, _: &RequestContext, id: ProductId) -> Result<Product, CatalogError> {
        self.fetch(id).await?.ok_or(CatalogError::ProductNotFound)
    }

    async fn create(&self, ctx: &RequestContext, n: NewProduct) -> Result<Product, CatalogError> {
        ctx.admin()?;
        let id = ProductId::new();
        let now = kernel::now_ms();
        sqlx::query(
            "INSERT INTO products (id, name, name_lower, description, description_lower, category, \
             price_amount, price_currency, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id.to_string())
        .bind(&n.name)
        .bind(n.name.to_lowercase())
        .bind(&n.description)
        .bind(n.description.to_lowercase())
        .bind(n.category.as_str().to_owned())
        .bind(n.price.amount)
        .bind(n.price.currency.as_str().to_owned())
        .bind(now)
        .bind(now)
        .execute(self.db.pool())
        .await
        .map_err(CatalogError::internal)?;
        tracing::debug!(product_id = %id, "product created");
        self.fetch(id).await?.ok_or_else(|| CatalogError::internal("product vanished after insert"))
    }

    async fn update(
        &self,
        ctx: &RequestContext,
        id: ProductId,
        patch: ProductPatch,
    ) -> Result<Product, CatalogError> {
        ctx.admin()?;
        let mut tx = self.db.begin_write().await.map_err(CatalogError::internal)?;
        let sql = format!("SELECT {COLUMNS} FROM products WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(CatalogError::internal)?
            .ok_or(CatalogError::ProductNotFound)?;
        let mut p = product_from_row(&row)?;
        patch.apply(&mut p);
        sqlx::query(
            "UPDATE products SET name = $1, name_lower = $2, description = $3, \
             description_lower = $4, category = $5, price_amount = $6, price_currency = $7, \
             updated_at = $8 WHERE id = $9",
        )
        .bind(&p.name)
        .bind(p.name.to_lowercase())
        .bind(&p.description)
        .bind(p.description.to_lowercase())
        .bind(&p.category)
        .bind(p.price.amount)
        .bind(p.price.currency.as_str().to_owned())
        .bind(kernel::now_ms())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(CatalogError::internal)?;
        tx.commit().await.map_err(CatalogError::internal)?;
        self.fetch(id).await?.ok_or(CatalogError::ProductNotFound)
    }

    async fn quote(
        &self,
        _: &RequestContext,
        ids: Vec<ProductId>,
    ) -> Result<Vec<PriceQuote>, CatalogError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Carts are bounded (see cart-api), so one IN list of binds is small.
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, name, price_amount, price_currency FROM products WHERE id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in &ids {
            query = query.bind(id.to_string());
        }
        let rows = query.fetch_all(self.db.pool()).await.map_err(CatalogError::internal)?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id").map_err(CatalogError::internal)?;
                let currency: String =
                    row.try_get("price_currency").map_err(CatalogError::internal)?;
                Ok(PriceQuote {
                    product_id: ProductId::parse(&id)
                        .ok_or_else(|| CatalogError::internal("corrupt product id"))?,
                    name: row.try_get("name").map_err(CatalogError::internal)?,
                    unit_price: Money::new(
                        row.try_get("price_amount").map_err(CatalogError::internal)?,
                        Currency::parse(&currency).map_err(CatalogError::internal)?,
                    ),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_pattern_escapes_wildcards() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
