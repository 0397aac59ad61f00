//! The payments table: reading a payment back (by order), and its row mapping.

use kernel::{Currency, Money, OrderId, PaymentId};
use payments_api::{DeclineReason, Payment, PaymentStatus};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::Payments;

impl Payments {
    pub(crate) async fn payment_of(&self, order: OrderId) -> Result<Option<Payment>, sqlx::Error> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} WHERE order_id = $1")))
            .bind(order.to_string())
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(payment_from_row).transpose()
    }

    pub(crate) async fn charge_id_of(&self, order: OrderId) -> Result<Option<String>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT provider_charge_id FROM payments WHERE order_id = $1 AND status = 'captured'",
        )
        .bind(order.to_string())
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|r| r.try_get::<Option<String>, _>("provider_charge_id"))
            .transpose()
            .map(Option::flatten)
    }
}

pub(crate) const SELECT: &str = "SELECT id, order_id, status, amount, currency, decline_reason, created_at, \
                      updated_at FROM payments";

pub(crate) fn money(amount: i64, currency: &str) -> Result<Money, String> {
    Currency::parse(currency).map(|c| Money::new(amount, c)).map_err(|e| e.to_string())
}

pub(crate) fn payment_from_row(r: &AnyRow) -> Result<Payment, sqlx::Error> {
    let corrupt = |what: &str| sqlx::Error::Decode(format!("corrupt {what}").into());
    let id: String = r.try_get("id")?;
    let order: String = r.try_get("order_id")?;
    let status: String = r.try_get("status")?;
    let currency: String = r.try_get("currency")?;
    Ok(Payment {
        id: PaymentId::parse(&id).ok_or_else(|| corrupt("payment id"))?,
        order_id: OrderId::parse(&order).ok_or_else(|| corrupt("order id"))?,
        status: PaymentStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        amount: money(r.try_get("amount")?, &currency).map_err(|_| corrupt("currency"))?,
        decline_reason: r
            .try_get::<Option<String>, _>("decline_reason")?
            .map(|d| DeclineReason::parse(&d).ok_or_else(|| corrupt("decline reason")))
            .transpose()?,
        created_at: kernel::ms_to_rfc3339(r.try_get("created_at")?),
        updated_at: kernel::ms_to_rfc3339(r.try_get("updated_at")?),
    })
}
