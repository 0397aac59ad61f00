//! The jobs orders offers ([`bus::Job`]): expiring pending orders past their deadline, and
//! the daily sales summary. Run by a loop in the process that hosts orders, or by a
//! scheduled function when orders is a function.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use bus::Job;

use crate::Orders;
use crate::summary::SUMMARY_CHECK_EVERY;

/// Cancels pending orders past their deadline, releasing their stock, and forgets expired
/// idempotency keys.
pub const EXPIRE_STALE_ORDERS: &str = "expire_stale_orders";
/// Sends the admins the sales summary of the last UTC day, once.
pub const DAILY_SALES_SUMMARY: &str = "daily_sales_summary";
/// The names of every job orders offers, for topology files.
pub const JOBS: &[&str] = &[EXPIRE_STALE_ORDERS, DAILY_SALES_SUMMARY];

impl Orders {
    /// Its jobs, one per name in [`JOBS`].
    pub fn jobs(self: &Arc<Self>) -> Vec<Arc<dyn Job>> {
        vec![Arc::new(ExpireStaleOrders(self.clone())), Arc::new(DailySalesSummary(self.clone()))]
    }
}

struct ExpireStaleOrders(Arc<Orders>);

#[async_trait]
impl Job for ExpireStaleOrders {
    fn name(&self) -> &'static str {
        EXPIRE_STALE_ORDERS
    }

    fn every(&self) -> Duration {
        self.0.config.sweep_every
    }

    async fn run(&self, now: i64) -> anyhow::Result<serde_json::Value> {
        let cancelled = self.0.sweep_at(now).await.context("the sweep failed")?;
        Ok(serde_json::json!({ "job": EXPIRE_STALE_ORDERS, "cancelled": cancelled }))
    }
}

struct DailySalesSummary(Arc<Orders>);

#[async_trait]
impl Job for DailySalesSummary {
    fn name(&self) -> &'static str {
        DAILY_SALES_SUMMARY
    }

    fn every(&self) -> Duration {
        SUMMARY_CHECK_EVERY
    }

    /// The summary of the day before the one holding `now`.
    async fn run(&self, now: i64) -> anyhow::Result<serde_json::Value> {
        let sent = self.0.send_daily_summary(now).await.context("the summary failed")?;
        Ok(serde_json::json!({ "job": DAILY_SALES_SUMMARY, "sent": sent.map(|s| s.day) }))
    }
}
