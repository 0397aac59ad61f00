use std::time::Duration;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct OrdersConfig {
    /// How long a checkout may take before the order is cancelled (`deadline_exceeded`) and
    /// its stock released. Orders wait `pending` this long when payments is down.
    pub saga_deadline: Duration,
    /// How often the deadline sweeper looks for overdue orders.
    pub sweep_every: Duration,
    /// How long an `Idempotency-Key` is remembered.
    pub key_retention: Duration,
}

impl Default for OrdersConfig {
    fn default() -> Self {
        OrdersConfig {
            saga_deadline: Duration::from_secs(15 * 60),
            sweep_every: Duration::from_secs(1),
            key_retention: Duration::from_secs(24 * 3600),
        }
    }
}

pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
