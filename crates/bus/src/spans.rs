//! The spans of messaging, as OpenTelemetry's messaging conventions name them: `publish`
//! (in the outbox, whose context travels with the message) and `process` (one delivery).

use crate::Envelope;

/// The `process` span of one delivery (OpenTelemetry messaging conventions, span name
/// `process <destination>`): a consumer span that links to the message's creation context
/// and, as it handles that one message, is also its child. `system` is
/// `messaging.system` (`nats`, or `microlith` for the embedded broker).
pub fn process_span(system: &'static str, subscriber: &str, env: &Envelope) -> tracing::Span {
    let span = tracing::info_span!(
        "bus.deliver",
        otel.name = %format!("process {}", env.event_type),
        otel.kind = "consumer",
        messaging.system = system,
        messaging.operation.name = "process",
        messaging.destination.name = %env.event_type,
        messaging.message.id = %env.id,
        messaging.consumer.group.name = subscriber,
        subscriber,
        event_type = %env.event_type,
        event_id = %env.id,
        request_id = env.trace.request_id.as_deref().unwrap_or(""),
        trace_id = %env.trace.trace_id().unwrap_or_default(),
    );
    if let Some(created) = env.trace.traceparent.as_deref().and_then(kernel::TraceParent::parse) {
        telemetry::set_parent(&span, &created);
        telemetry::add_link(&span, &created);
    }
    span
}
