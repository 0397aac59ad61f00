//! Stored emails in the form `kernel::Email` now gives them (RFC 8265's UsernameCaseMapped),
//! once: an account registered before, with an address in decomposed or full-width form,
//! would otherwise never match a login again. Done at start, recorded in `data_migrations`.

use sqlx::Row as _;
use store::Db;

const NAME: &str = "emails_username_case_mapped";

/// Rewrites each stored email whose prepared form differs, unless that form is another
/// account's already; such accounts, and addresses the profile refuses, are logged and left
/// as they are for an operator.
pub(crate) async fn prepare_stored_emails(db: &Db) -> anyhow::Result<()> {
    let done = sqlx::query("SELECT 1 FROM data_migrations WHERE name = $1")
        .bind(NAME)
        .fetch_optional(db.pool())
        .await?;
    if done.is_some() {
        return Ok(());
    }
    let rows = sqlx::query("SELECT id, email FROM users").fetch_all(db.pool()).await?;
    let (mut rewritten, mut left) = (0usize, 0usize);
    for row in rows {
        let id: String = row.try_get("id")?;
        let stored: String = row.try_get("email")?;
        match kernel::Email::parse(&stored) {
            Ok(prepared) if prepared.as_str() == stored => {}
            Ok(prepared) => {
                let taken = sqlx::query("SELECT 1 FROM users WHERE email = $1")
                    .bind(prepared.as_str())
                    .fetch_optional(db.pool())
                    .await?;
                if taken.is_some() {
                    tracing::warn!(
                        user_id = id,
                        "two accounts share one email once prepared; this one is left as stored"
                    );
                    left += 1;
                    continue;
                }
                // Another process of identity may be doing the same at its start: a clash
                // leaves this one as stored, it does not stop the start.
                let updated = sqlx::query("UPDATE users SET email = $1 WHERE id = $2")
                    .bind(prepared.as_str())
                    .bind(&id)
                    .execute(db.pool())
                    .await;
                match updated {
                    Ok(_) => rewritten += 1,
                    Err(e) => {
                        tracing::warn!(user_id = id, error = %e, "cannot prepare a stored email; left as stored");
                        left += 1;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(user_id = id, error = %e, "a stored email the profile refuses; left as stored");
                left += 1;
            }
        }
    }
    sqlx::query(
        "INSERT INTO data_migrations (name, applied_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(NAME)
    .bind(kernel::now_ms())
    .execute(db.pool())
    .await?;
    if rewritten + left > 0 {
        tracing::info!(rewritten, left, "stored emails prepared as RFC 8265 says");
    }
    Ok(())
}
