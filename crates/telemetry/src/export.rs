//! The exporter that feeds the built-in trace store: finished spans become
//! [`SpanRecord`]s and go to every store of this process that asked for them
//! ([`subscribe`]). It never blocks the code that ended a span: a store that lags behind
//! loses spans (counted in the log), never slows a request.

use std::sync::Mutex;

use opentelemetry::Key;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tokio::sync::mpsc;

use crate::SpanRecord;

/// How many exported batches (up to 512 spans each) may wait for a store's writer before
/// new ones are dropped: a few seconds of peak load, so a store that falls behind costs
/// spans, not hundreds of megabytes.
pub const SINK_CAPACITY: usize = 256;

/// The stores of this process that receive its spans; usually one (the gateway's), one
/// per shop when a test process runs several.
static SINKS: Mutex<Vec<mpsc::Sender<Vec<SpanRecord>>>> = Mutex::new(Vec::new());

/// Receives every span this process finishes from now on, until the receiver is dropped.
pub fn subscribe() -> mpsc::Receiver<Vec<SpanRecord>> {
    let (tx, rx) = mpsc::channel(SINK_CAPACITY);
    SINKS.lock().unwrap_or_else(|p| p.into_inner()).push(tx);
    rx
}

/// Spans to the subscribed stores.
#[derive(Debug)]
pub struct StoreExporter {
    service_name: String,
}

impl StoreExporter {
    pub fn new(service_name: &str) -> StoreExporter {
        StoreExporter { service_name: service_name.to_owned() }
    }
}

impl SpanExporter for StoreExporter {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let mut sinks = SINKS.lock().unwrap_or_else(|p| p.into_inner());
        sinks.retain(|tx| !tx.is_closed());
        // A process without a store (a service, a function instance) converts nothing.
        if sinks.is_empty() {
            return std::future::ready(Ok(()));
        }
        let records: Vec<SpanRecord> =
            batch.iter().map(|s| SpanRecord::from_span(s, &self.service_name)).collect();
        // Every store but the last gets a copy; the last (usually the only one) the records.
        if let Some((last, others)) = sinks.split_last() {
            for tx in others {
                send(tx, records.clone());
            }
            send(last, records);
        }
        std::future::ready(Ok(()))
    }

    fn set_resource(&mut self, resource: &Resource) {
        if let Some(name) = resource.get(&Key::from_static_str("service.name")) {
            self.service_name = name.to_string();
        }
    }
}

/// Hands `records` to a store's writer, or drops them (saying so) when it lags behind.
fn send(tx: &mpsc::Sender<Vec<SpanRecord>>, records: Vec<SpanRecord>) {
    let count = records.len();
    if tx.try_send(records).is_err() {
        // Not `tracing::warn!`: a log event here would be a span event of nothing.
        eprintln!("telemetry: the trace store lags behind; {count} span(s) dropped");
    }
}
