//! A simulated card provider with Stripe's test-token behaviour and Stripe's idempotency
//! rule: a request repeated with the same idempotency key gets the first answer and makes
//! no second charge. It keeps its own database, as an external service would.

use kernel::Money;
use payments_api::PaymentToken;
use sqlx::Row as _;
use store::Db;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./provider_migrations");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeOutcome {
    Succeeded,
    /// The card was declined (`card_declined`); nothing was taken.
    Declined,
}

/// The provider's answer to a charge request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub charge_id: String,
    pub outcome: ChargeOutcome,
}

#[derive(Clone)]
pub struct CardProvider {
    db: Db,
}

impl std::fmt::Debug for CardProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardProvider")
    }
}

impl CardProvider {
    pub async fn new(db: Db) -> anyhow::Result<CardProvider> {
        db.migrate(&MIGRATOR).await?;
        Ok(CardProvider { db })
    }

    /// Charges `amount` to the card behind `token`. `order_ref` is recorded with the charge
    /// (Stripe's metadata); `idempotency_key` decides whether this is a new charge.
    pub async fn charge(
        &self,
        idempotency_key: &str,
        token: PaymentToken,
        amount: Money,
        order_ref: &str,
    ) -> Result<Charge, sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        if let Some(existing) = find(&mut tx, idempotency_key).await? {
            return Ok(existing);
        }
        let outcome = match token {
            PaymentToken::Visa => ChargeOutcome::Succeeded,
            PaymentToken::ChargeDeclined => ChargeOutcome::Declined,
        };
        let charge_id = format!("ch_{}", uuid::Uuid::now_v7().simple());
        let now = kernel::now_ms();
        sqlx::query(
            "INSERT INTO provider_charges (charge_id, order_ref, token, amount, currency, outcome, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&charge_id)
        .bind(order_ref)
        .bind(token.as_str())
        .bind(amount.amount)
        .bind(amount.currency.as_str())
        .bind(outcome_str(outcome))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO provider_idempotency (idempotency_key, charge_id, created_at) VALUES ($1, $2, $3)",
        )
        .bind(idempotency_key)
        .bind(&charge_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Charge { charge_id, outcome })
    }

    /// Gives a successful charge back. Refunding twice is a no-op.
    pub async fn refund(&self, charge_id: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE provider_charges SET refunded_at = $1 \
             WHERE charge_id = $2 AND outcome = 'succeeded' AND refunded_at IS NULL",
        )
        .bind(kernel::now_ms())
        .bind(charge_id)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Successful charges the provider made for `order_ref`, refunded or not: what an
    /// audit of "was this order charged twice" looks at.
    pub async fn captures_for(&self, order_ref: &str) -> Result<i64, sqlx::Error> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM provider_charges WHERE order_ref = $1 AND outcome = 'succeeded'",
        )
        .bind(order_ref)
        .fetch_one(self.db.pool())
        .await?;
        row.try_get("n")
    }

    /// Successful charges for `order_ref` that were given back.
    pub async fn refunds_for(&self, order_ref: &str) -> Result<i64, sqlx::Error> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM provider_charges \
             WHERE order_ref = $1 AND outcome = 'succeeded' AND refunded_at IS NOT NULL",
        )
        .bind(order_ref)
        .fetch_one(self.db.pool())
        .await?;
        row.try_get("n")
    }
}

fn outcome_str(o: ChargeOutcome) -> &'static str {
    match o {
        ChargeOutcome::Succeeded => "succeeded",
        ChargeOutcome::Declined => "declined",
    }
}

async fn find(tx: &mut store::Tx, key: &str) -> Result<Option<Charge>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT c.charge_id, c.outcome FROM provider_idempotency i \
         JOIN provider_charges c ON c.charge_id = i.charge_id WHERE i.idempotency_key = $1",
    )
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| {
        let outcome: String = r.try_get("outcome")?;
        Ok(Charge {
            charge_id: r.try_get("charge_id")?,
            outcome: if outcome == "succeeded" {
                ChargeOutcome::Succeeded
            } else {
                ChargeOutcome::Declined
            },
        })
    })
    .transpose()
}
