//! A finished span as the trace store keeps it and the trace API returns it: OTLP's `Span`
//! flattened to JSON-friendly values (ids in lowercase hex, times in Unix nanoseconds).

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::SpanData;
use serde::{Deserialize, Serialize};

/// At most this many attributes are kept per span (the rest are counted as dropped), as
/// the .NET Aspire dashboard's `MaxAttributeCount`.
pub const MAX_ATTRIBUTES: usize = 128;
/// An attribute value longer than this many bytes is cut (on a character boundary).
pub const MAX_ATTRIBUTE_LENGTH: usize = 4096;
/// At most this many events are kept per span.
pub const MAX_EVENTS: usize = 128;

/// One finished span.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanRecord {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// `None` for a root span.
    pub parent_span_id: Option<String>,
    pub name: String,
    /// `server`, `client`, `producer`, `consumer` or `internal` (OTLP's `SpanKind`).
    pub kind: String,
    /// The process or function instance that recorded it (`service.name`).
    pub service_name: String,
    pub start_unix_nano: i64,
    pub end_unix_nano: i64,
    /// `unset`, `ok` or `error`.
    pub status_code: String,
    pub status_message: String,
    pub attributes: Vec<Attribute>,
    pub events: Vec<SpanEvent>,
    pub links: Vec<SpanLink>,
}

/// A key and its value, rendered as JSON (a string, number, boolean or array).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    pub key: String,
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanEvent {
    pub name: String,
    pub time_unix_nano: i64,
    pub attributes: Vec<Attribute>,
}

/// A causal link to a span of this or another trace (a message's creation context, say).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanLink {
    pub trace_id: String,
    pub span_id: String,
    pub attributes: Vec<Attribute>,
}

impl SpanRecord {
    /// `service_name` is the resource's, unless the span names its own (a process that
    /// hosts several placements' code in one test process tells them apart so).
    pub fn from_span(span: &SpanData, service_name: &str) -> SpanRecord {
        let parent = span.parent_span_id;
        let own = attributes(&span.attributes);
        let service_name = own
            .iter()
            .find(|a| a.key == "service.name")
            .and_then(|a| a.value.as_str().map(str::to_owned))
            .unwrap_or_else(|| service_name.to_owned());
        let (status_code, status_message) = match &span.status {
            Status::Unset => ("unset", String::new()),
            Status::Ok => ("ok", String::new()),
            Status::Error { description } => ("error", description.to_string()),
        };
        SpanRecord {
            trace_id: span.span_context.trace_id().to_string(),
            span_id: span.span_context.span_id().to_string(),
            parent_span_id: (parent != opentelemetry::trace::SpanId::INVALID)
                .then(|| parent.to_string()),
            name: span.name.to_string(),
            kind: kind(&span.span_kind).to_owned(),
            service_name,
            start_unix_nano: unix_nanos(span.start_time),
            end_unix_nano: unix_nanos(span.end_time),
            status_code: status_code.to_owned(),
            status_message,
            attributes: own,
            events: span
                .events
                .iter()
                .take(MAX_EVENTS)
                .map(|e| SpanEvent {
                    name: e.name.to_string(),
                    time_unix_nano: unix_nanos(e.timestamp),
                    attributes: attributes(&e.attributes),
                })
                .collect(),
            links: span
                .links
                .iter()
                .map(|l| SpanLink {
                    trace_id: l.span_context.trace_id().to_string(),
                    span_id: l.span_context.span_id().to_string(),
                    attributes: attributes(&l.attributes),
                })
                .collect(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.status_code == "error"
    }

    /// The value of attribute `key`, if the span has it.
    pub fn attribute(&self, key: &str) -> Option<&serde_json::Value> {
        self.attributes.iter().find(|a| a.key == key).map(|a| &a.value)
    }
}

fn kind(kind: &SpanKind) -> &'static str {
    match kind {
        SpanKind::Server => "server",
        SpanKind::Client => "client",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
        SpanKind::Internal => "internal",
    }
}

/// Nanoseconds since the Unix epoch; a time before it (a broken clock) is 0.
fn unix_nanos(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn attributes(list: &[KeyValue]) -> Vec<Attribute> {
    list.iter()
        .take(MAX_ATTRIBUTES)
        .map(|kv| Attribute { key: kv.key.to_string(), value: json(&kv.value) })
        .collect()
}

fn json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Bool(b) => J::Bool(*b),
        Value::I64(i) => J::from(*i),
        Value::F64(f) => serde_json::Number::from_f64(*f).map(J::Number).unwrap_or(J::Null),
        Value::String(s) => J::String(cut(s.as_str())),
        Value::Array(a) => J::String(cut(&a.to_string())),
        other => J::String(cut(&other.to_string())),
    }
}

/// `s`, cut to [`MAX_ATTRIBUTE_LENGTH`] bytes on a character boundary.
pub(crate) fn cut(s: &str) -> String {
    if s.len() <= MAX_ATTRIBUTE_LENGTH {
        return s.to_owned();
    }
    let mut end = MAX_ATTRIBUTE_LENGTH;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}
