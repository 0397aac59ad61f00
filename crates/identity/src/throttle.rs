//! Login throttling per account, beside the gateway's per-address limit: an attacker who
//! rotates source addresses still meets it. After [`FREE_FAILURES`] failed logins for one
//! email, each further attempt must wait twice as long as the last, up to [`MAX_BACKOFF`]
//! (OWASP Authentication Cheat Sheet, "Login Throttling"; a backoff rather than a hard
//! lock-out, so an attacker cannot lock a user out for long). Emails with no account are
//! counted the same way, so the throttle says nothing about which accounts exist.

use std::time::Duration;

use kernel::Email;
use sqlx::Row as _;
use store::Db;

/// Failed logins allowed before the backoff starts.
pub(crate) const FREE_FAILURES: i64 = 5;
/// The longest wait.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// A quiet hour forgives earlier failures.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// The wait after the `failures`-th failure in a row.
pub(crate) fn backoff(failures: i64) -> Duration {
    if failures < FREE_FAILURES {
        return Duration::ZERO;
    }
    let exp = u32::try_from(failures - FREE_FAILURES).unwrap_or(u32::MAX).min(20);
    Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
}

/// What the throttle says of an email now.
pub(crate) struct Standing {
    /// Seconds to wait before the next attempt, if any.
    pub(crate) wait_s: Option<u64>,
    /// Whether failures are on record (a success clears them).
    pub(crate) has_failures: bool,
}

pub(crate) async fn standing(db: &Db, email: &Email) -> Result<Standing, sqlx::Error> {
    let row = sqlx::query("SELECT blocked_until FROM login_failures WHERE email = $1")
        .bind(email.as_str())
        .fetch_optional(db.pool())
        .await?;
    let Some(row) = row else { return Ok(Standing { wait_s: None, has_failures: false }) };
    let until: i64 = row.try_get("blocked_until")?;
    let left_ms = until - kernel::now_ms();
    let wait_s = (left_ms > 0).then(|| u64::try_from(left_ms).unwrap_or(0).div_ceil(1000));
    Ok(Standing { wait_s, has_failures: true })
}

/// Records a failed login for `email`.
pub(crate) async fn failed(db: &Db, email: &Email) -> Result<(), sqlx::Error> {
    let now = kernel::now_ms();
    let mut tx = db.begin_write().await?;
    let row = sqlx::query("SELECT failures, last_failed_at FROM login_failures WHERE email = $1")
        .bind(email.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    let before = match row {
        Some(r) => {
            let last: i64 = r.try_get("last_failed_at")?;
            let recent = now - last < FORGET_AFTER.as_millis() as i64;
            if recent { r.try_get::<i64, _>("failures")? } else { 0 }
        }
        None => 0,
    };
    let failures = before + 1;
    let blocked_until = now + backoff(failures).as_millis() as i64;
    sqlx::query(
        "INSERT INTO login_failures (email, failures, last_failed_at, blocked_until) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (email) DO UPDATE SET failures = $2, \
         last_failed_at = $3, blocked_until = $4",
    )
    .bind(email.as_str())
    .bind(failures)
    .bind(now)
    .bind(blocked_until)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    if failures >= FREE_FAILURES {
        tracing::warn!(failures, "repeated failed logins for one account: throttled");
    }
    Ok(())
}

/// A successful login forgets the failures.
pub(crate) async fn succeeded(db: &Db, email: &Email) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    sqlx::query("DELETE FROM login_failures WHERE email = $1")
        .bind(email.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_after_the_free_failures_and_is_capped() {
        assert_eq!(backoff(1), Duration::ZERO);
        assert_eq!(backoff(FREE_FAILURES - 1), Duration::ZERO);
        assert_eq!(backoff(FREE_FAILURES), Duration::from_secs(1));
        assert_eq!(backoff(FREE_FAILURES + 3), Duration::from_secs(8));
        assert_eq!(backoff(FREE_FAILURES + 40), MAX_BACKOFF);
        assert_eq!(backoff(i64::MAX), MAX_BACKOFF);
    }
}
