//! The consumer side of exactly-once effects over at-least-once delivery.

use store::Tx;

use crate::Envelope;

/// Records in `tx` that `consumer` handled `event`. True the first time; false if it was
/// handled before, in which case the caller does nothing (and commits or drops `tx`).
///
/// Call it in the same transaction as the effect: if the effect rolls back, so does the
/// record, and the redelivery does the work.
pub async fn claim(tx: &mut Tx, consumer: &str, event: &Envelope) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO bus_inbox (consumer, event_id, handled_at) VALUES ($1, $2, $3) \
         ON CONFLICT (consumer, event_id) DO NOTHING",
    )
    .bind(consumer)
    .bind(event.id.to_string())
    .bind(kernel::now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}
