use std::collections::BTreeMap;

use std::sync::Arc;

use async_trait::async_trait;
use bus::Outbox;
use catalog_api::{CatalogClient, CatalogError};
use inventory_api::{
    InventoryError, InventoryService, Reservation, ReservationLine, ReservationStatus, StockCount,
    StockLevel,
};
use kernel::{OrderId, ProductId, Quantity, RequestContext};
use sqlx::Row as _;
use store::{Db, Tx};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The inventory module.
pub struct Inventory {
    pub(crate) db: Db,
    pub(crate) outbox: Outbox,
    catalog: CatalogClient,
}

/// Catalog's failures as inventory's: a product it does not know is one this
/// module does not know either.
fn from_catalog(e: CatalogError) -> InventoryError {
    match e {
        CatalogError::ProductNotFound => InventoryError::ProductNotFound,
        other => InventoryError::from_callee("catalog", other),
    }
}

impl Inventory {
    pub async fn new(db: Db, catalog: CatalogClient) -> anyhow::Result<Arc<Inventory>> {
        db.migrate(&MIGRATOR).await?;
        let outbox = Outbox::new(db.clone(), "inventory").await?;
        Ok(Arc::new(Inventory { db, outbox, catalog }))
    }

    pub fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }

    /// Runs `work` in one write transaction, committed if it succeeds.
    async fn in_tx<T>(
        &self,
        work: impl AsyncFnOnce(&mut Tx) -> Result<T, InventoryError>,
    ) -> Result<T, InventoryError> {
        let mut tx = self.db.begin_write().await.map_err(InventoryError::internal)?;
        let out = work(&mut tx).await?;
        tx.commit().await.map_err(InventoryError::internal)?;
        Ok(out)
    }

    async fn level(&self, product: ProductId) -> Result<Option<StockLevel>, InventoryError> {
        let row = sqlx::query("SELECT available, reserved FROM stock WHERE product_id = $1")
            .bind(product.to_string())
            .fetch_optional(self.db.pool())
            .await
            .map_err(InventoryError::internal)?;
        row.map(|r| {
            Ok(StockLevel {
                product_id: product,
                available: r.try_get("available").map_err(InventoryError::internal)?,
                reserved: r.try_get("reserved").map_err(InventoryError::internal)?,
            })
        })
        .transpose()
    }
}

/// Ends a held reservation in `tx`: every line's units move by `units` (sold or available
/// again) and the status becomes `to`. In a state of `done` it has already happened (or
/// has nothing to do) and is a no-op; from any other state but `reserved` it is a
/// conflict. The second value says whether anything changed.
pub(crate) async fn settle_in(
    tx: &mut Tx,
    order: OrderId,
    to: ReservationStatus,
    units: &'static str,
    done: &[ReservationStatus],
) -> Result<(Reservation, bool), InventoryError> {
    let r = load(tx, order).await?.ok_or(InventoryError::ReservationNotFound)?;
    if done.contains(&r.status) {
        return Ok((r, false));
    }
    if r.status != ReservationStatus::Reserved {
        return Err(InventoryError::ReservationConflict(r.status.as_str().into()));
    }
    for l in &r.lines {
        if !move_units(tx, units, l.product_id, i64::from(l.quantity.get())).await? {
            return Err(InventoryError::internal(format!(
                "reserved units missing when {}",
                to.as_str()
            )));
        }
    }
    set_status(tx, order, to).await?;
    Ok((Reservation { status: to, ..r }, true))
}

pub(crate) const COMMITTED: [ReservationStatus; 1] = [ReservationStatus::Committed];
/// A rejected reservation holds nothing: releasing it is a no-op.
pub(crate) const RELEASED: [ReservationStatus; 2] =
    [ReservationStatus::Released, ReservationStatus::Rejected];

pub(crate) async fn load(
    tx: &mut Tx,
    order: OrderId,
) -> Result<Option<Reservation>, InventoryError> {
    let Some(row) =
        sqlx::query("SELECT status, short_product FROM reservations WHERE order_id = $1")
            .bind(order.to_string())
            .fetch_optional(&mut **tx)
            .await
            .map_err(InventoryError::internal)?
    else {
        return Ok(None);
    };
    let status: String = row.try_get("status").map_err(InventoryError::internal)?;
    let short: Option<String> = row.try_get("short_product").map_err(InventoryError::internal)?;
    let lines = sqlx::query(
        "SELECT product_id, quantity FROM reservation_lines WHERE order_id = $1 ORDER BY product_id",
    )
    .bind(order.to_string())
    .fetch_all(&mut **tx)
    .await
    .map_err(InventoryError::internal)?
    .iter()
    .map(|r| {
        let p: String = r.try_get("product_id").map_err(InventoryError::internal)?;
        let q: i64 = r.try_get("quantity").map_err(InventoryError::internal)?;
        Ok(ReservationLine {
            product_id: ProductId::parse(&p).ok_or_else(|| InventoryError::internal("corrupt product id"))?,
            quantity: Quantity::new(q).ok_or_else(|| InventoryError::internal("corrupt quantity"))?,
        })
    })
    .collect::<Result<Vec<_>, InventoryError>>()?;
    Ok(Some(Reservation {
        order_id: order,
        status: ReservationStatus::parse(&status)
            .ok_or_else(|| InventoryError::internal("corrupt status"))?,
        lines,
        short_product: short.as_deref().and_then(ProductId::parse),
    }))
}

async fn set_status(
    tx: &mut Tx,
    order: OrderId,
    status: ReservationStatus,
) -> Result<(), InventoryError> {
    sqlx::query("UPDATE reservations SET status = $1, updated_at = $2 WHERE order_id = $3")
        .bind(status.as_str())
        .bind(kernel::now_ms())
        .bind(order.to_string())
        .execute(&mut **tx)
        .await
        .map_err(InventoryError::internal)?;
    Ok(())
}

/// Moves `quantity` units of `product` by the given statement; false if a guard failed.
async fn move_units(
    tx: &mut Tx,
    sql: &'static str,
    product: ProductId,
    quantity: i64,
) -> Result<bool, InventoryError> {
    let done = sqlx::query(sql)
        .bind(quantity)
        .bind(kernel::now_ms())
        .bind(product.to_string())
        .execute(&mut **tx)
        .await
        .map_err(InventoryError::internal)?;
    Ok(done.rows_affected() == 1)
}

pub(crate) const HOLD: &str = "UPDATE stock SET available = available - $1, reserved = reserved + $1, \
                    updated_at = $2 WHERE product_id = $3 AND available >= $1";
pub(crate) const UNHOLD: &str = "UPDATE stock SET available = available + $1, reserved = reserved - $1, \
                      updated_at = $2 WHERE product_id = $3 AND reserved >= $1";
pub(crate) const SELL: &str = "UPDATE stock SET reserved = reserved - $1, sold = sold + $1, \
                    updated_at = $2 WHERE product_id = $3 AND reserved >= $1";

#[async_trait]
impl InventoryService for Inventory {
    async fn stock(
        &self,
        ctx: &RequestContext,
        product: ProductId,
    ) -> Result<StockLevel, InventoryError> {
        if let Some(level) = self.level(product).await? {
            return Ok(level);
        }
        // No stock row: a known product simply has none yet.
        self.catalog.get(ctx, product).await.map_err(from_catalog)?;
        Ok(StockLevel { product_id: product, available: 0, reserved: 0 })
    }

    async fn set_stock(
        &self,
        ctx: &RequestContext,
        product: ProductId,
        available: StockCount,
    ) -> Result<StockLevel, InventoryError> {
        ctx.admin()?;
        self.catalog.get(ctx, product).await.map_err(from_catalog)?;
        // One statement, so a concurrent reservation cannot slip between read and write;
        // `adjusted` records the restock so the conservation invariant stays checkable.
        sqlx::query(
            "INSERT INTO stock (product_id, available, reserved, sold, adjusted, updated_at) \
             VALUES ($1, $2, 0, 0, $2, $3) \
             ON CONFLICT (product_id) DO UPDATE SET \
               adjusted = stock.adjusted + excluded.available - stock.available, \
               available = excluded.available, updated_at = excluded.updated_at",
        )
        .bind(product.to_string())
        .bind(available.get())
        .bind(kernel::now_ms())
        .execute(self.db.pool())
        .await
        .map_err(InventoryError::internal)?;
        tracing::debug!(product_id = %product, available = available.get(), "stock set");
        self.level(product).await?.ok_or_else(|| InventoryError::internal("stock row vanished"))
    }

    async fn reserve(
        &self,
        ctx: &RequestContext,
        order: OrderId,
        lines: Vec<ReservationLine>,
    ) -> Result<Reservation, InventoryError> {
        ctx.admin()?;
        if lines.is_empty() {
            return Err(InventoryError::InvalidInput(
                "a reservation needs at least one line".into(),
            ));
        }
        self.in_tx(async |tx| reserve_in(tx, order, &lines).await).await
    }

    async fn commit(
        &self,
        ctx: &RequestContext,
        order: OrderId,
    ) -> Result<Reservation, InventoryError> {
        ctx.admin()?;
        let to = ReservationStatus::Committed;
        self.in_tx(async |tx| Ok(settle_in(tx, order, to, SELL, &COMMITTED).await?.0)).await
    }

    async fn release(
        &self,
        ctx: &RequestContext,
        order: OrderId,
    ) -> Result<Reservation, InventoryError> {
        ctx.admin()?;
        let to = ReservationStatus::Released;
        self.in_tx(async |tx| Ok(settle_in(tx, order, to, UNHOLD, &RELEASED).await?.0)).await
    }
}

/// Holds every line of `lines` or none, in `tx`, and records the outcome; an order that
/// already has a reservation (or a release tombstone) gets it back unchanged.
pub(crate) async fn reserve_in(
    tx: &mut Tx,
    order: OrderId,
    lines: &[ReservationLine],
) -> Result<Reservation, InventoryError> {
    let mut merged: BTreeMap<ProductId, i64> = BTreeMap::new();
    for l in lines {
        *merged.entry(l.product_id).or_default() += i64::from(l.quantity.get());
    }
    if let Some(existing) = load(tx, order).await? {
        return Ok(existing);
    }
    let mut held = Vec::new();
    let mut short = None;
    for (&product, &quantity) in &merged {
        if move_units(tx, HOLD, product, quantity).await? {
            held.push((product, quantity));
        } else {
            short = Some(product);
            break;
        }
    }
    if short.is_some() {
        // All or nothing: give back what this call took, in the same transaction.
        for (product, quantity) in held {
            move_units(tx, UNHOLD, product, quantity).await?;
        }
    }
    let status =
        if short.is_some() { ReservationStatus::Rejected } else { ReservationStatus::Reserved };
    insert_reservation(tx, order, status, short).await?;
    for (product, quantity) in &merged {
        sqlx::query(
            "INSERT INTO reservation_lines (order_id, product_id, quantity) VALUES ($1, $2, $3)",
        )
        .bind(order.to_string())
        .bind(product.to_string())
        .bind(*quantity)
        .execute(&mut **tx)
        .await
        .map_err(InventoryError::internal)?;
    }
    tracing::info!(order_id = %order, status = status.as_str(), "reservation");
    load(tx, order).await?.ok_or_else(|| InventoryError::internal("reservation vanished"))
}

pub(crate) async fn insert_reservation(
    tx: &mut Tx,
    order: OrderId,
    status: ReservationStatus,
    short: Option<ProductId>,
) -> Result<(), InventoryError> {
    sqlx::query(
        "INSERT INTO reservations (order_id, status, short_product, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(order.to_string())
    .bind(status.as_str())
    .bind(short.map(|p| p.to_string()))
    .bind(kernel::now_ms())
    .execute(&mut **tx)
    .await
    .map_err(InventoryError::internal)?;
    Ok(())
}
