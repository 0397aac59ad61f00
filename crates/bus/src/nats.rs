//! The bus on NATS JetStream, for placements spread over processes and machines.
//!
//! Layout, under a namespace `ns` (default `microlith`, one per test):
//! - one stream per domain (`NS_EV_ORDERS` holds `ns.ev.orders.>`), file storage; each
//!   event is published on `ns.ev.<domain>.<event>.<event id>` with `Nats-Msg-Id` = event id,
//!   so the broker drops a republished duplicate and an operator can fetch any stored event
//!   by id;
//! - per subscriber and event type a durable pull consumer (`<subscriber>__<domain>_<event>`)
//!   with explicit acks: a delivery is acked only after the handler's transaction committed,
//!   a failure is nak'ed with the policy's backoff, and after `max_deliver` tries the event
//!   goes to the dead-letter stream (`NS_DLQ`, `ns.dlq.<subscriber>.<event id>`) and is
//!   terminated;
//! - a replay stream (`NS_REPLAY`, `ns.replay.<subscriber>`) with one consumer per
//!   subscriber, through which an operator's replay reaches that subscriber alone.
//!
//! Durability: file storage, one replica on a single server. An event is acknowledged to
//! the outbox relay once the server stored it; it survives a broker restart. The server
//! fsyncs every 2 minutes by default (`sync_interval`), so an operating-system crash can
//! lose the last moments unless the server runs with `sync_interval: always` (slower) or as
//! a three-node cluster (`num_replicas = 3`), which is the production setting.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer, stream};
use async_trait::async_trait;
use futures::StreamExt as _;
use kernel::{EventId, Limit, Page};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::contract::dead_letter_page;
use crate::{
    Backlog, BusError, DeadLetter, DeadLetterKey, Envelope, EventBus, HandleError, Subscription,
};

const EVENT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

#[derive(Clone)]
pub struct NatsBus {
    inner: Arc<Inner>,
}

struct Inner {
    js: jetstream::Context,
    ns: String,
    streams: Mutex<HashSet<String>>,
    /// This process's durable consumers, for [`EventBus::backlogs`].
    consumers: Mutex<Vec<Durable>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    cancel: CancellationToken,
}

impl std::fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBus").field("namespace", &self.inner.ns).finish_non_exhaustive()
    }
}

/// One durable consumer of a subscriber.
#[derive(Clone)]
struct Durable {
    subscriber: String,
    stream: stream::Stream,
    name: String,
    filter: String,
}

/// A dead letter as stored in the dead-letter stream.
#[derive(Serialize, Deserialize)]
struct DeadRecord {
    subscriber: String,
    attempts: u32,
    last_error: String,
    dead_at: i64,
    envelope: Envelope,
}

fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(e.to_string())
}

/// A token safe in subjects, stream and consumer names.
fn token_ok(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl NatsBus {
    /// Connects to the server at `url` and works under `namespace` (letters, digits, `_`).
    pub async fn connect(url: &str, namespace: &str) -> anyhow::Result<NatsBus> {
        anyhow::ensure!(token_ok(namespace), "bad bus namespace {namespace:?}");
        let client = async_nats::ConnectOptions::new()
            .name("microlith")
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to NATS at {url}: {e}"))?;
        let bus = NatsBus {
            inner: Arc::new(Inner {
                js: jetstream::new(client),
                ns: namespace.to_owned(),
                streams: Mutex::default(),
                consumers: Mutex::default(),
                tasks: Mutex::default(),
                cancel: CancellationToken::new(),
            }),
        };
        bus.stream("DLQ", "dlq").await?;
        bus.stream("REPLAY", "replay").await?;
        Ok(bus)
    }

    fn domain_of(event_type: &str) -> Result<(&str, &str), BusError> {
        match event_type.split_once('.') {
            Some((d, e)) if token_ok(d) && token_ok(e) => Ok((d, e)),
            _ => Err(BusError::InvalidSubscription(format!("bad event type {event_type:?}"))),
        }
    }

    /// The stream for subjects `ns.<prefix>.>`, created if missing.
    async fn stream(&self, name: &str, prefix: &str) -> Result<stream::Stream, BusError> {
        let inner = &*self.inner;
        let stream_name = format!("{}_{}", inner.ns.to_uppercase(), name.to_uppercase());
        let config = stream::Config {
            name: stream_name.clone(),
            subjects: vec![format!("{}.{prefix}.>", inner.ns)],
            storage: stream::StorageType::File,
            max_age: EVENT_RETENTION,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        let stream = inner.js.get_or_create_stream(config).await.map_err(unavailable)?;
        inner.streams.lock().unwrap_or_else(|p| p.into_inner()).insert(stream_name);
        Ok(stream)
    }

    async fn event_stream(&self, domain: &str) -> Result<stream::Stream, BusError> {
        self.stream(&format!("EV_{domain}"), &format!("ev.{domain}")).await
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner()).push(handle);
    }

    async fn publish_raw(
        &self,
        subject: String,
        msg_id: &str,
        payload: Vec<u8>,
    ) -> Result<(), BusError> {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", msg_id);
        // The publish ack: the server stored it (or already had it: a duplicate id).
        self.inner
            .js
            .publish_with_headers(subject, headers, payload.into())
            .await
            .map_err(unavailable)?
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// The stored event with id `event`, from whichever domain stream holds it.
    async fn find_event(&self, event: EventId) -> Result<Envelope, BusError> {
        let ns = &self.inner.ns;
        let prefix = format!("{}_EV_", ns.to_uppercase());
        let mut names = self.inner.js.stream_names();
        while let Some(name) = names.next().await {
            let name = name.map_err(unavailable)?;
            if !name.starts_with(&prefix) {
                continue;
            }
            let stream = self.inner.js.get_stream(&name).await.map_err(unavailable)?;
            let filter = format!("{ns}.ev.*.*.{event}");
            let info = stream.info_with_subjects(filter).await.map_err(unavailable)?;
            let subjects: Vec<String> =
                info.map(|r| r.map(|(s, _)| s)).filter_map(async |r| r.ok()).collect().await;
            if let Some(subject) = subjects.into_iter().next() {
                let msg =
                    stream.get_last_raw_message_by_subject(&subject).await.map_err(unavailable)?;
                return serde_json::from_slice(&msg.payload).map_err(unavailable);
            }
        }
        Err(BusError::NotFound(event))
    }
}

#[async_trait]
impl EventBus for NatsBus {
    async fn publish(&self, envelope: &Envelope) -> Result<(), BusError> {
        let (domain, name) = Self::domain_of(&envelope.event_type)?;
        let stream = format!("{}_EV_{}", self.inner.ns.to_uppercase(), domain.to_uppercase());
        let known = self.inner.streams.lock().unwrap_or_else(|p| p.into_inner()).contains(&stream);
        if !known {
            self.event_stream(domain).await?;
        }
        let payload = serde_json::to_vec(envelope).map_err(unavailable)?;
        let id = envelope.id.to_string();
        let subject = format!("{}.ev.{domain}.{name}.{id}", self.inner.ns);
        self.publish_raw(subject, &id, payload).await
    }

    async fn subscribe(&self, sub: Subscription) -> Result<(), BusError> {
        if !token_ok(&sub.subscriber) || sub.event_types.is_empty() {
            return Err(BusError::InvalidSubscription("needs a name and event types".into()));
        }
        if sub.policy.max_deliver == 0 || sub.policy.concurrency == 0 {
            return Err(BusError::InvalidSubscription(
                "max_deliver and concurrency must be at least 1".into(),
            ));
        }
        let ns = self.inner.ns.clone();
        // One limit on concurrent handlers for all of this subscriber's consumers.
        let permits = Arc::new(Semaphore::new(sub.policy.concurrency));
        let mut consumers = Vec::new();
        for t in &sub.event_types {
            let (domain, name) = Self::domain_of(t)?;
            let stream = self.event_stream(domain).await?;
            let durable = format!("{}__{domain}_{name}", sub.subscriber);
            consumers.push((stream, durable, format!("{ns}.ev.{domain}.{name}.*")));
        }
        let replay = self.stream("REPLAY", "replay").await?;
        consumers.push((
            replay,
            format!("{}__replay", sub.subscriber),
            format!("{ns}.replay.{}", sub.subscriber),
        ));
        for (stream, durable, filter) in consumers {
            let config = consumer::pull::Config {
                durable_name: Some(durable.clone()),
                filter_subject: filter,
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: sub.policy.ack_wait,
                // One more than the policy: the extra delivery only writes the dead letter,
                // so an event whose last try crashed the process is not silently dropped.
                max_deliver: i64::from(sub.policy.max_deliver) + 1,
                max_ack_pending: i64::try_from(sub.policy.concurrency * 2).unwrap_or(i64::MAX),
                ..Default::default()
            };
            let consumer =
                stream.get_or_create_consumer(&durable, config).await.map_err(unavailable)?;
            self.inner.consumers.lock().unwrap_or_else(|p| p.into_inner()).push(Durable {
                subscriber: sub.subscriber.clone(),
                stream: stream.clone(),
                name: durable.clone(),
                filter: consumer.cached_info().config.filter_subject.clone(),
            });
            let worker = Worker {
                bus: self.clone(),
                sub: sub.clone(),
                permits: permits.clone(),
                cancel: self.inner.cancel.clone(),
            };
            self.spawn(worker.run(consumer, durable));
        }
        tracing::info!(subscriber = %sub.subscriber, types = ?sub.event_types, "subscribed (NATS JetStream)");
        Ok(())
    }

    async fn dead_letters(
        &self,
        limit: Limit,
        after: Option<DeadLetterKey>,
    ) -> Result<Page<DeadLetter, DeadLetterKey>, BusError> {
        let stream = self.stream("DLQ", "dlq").await?;
        let subjects: Vec<String> = stream
            .info_with_subjects(format!("{}.dlq.>", self.inner.ns))
            .await
            .map_err(unavailable)?
            .filter_map(async |r| r.ok().map(|(s, _)| s))
            .collect()
            .await;
        let mut out = Vec::new();
        for subject in subjects {
            let Ok(msg) = stream.get_last_raw_message_by_subject(&subject).await else {
                continue;
            };
            let Ok(record) = serde_json::from_slice::<DeadRecord>(&msg.payload) else {
                continue;
            };
            let key = DeadLetterKey {
                dead_at_ms: record.dead_at,
                event_id: record.envelope.id,
                subscriber: record.subscriber.clone(),
            };
            if after.as_ref().is_some_and(|after| &key <= after) {
                continue;
            }
            let letter = DeadLetter {
                subscriber: record.subscriber,
                event_id: record.envelope.id,
                event_type: record.envelope.event_type,
                attempts: record.attempts,
                last_error: record.last_error,
                dead_at: kernel::ms_to_rfc3339(record.dead_at),
            };
            out.push((key, letter));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.truncate(limit.get() as usize + 1);
        Ok(dead_letter_page(out, limit))
    }

    async fn replay(&self, subscriber: &str, event: EventId) -> Result<(), BusError> {
        if !token_ok(subscriber) {
            return Err(BusError::NotFound(event));
        }
        let ns = &self.inner.ns;
        let dlq = self.stream("DLQ", "dlq").await?;
        let dead_subject = format!("{ns}.dlq.{subscriber}.{event}");
        let envelope = match dlq.get_last_raw_message_by_subject(&dead_subject).await {
            Ok(msg) => {
                serde_json::from_slice::<DeadRecord>(&msg.payload).map_err(unavailable)?.envelope
            }
            Err(_) => self.find_event(event).await?,
        };
        // Only subscribers with a durable consumer can take a replay.
        let replay = self.stream("REPLAY", "replay").await?;
        if replay.consumer_info(format!("{subscriber}__replay")).await.is_err() {
            return Err(BusError::NotFound(event));
        }
        let payload = serde_json::to_vec(&envelope).map_err(unavailable)?;
        // A fresh message id: a replay is a new delivery, not a duplicate publish.
        let msg_id = uuid::Uuid::now_v7().to_string();
        self.publish_raw(format!("{ns}.replay.{subscriber}"), &msg_id, payload).await?;
        dlq.purge().filter(dead_subject).await.map_err(unavailable)?;
        tracing::info!(subscriber, event_id = %event, "event replayed");
        Ok(())
    }

    fn messaging_system(&self) -> &'static str {
        "nats"
    }

    async fn backlogs(&self) -> Result<Vec<(String, Backlog)>, BusError> {
        let durables = self.inner.consumers.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut out: Vec<(String, Backlog)> = Vec::new();
        for d in durables {
            let info = d.stream.consumer_info(&d.name).await.map_err(unavailable)?;
            let messages = info.num_pending + info.num_ack_pending as u64;
            // The oldest unacknowledged message is the first of the consumer's subjects
            // after its ack floor.
            let oldest = if messages == 0 {
                None
            } else {
                d.stream
                    .get_first_raw_message_by_subject(&d.filter, info.ack_floor.stream_sequence + 1)
                    .await
                    .ok()
                    .map(|m| (m.time.unix_timestamp_nanos() / 1_000_000) as i64)
            };
            let b = Backlog::since(messages, oldest);
            match out.iter_mut().find(|(s, _)| *s == d.subscriber) {
                Some((_, total)) => {
                    total.messages += b.messages;
                    total.oldest_age = total.oldest_age.max(b.oldest_age);
                }
                None => out.push((d.subscriber, b)),
            }
        }
        Ok(out)
    }

    async fn shutdown(&self) {
        self.inner.cancel.cancel();
        let tasks =
            std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for mut task in tasks {
            if tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

/// Pulls one consumer's messages and runs the handler on each.
struct Worker {
    bus: NatsBus,
    sub: Subscription,
    permits: Arc<Semaphore>,
    cancel: CancellationToken,
}

impl Worker {
    async fn run(self, consumer: consumer::PullConsumer, name: String) {
        let mut running = JoinSet::new();
        let mut failures = 0u32;
        'outer: while !self.cancel.is_cancelled() {
            let mut messages = match consumer.messages().await {
                Ok(m) => {
                    failures = 0;
                    m
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(consumer = %name, error = %e, "cannot pull messages");
                    let wait = Duration::from_millis(100u64 << failures.min(6));
                    tokio::select! {
                        () = self.cancel.cancelled() => break,
                        () = tokio::time::sleep(wait) => continue,
                    }
                }
            };
            loop {
                let next = tokio::select! {
                    () = self.cancel.cancelled() => break 'outer,
                    next = messages.next() => next,
                };
                let msg = match next {
                    Some(Ok(msg)) => msg,
                    Some(Err(e)) => {
                        tracing::warn!(consumer = %name, error = %e, "message stream failed");
                        break;
                    }
                    None => break,
                };
                let Ok(permit) = self.permits.clone().acquire_owned().await else { break 'outer };
                let (bus, sub) = (self.bus.clone(), self.sub.clone());
                running.spawn(async move {
                    deliver(&bus, &sub, msg).await;
                    drop(permit);
                });
                while running.try_join_next().is_some() {}
            }
        }
        // Handlers in flight finish (and ack) before the bus reports it stopped.
        while running.join_next().await.is_some() {}
    }
}

async fn deliver(bus: &NatsBus, sub: &Subscription, msg: jetstream::Message) {
    let attempts = msg.info().map(|i| i.delivered).unwrap_or(1).max(1) as u32;
    let envelope = serde_json::from_slice::<Envelope>(&msg.payload);
    let outcome = match &envelope {
        Err(e) => Err(HandleError::Reject(format!("unreadable message: {e}"))),
        Ok(_) if attempts > sub.policy.max_deliver => {
            Err(HandleError::Reject("the last delivery did not finish".into()))
        }
        Ok(env) => {
            let span = crate::spans::process_span("nats", &sub.subscriber, env);
            match tokio::time::timeout(sub.policy.ack_wait, sub.handler.handle(env))
                .instrument(span)
                .await
            {
                Ok(r) => r,
                Err(_) => Err(HandleError::Retry("handler exceeded the ack wait".into())),
            }
        }
    };
    let result = match outcome {
        Ok(()) => msg.double_ack().await,
        Err(HandleError::Retry(why)) if attempts < sub.policy.max_deliver => {
            tracing::warn!(subscriber = %sub.subscriber, attempts, error = %why, "delivery failed; will retry");
            msg.ack_with(AckKind::Nak(Some(sub.policy.backoff_after(attempts)))).await
        }
        Err(HandleError::Retry(why) | HandleError::Reject(why)) => {
            let Ok(envelope) = envelope else {
                tracing::error!(subscriber = %sub.subscriber, error = %why, "unreadable message dropped");
                let _ = msg.ack_with(AckKind::Term).await;
                return;
            };
            let record = DeadRecord {
                subscriber: sub.subscriber.clone(),
                attempts,
                last_error: why.clone(),
                dead_at: kernel::now_ms(),
                envelope,
            };
            let id = record.envelope.id;
            let stored = match serde_json::to_vec(&record) {
                Ok(payload) => {
                    let subject = format!("{}.dlq.{}.{id}", bus.inner.ns, sub.subscriber);
                    bus.publish_raw(
                        subject,
                        &format!("{}:{id}:{attempts}", sub.subscriber),
                        payload,
                    )
                    .await
                }
                Err(e) => Err(unavailable(e)),
            };
            match stored {
                Ok(()) => {
                    tracing::error!(subscriber = %sub.subscriber, event_id = %id, attempts, error = %why, "event dead-lettered");
                    msg.ack_with(AckKind::Term).await
                }
                // Not recorded: let the broker deliver it again rather than lose it.
                Err(e) => {
                    tracing::warn!(error = %e, "cannot record a dead letter");
                    msg.ack_with(AckKind::Nak(Some(sub.policy.max_backoff))).await
                }
            }
        }
    };
    if let Err(e) = result {
        // Unacknowledged: redelivered after the ack wait; the inbox makes that harmless.
        tracing::warn!(subscriber = %sub.subscriber, error = %e, "cannot acknowledge");
    }
}
