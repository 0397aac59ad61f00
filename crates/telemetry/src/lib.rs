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

mod config;
mod context;
mod export;
pub mod keep_errors;
pub mod otlp;
mod record;
mod uplink;

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use tracing_subscriber::registry::LookupSpan;

pub use config::{OTLP_TRACES_PATH, TelemetryConfig, exports_otlp, sampler, traces_url};
pub use context::{add_link, current, record_child, set_name, set_parent, traceparent_of};
pub use export::{SINK_CAPACITY, StoreExporter, subscribe};
pub use record::{
    Attribute, MAX_ATTRIBUTE_LENGTH, MAX_ATTRIBUTES, MAX_EVENTS, SpanEvent, SpanLink, SpanRecord,
};
pub use uplink::{Authorize, StoreUplink};

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
/// the last spans are exported). Spans go to the built-in store: to its subscribers in
/// this process, or through `uplink` when the store is in another; and, when `config` or
/// the standard variables name a collector, to it over OTLP/HTTP.
///
/// # Errors
/// A bad sampler setting, or an OTLP endpoint that is not a URL.
pub fn layer<S>(
    identity: &ProcessIdentity,
    config: &TelemetryConfig,
    uplink: Option<StoreUplink>,
) -> Result<
    (
        tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
        SdkTracerProvider,
    ),
    String,
>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    // `OTEL_SERVICE_NAME` names the service, as the specification says it does.
    let service_name = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| identity.service_name.clone());
    let resource = Resource::builder()
        .with_service_name(service_name.clone())
        .with_attributes([
            KeyValue::new("service.instance.id", identity.instance_id.clone()),
            KeyValue::new("microlith.topology", identity.topology.clone()),
        ])
        .build();
    let batch = || BatchConfigBuilder::default().with_scheduled_delay(EXPORT_DELAY).build();
    let mut processors: Vec<Box<dyn opentelemetry_sdk::trace::SpanProcessor>> = vec![Box::new(
        BatchSpanProcessor::builder(StoreExporter::new(&service_name))
            .with_batch_config(batch())
            .build(),
    )];
    if exports_otlp(config) {
        use opentelemetry_otlp::WithExportConfig as _;
        let mut otlp = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_timeout(OTLP_TIMEOUT);
        if let Some(base) = &config.otlp_endpoint {
            otlp = otlp.with_endpoint(traces_url(base));
        }
        let otlp = otlp.build().map_err(|e| format!("cannot export spans over OTLP: {e}"))?;
        processors
            .push(Box::new(BatchSpanProcessor::builder(otlp).with_batch_config(batch()).build()));
    }
    if let Some(uplink) = uplink {
        use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
        let url = uplink.url.clone();
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_timeout(OTLP_TIMEOUT)
            .with_endpoint(url)
            .with_http_client(uplink::SigningClient::new(uplink)?)
            .build()
            .map_err(|e| format!("cannot send spans to the trace store: {e}"))?;
        processors.push(Box::new(
            BatchSpanProcessor::builder(exporter).with_batch_config(batch()).build(),
        ));
    }
    // What the head sampler drops is recorded all the same and exported after all if its
    // trace has an error here (see `keep_errors`).
    // `always_off` alone records nothing at all: tracing off, errors included.
    let head = sampler(config.sample_ratio)?;
    let builder = SdkTracerProvider::builder()
        .with_span_processor(keep_errors::KeepErrors::new(processors))
        .with_resource(resource);
    let provider = match head {
        opentelemetry_sdk::trace::Sampler::AlwaysOff => builder.with_sampler(head),
        head => builder.with_sampler(keep_errors::RecordDropped(head)),
    }
    .build();
    let tracer = provider.tracer("microlith");
    // The first layer's (a test process may build several): for spans recorded afterwards.
    let _ = context::TRACER.set(tracer.clone());
    // Source locations, thread ids, the `tracing` target and busy/idle times would add eight
    // attributes to every span: a third of what a span costs to keep, for little a trace
    // reader needs (a span's name and service say where it ran).
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false);
    Ok((layer, provider))
}

/// How long one OTLP export may take before it is given up.
pub const OTLP_TIMEOUT: Duration = Duration::from_secs(5);
