use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kernel::{CursorKey, EventId, Limit, Page};
use serde::Serialize;

use crate::Envelope;

/// The message bus, whatever carries it (the embedded SQLite bus here; NATS JetStream in
/// the distributed topologies). Delivery is at least once: consumers dedupe with the inbox.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Durably accepts an envelope. Publishing the same id twice stores it once (the
    /// relay republishes after a crash between publish and marking the outbox row sent).
    async fn publish(&self, envelope: &Envelope) -> Result<(), BusError>;

    /// Starts delivering the subscription's event types to its handler, from now on and
    /// also whatever was owed to this subscriber before a restart.
    async fn subscribe(&self, subscription: Subscription) -> Result<(), BusError>;

    /// Parked deliveries, oldest first, a page at a time: those after `after`.
    async fn dead_letters(
        &self,
        limit: Limit,
        after: Option<DeadLetterKey>,
    ) -> Result<Page<DeadLetter, DeadLetterKey>, BusError>;

    /// Delivers a stored event to `subscriber` again: a dead letter goes back to its queue;
    /// an event it already handled is redelivered (and its inbox makes that a no-op).
    async fn replay(&self, subscriber: &str, event: EventId) -> Result<(), BusError>;

    /// Stops delivering; in-flight handlers finish or are redelivered later.
    async fn shutdown(&self);

    /// The broker as OpenTelemetry's `messaging.system` names it.
    fn messaging_system(&self) -> &'static str;

    /// What each subscriber of this process still owes, by subscriber name: the figures
    /// behind the bus lag and backlog metrics.
    async fn backlogs(&self) -> Result<Vec<(String, Backlog)>, BusError>;
}

/// Messages waiting: a subscriber's deliveries not yet acknowledged, or an outbox's events
/// not yet published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// How many (due, in flight or backing off).
    pub messages: u64,
    /// How long the oldest has waited: since it was published (a subscriber's) or staged
    /// (an outbox's). `None` when nothing waits, or when the broker cannot say.
    pub oldest_age: Option<Duration>,
}

impl Backlog {
    /// `messages` waiting, the oldest since `oldest_ms` (epoch milliseconds).
    pub(crate) fn since(messages: u64, oldest_ms: Option<i64>) -> Backlog {
        let age =
            |at: i64| Duration::from_millis(kernel::now_ms().saturating_sub(at).max(0) as u64);
        Backlog { messages, oldest_age: oldest_ms.filter(|_| messages > 0).map(age) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the bus is unavailable: {0}")]
    Unavailable(String),
    #[error("no stored event {0} for that subscriber")]
    NotFound(EventId),
    #[error("invalid subscription: {0}")]
    InvalidSubscription(String),
}

/// A consumer's code. It must be idempotent: do the effect and [`crate::inbox::claim`] in
/// one transaction of the consumer's own database.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, event: &Envelope) -> Result<(), HandleError>;
}

/// Why a handler did not finish.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Something transient (a busy database, a peer down): deliver again after a backoff.
    #[error("{0}")]
    Retry(String),
    /// It can never succeed (an event it cannot decode): park it for an operator now.
    #[error("{0}")]
    Reject(String),
}

impl HandleError {
    pub fn retry(e: impl std::fmt::Display) -> HandleError {
        HandleError::Retry(e.to_string())
    }
    pub fn reject(e: impl std::fmt::Display) -> HandleError {
        HandleError::Reject(e.to_string())
    }
}

impl From<crate::DecodeError> for HandleError {
    fn from(e: crate::DecodeError) -> Self {
        HandleError::Reject(e.to_string())
    }
}

impl From<sqlx::Error> for HandleError {
    fn from(e: sqlx::Error) -> Self {
        HandleError::Retry(format!("database: {e}"))
    }
}

/// How a subscriber's deliveries are paced and retried.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// Handler runs before a delivery is parked as a dead letter.
    pub max_deliver: u32,
    /// Backoff after the first failure; doubles per attempt (with jitter) up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// A delivery in flight longer than this is presumed lost and handed out again.
    pub ack_wait: Duration,
    /// Handler runs in flight at once for this subscriber.
    pub concurrency: usize,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            max_deliver: 8,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            ack_wait: Duration::from_secs(30),
            concurrency: 16,
        }
    }
}

impl DeliveryPolicy {
    /// The wait before attempt `attempts + 1`, given `attempts` failed runs so far.
    pub fn backoff_after(&self, attempts: u32) -> Duration {
        let exp = self.backoff.saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
        let capped = exp.min(self.max_backoff);
        // Full jitter on the upper half, so retries of many failed events spread out.
        let half = capped / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

/// One subscriber (a module, durable across restarts) and the event types it handles.
#[derive(Clone)]
pub struct Subscription {
    pub subscriber: String,
    pub event_types: Vec<&'static str>,
    pub handler: Arc<dyn Handler>,
    pub policy: DeliveryPolicy,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("subscriber", &self.subscriber)
            .field("event_types", &self.event_types)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    pub fn new(
        subscriber: impl Into<String>,
        event_types: Vec<&'static str>,
        handler: Arc<dyn Handler>,
    ) -> Subscription {
        Subscription {
            subscriber: subscriber.into(),
            event_types,
            handler,
            policy: DeliveryPolicy::default(),
        }
    }

    pub fn with_policy(mut self, policy: DeliveryPolicy) -> Subscription {
        self.policy = policy;
        self
    }
}

/// Where a dead letter sits in the listing's order (oldest first): when it was parked
/// (Unix milliseconds), then its event and subscriber, which together are unique.
/// Subscriber names are module names: `[a-z0-9_-]`, 1 to 64 of them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeadLetterKey {
    pub dead_at_ms: i64,
    pub event_id: EventId,
    pub subscriber: String,
}

impl CursorKey for DeadLetterKey {
    const LIST: &'static str = "dead-letters";
    // At most 18 digits: every such number is an i64.
    const PATTERN: &'static str = "(0|[1-9][0-9]{0,17})\\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\\.[a-z0-9_-]{1,64}";
    fn to_text(&self) -> String {
        format!("{}.{}.{}", self.dead_at_ms, self.event_id, self.subscriber)
    }
    fn from_text(s: &str) -> Option<Self> {
        let mut parts = s.splitn(3, '.');
        let ms = parts.next().filter(|m| (1..=18).contains(&m.len()))?;
        let dead_at_ms = ms.bytes().all(|b| b.is_ascii_digit()).then(|| ms.parse().ok())??;
        let event_id = EventId::parse(parts.next()?)?;
        let subscriber = parts.next().filter(|s| {
            (1..=64).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        })?;
        Some(DeadLetterKey { dead_at_ms, event_id, subscriber: subscriber.to_owned() })
    }
}

#[cfg(test)]
mod cursor_tests {
    use super::*;

    #[test]
    fn a_dead_letter_cursor_is_exactly_its_pattern() {
        let key = |ms, sub: &str| DeadLetterKey {
            dead_at_ms: ms,
            event_id: EventId::new(),
            subscriber: sub.to_owned(),
        };
        let id = EventId::new();
        kernel::check_cursor_key(
            &[key(0, "orders"), key(1_764_000_000_000, "a_b-9"), key(999_999_999_999_999_999, "x")],
            &[
                &format!("-1.{id}.orders"),
                &format!("01.{id}.orders"),
                &format!("1000000000000000000.{id}.orders"),
                &format!("1.{id}."),
                &format!("1.{id}.Orders"),
                &format!("1.{id}.a.b"),
                &format!("1.{}.orders", id.as_uuid().simple()),
            ],
        );
    }
}

/// One page of dead letters from `(key, letter)` pairs in listing order, at most
/// `limit + 1` of them: the extra one only says that another page follows.
pub fn dead_letter_page(
    mut rows: Vec<(DeadLetterKey, DeadLetter)>,
    limit: Limit,
) -> Page<DeadLetter, DeadLetterKey> {
    let limit = limit.get() as usize;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more { rows.last().map(|(k, _)| k.clone()) } else { None };
    Page { items: rows.into_iter().map(|(_, d)| d).collect(), next }
}

/// A delivery given up on, kept for an operator.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    pub subscriber: String,
    #[schema(value_type = String, format = Uuid)]
    pub event_id: EventId,
    pub event_type: String,
    pub attempts: u32,
    pub last_error: String,
    /// RFC 3339.
    pub dead_at: String,
}

/// The handle everything else holds.
#[derive(Clone)]
pub struct BusClient(Arc<dyn EventBus>);

impl std::fmt::Debug for BusClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BusClient")
    }
}

impl BusClient {
    pub fn new(bus: impl EventBus) -> BusClient {
        BusClient(Arc::new(bus))
    }
    /// The broker as OpenTelemetry's `messaging.system` names it (`nats`, or `microlith`
    /// for the embedded broker).
    pub fn messaging_system(&self) -> &'static str {
        self.0.messaging_system()
    }

    pub fn from_arc(bus: Arc<dyn EventBus>) -> BusClient {
        BusClient(bus)
    }
}

impl std::ops::Deref for BusClient {
    type Target = dyn EventBus;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = DeliveryPolicy {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..DeliveryPolicy::default()
        };
        let first = p.backoff_after(1);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        let third = p.backoff_after(3);
        assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
        for n in [10, 40, u32::MAX] {
            assert!(p.backoff_after(n) <= Duration::from_secs(1));
        }
    }
}
