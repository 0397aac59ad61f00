//! W3C trace context between the shop's own [`TraceParent`] (what a request context, an
//! event and an invocation carry) and OpenTelemetry's span context (what `tracing` spans
//! record), so that a span opened where work arrives continues the caller's trace.

use kernel::TraceParent;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Makes `parent` (a remote caller's span) the parent of `span`, so `span` continues its
/// trace. Call it before `span` is first entered.
pub fn set_parent(span: &tracing::Span, parent: &TraceParent) {
    let cx = opentelemetry::Context::new().with_remote_span_context(span_context(parent));
    // Fails only when no OpenTelemetry layer records spans: then there is nothing to join.
    let _ = span.set_parent(cx);
}

/// Links `span` to `cause` (a message's creation context, say): a causal relation that is
/// not parenthood, which OpenTelemetry's messaging conventions ask of a `process` span.
pub fn add_link(span: &tracing::Span, cause: &TraceParent) {
    span.add_link(span_context(cause));
}

fn span_context(parent: &TraceParent) -> SpanContext {
    let flags = if parent.sampled() { TraceFlags::SAMPLED } else { TraceFlags::default() };
    SpanContext::new(
        TraceId::from_bytes(parent.trace_id_value().to_be_bytes()),
        SpanId::from_bytes(parent.parent_id_value().to_be_bytes()),
        flags,
        true,
        TraceState::default(),
    )
}

/// The trace context that makes `span` the parent of the work it causes elsewhere; `None`
/// when no OpenTelemetry layer records it.
pub fn traceparent_of(span: &tracing::Span) -> Option<TraceParent> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if !sc.is_valid() {
        return None;
    }
    TraceParent::from_parts(
        u128::from_be_bytes(sc.trace_id().to_bytes()),
        u64::from_be_bytes(sc.span_id().to_bytes()),
        sc.is_sampled(),
    )
}

/// Renames `span`, e.g. once the route it serves is known (`GET /api/v1/orders/{id}`);
/// OpenTelemetry span names may change until the span ends.
pub fn set_name(span: &tracing::Span, name: String) {
    span.context().span().update_name(name);
}

/// [`traceparent_of`] the current span.
pub fn current() -> Option<TraceParent> {
    traceparent_of(&tracing::Span::current())
}

/// The tracer of this process's [`crate::layer`], for spans recorded after the fact.
pub(crate) static TRACER: std::sync::OnceLock<opentelemetry_sdk::trace::SdkTracer> =
    std::sync::OnceLock::new();

/// Records a span `name` that ran from `start` to `end` as a child of `parent`: work
/// measured elsewhere and reported afterwards (a function instance's init phase). Nothing
/// happens without a [`crate::layer`], or when `parent` is not recorded.
pub fn record_child(
    parent: &tracing::Span,
    name: &'static str,
    start: std::time::SystemTime,
    end: std::time::SystemTime,
    attributes: &[(&'static str, String)],
) {
    use opentelemetry::trace::{Span as _, Tracer as _};
    let Some(tracer) = TRACER.get() else { return };
    let cx = parent.context();
    if !cx.span().span_context().is_valid() {
        return;
    }
    let mut span = tracer
        .span_builder(name)
        .with_start_time(start)
        .with_attributes(
            attributes.iter().map(|(k, v)| opentelemetry::KeyValue::new(*k, v.clone())),
        )
        .start_with_context(tracer, &cx);
    span.end_with_timestamp(end);
}
