//! Events between modules: the [`Envelope`] and [`Event`] trait, the [`EventBus`] contract,
//! the transactional [`Outbox`] with its relay, the [`inbox`], and the embedded bus.
//!
//! The delivery contract, in every implementation: a module writes its events to its own
//! outbox table in the transaction that changes its state; a relay publishes them and marks
//! them sent only after the bus accepted them; the bus stores each event id once and owes
//! every subscriber one delivery, retried with backoff and parked as a dead letter after
//! `max_deliver` failures; a consumer records the event id in its own inbox table in the
//! transaction of its effect. So delivery is at least once and every effect happens once.

pub mod batch;
mod contract;
mod dispatch;
mod embedded;
pub mod http;
pub mod inbox;
mod job;
mod nats;
mod outbox;
mod spans;

pub use contract::{
    Backlog, BusClient, BusError, DeadLetter, DeadLetterKey, DeliveryPolicy, EventBus, HandleError,
    Handler, Subscription,
};
pub use embedded::EmbeddedBus;
pub use job::{Job, spawn_job};
pub use kernel::{DecodeError, Envelope, Event, TraceContext};
pub use nats::NatsBus;
pub use outbox::{Outbox, Retention, drain, install, spawn_relay};
pub use spans::process_span;
