//! The consumer side of exactly-once effects over at-least-once delivery.

use store::{Db, Tx};

use crate::{Envelope, HandleError};

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

/// A consumer's whole step: in one write transaction of `db`, claims `event` for
/// `consumer` and runs `effect`, then commits. True if the effect ran; false if the event
/// had been handled before (nothing is done). An error rolls everything back.
pub async fn once(
    db: &Db,
    consumer: &str,
    event: &Envelope,
    effect: impl AsyncFnOnce(&mut Tx) -> Result<(), HandleError>,
) -> Result<bool, HandleError> {
    let mut tx = db.begin_write().await?;
    if !claim(&mut tx, consumer, event).await? {
        return Ok(false);
    }
    effect(&mut tx).await?;
    tx.commit().await?;
    Ok(true)
}
