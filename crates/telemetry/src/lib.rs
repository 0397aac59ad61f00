//! OpenTelemetry for every process of the shop.
//!
//! - [`layer`] turns the process's `tracing` spans into OpenTelemetry spans, with the
//!   resource attributes `service.name`, `service.instance.id` and `microlith.topology`,
//!   sampled by a head-sampling ratio that follows the caller's decision (W3C trace
//!   context's sampled flag).
//! - [`set_parent`] and [`traceparent_of`] carry the W3C trace context across a hop: where
//!   work arrives (the public edge, an internal call, an event, an invocation) and where it
//!   leaves.
//! - [`StoreExporter`] hands finished spans, as [`SpanRecord`]s, to whoever [`subscribe`]d:
//!   the built-in trace store (the `trace-store` crate) in the gateway's process.
//!
//! It knows no module.

mod context;
mod export;
mod record;

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider,
};
use tracing_subscriber::registry::LookupSpan;

pub use context::{add_link, current, set_name, set_parent, traceparent_of};
pub use export::{SINK_CAPACITY, StoreExporter, subscribe};
pub use record::{
    Attribute, MAX_ATTRIBUTE_LENGTH, MAX_ATTRIBUTES, MAX_EVENTS, SpanEvent, SpanLink, SpanRecord,
};

/// How long a finished span may wait before it is exported: short, so a trace can be
/// looked up right after the request that made it.
pub const EXPORT_DELAY: Duration = Duration::from_millis(100);

/// Who records the spans of this process (OpenTelemetry resource attributes).
#[derive(Debug, Clone)]
pub struct ProcessIdentity {
    /// `service.name`: the service, function or `gateway`.
    pub service_name: String,
    /// `service.instance.id`: `cart-2`, say.
    pub instance_id: String,
    /// `microlith.topology`: the topology's name.
    pub topology: String,
}

/// The `tracing` layer that records this process's spans as OpenTelemetry spans, and the
/// provider behind it (call [`SdkTracerProvider::shutdown`] before the process exits, so
/// the last spans are exported). `sampling_ratio` is the share of new traces kept (1.0:
/// all); a trace that comes with a sampled flag keeps the caller's decision.
pub fn layer<S>(
    identity: &ProcessIdentity,
    sampling_ratio: f64,
) -> (
    tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
    SdkTracerProvider,
)
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    let resource = Resource::builder()
        .with_service_name(identity.service_name.clone())
        .with_attributes([
            KeyValue::new("service.instance.id", identity.instance_id.clone()),
            KeyValue::new("microlith.topology", identity.topology.clone()),
        ])
        .build();
    let batches = BatchSpanProcessor::builder(StoreExporter::new(&identity.service_name))
        .with_batch_config(BatchConfigBuilder::default().with_scheduled_delay(EXPORT_DELAY).build())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(batches)
        .with_resource(resource)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(sampling_ratio))))
        .build();
    let tracer = provider.tracer("microlith");
    (tracing_opentelemetry::layer().with_tracer(tracer), provider)
}
