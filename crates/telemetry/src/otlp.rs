//! [`SpanRecord`]s to and from OTLP's trace messages (`opentelemetry-proto`), in the
//! protobuf and the JSON encodings of the OTLP specification ("OTLP/HTTP": binary
//! protobuf, or JSON with hex ids and camelCase names).
//!
//! What comes in is checked span by span: a span with a malformed id is rejected (and
//! counted, as OTLP's `partial_success.rejected_spans`), and what is kept is capped as the
//! process's own spans are ([`MAX_ATTRIBUTES`], [`MAX_ATTRIBUTE_LENGTH`], [`MAX_EVENTS`]).

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};
use prost::Message as _;

use crate::record::cut;
use crate::{Attribute, MAX_ATTRIBUTES, MAX_EVENTS, SpanEvent, SpanLink, SpanRecord};

/// At most this many links are kept per span.
pub const MAX_LINKS: usize = 128;
/// How deep an array or map attribute value is kept; deeper values become text.
const MAX_VALUE_DEPTH: usize = 4;
/// The instrumentation scope of exported spans.
const SCOPE: &str = "microlith";

/// The spans of an OTLP export request, and how many of its spans were rejected.
#[derive(Debug, Default, PartialEq)]
pub struct Received {
    pub spans: Vec<SpanRecord>,
    /// Spans left out for a malformed id (OTLP's `rejected_spans`).
    pub rejected: usize,
}

/// Decodes an OTLP/HTTP protobuf body (`application/x-protobuf`).
///
/// # Errors
/// The body is not an `ExportTraceServiceRequest`.
pub fn from_protobuf(body: &[u8]) -> Result<Received, String> {
    let request = ExportTraceServiceRequest::decode(body)
        .map_err(|e| format!("not an OTLP ExportTraceServiceRequest: {e}"))?;
    Ok(from_request(request))
}

/// Decodes an OTLP JSON body (`application/json`; an OTLP JSON file holds the same).
///
/// # Errors
/// The body is not an `ExportTraceServiceRequest` in OTLP's JSON encoding.
pub fn from_json(body: &[u8]) -> Result<Received, String> {
    let request: ExportTraceServiceRequest = serde_json::from_slice(body)
        .map_err(|e| format!("not OTLP JSON (an ExportTraceServiceRequest): {e}"))?;
    Ok(from_request(request))
}

/// `spans` as OTLP JSON: an `ExportTraceServiceRequest` with one resource per
/// `service.name`, which [`from_json`] (and any OTLP/HTTP JSON receiver) reads back.
pub fn to_json(spans: &[SpanRecord]) -> Vec<u8> {
    // Serializing prost messages with plain values cannot fail.
    serde_json::to_vec(&to_request(spans)).unwrap_or_default()
}

/// `spans` as an OTLP/HTTP protobuf body, which [`from_protobuf`] reads back: one
/// resource per `service.name`, as [`to_json`].
pub fn to_protobuf<'a>(spans: impl IntoIterator<Item = &'a SpanRecord>) -> Vec<u8> {
    to_request(spans).encode_to_vec()
}

/// The body of a successful OTLP/HTTP export's answer, in protobuf: empty, or the count
/// of rejected spans.
pub fn response_protobuf(rejected: usize, why: &str) -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTracePartialSuccess, ExportTraceServiceResponse,
    };
    let partial_success = (rejected > 0).then(|| ExportTracePartialSuccess {
        rejected_spans: i64::try_from(rejected).unwrap_or(i64::MAX),
        error_message: why.to_owned(),
    });
    ExportTraceServiceResponse { partial_success }.encode_to_vec()
}

fn from_request(request: ExportTraceServiceRequest) -> Received {
    let mut received = Received::default();
    for resource_spans in request.resource_spans {
        let resource = resource_spans.resource.unwrap_or_default();
        let service = resource
            .attributes
            .iter()
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| match &v.value {
                Some(any_value::Value::StringValue(s)) => Some(cut(s)),
                _ => None,
            })
            .unwrap_or_else(|| "unknown_service".to_owned());
        for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
            match record(span, &service) {
                Some(r) => received.spans.push(r),
                None => received.rejected += 1,
            }
        }
    }
    received
}

/// A span as the store keeps it; `None` when an id is malformed (W3C Trace Context: a
/// trace id is 16 bytes, a span id 8, and neither is all zeros).
fn record(span: Span, service: &str) -> Option<SpanRecord> {
    let trace_id = id_hex(&span.trace_id, 16)?;
    let span_id = id_hex(&span.span_id, 8)?;
    let parent_span_id = match span.parent_span_id.as_slice() {
        [] => None,
        p => Some(id_hex(p, 8)?),
    };
    let own = attributes(span.attributes);
    let service_name = own
        .iter()
        .find(|a| a.key == "service.name")
        .and_then(|a| a.value.as_str().map(str::to_owned))
        .unwrap_or_else(|| service.to_owned());
    let status = span.status.unwrap_or_default();
    let status_code = match status::StatusCode::try_from(status.code) {
        Ok(status::StatusCode::Ok) => "ok",
        Ok(status::StatusCode::Error) => "error",
        _ => "unset",
    };
    let mut links = Vec::new();
    for l in span.links.into_iter().take(MAX_LINKS) {
        links.push(SpanLink {
            trace_id: id_hex(&l.trace_id, 16)?,
            span_id: id_hex(&l.span_id, 8)?,
            attributes: attributes(l.attributes),
        });
    }
    Some(SpanRecord {
        trace_id,
        span_id,
        parent_span_id,
        name: cut(&span.name),
        kind: kind_name(span.kind).to_owned(),
        service_name,
        start_unix_nano: nanos(span.start_time_unix_nano),
        end_unix_nano: nanos(span.end_time_unix_nano.max(span.start_time_unix_nano)),
        status_code: status_code.to_owned(),
        status_message: cut(&status.message),
        attributes: own,
        events: span
            .events
            .into_iter()
            .take(MAX_EVENTS)
            .map(|e| SpanEvent {
                name: cut(&e.name),
                time_unix_nano: nanos(e.time_unix_nano),
                attributes: attributes(e.attributes),
            })
            .collect(),
        links,
    })
}

fn id_hex(bytes: &[u8], len: usize) -> Option<String> {
    (bytes.len() == len && bytes.iter().any(|b| *b != 0))
        .then(|| bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn nanos(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn kind_name(kind: i32) -> &'static str {
    match span::SpanKind::try_from(kind) {
        Ok(span::SpanKind::Server) => "server",
        Ok(span::SpanKind::Client) => "client",
        Ok(span::SpanKind::Producer) => "producer",
        Ok(span::SpanKind::Consumer) => "consumer",
        _ => "internal",
    }
}

fn kind_number(kind: &str) -> i32 {
    match kind {
        "server" => span::SpanKind::Server,
        "client" => span::SpanKind::Client,
        "producer" => span::SpanKind::Producer,
        "consumer" => span::SpanKind::Consumer,
        _ => span::SpanKind::Internal,
    }
    .into()
}

fn attributes(list: Vec<KeyValue>) -> Vec<Attribute> {
    list.into_iter()
        .take(MAX_ATTRIBUTES)
        .map(|kv| Attribute {
            key: cut(&kv.key),
            value: kv.value.map(|v| json(v, 0)).unwrap_or(serde_json::Value::Null),
        })
        .collect()
}

fn json(value: AnyValue, depth: usize) -> serde_json::Value {
    use serde_json::Value as J;
    let Some(value) = value.value else { return J::Null };
    match value {
        any_value::Value::StringValue(s) => J::String(cut(&s)),
        any_value::Value::BoolValue(b) => J::Bool(b),
        any_value::Value::IntValue(i) => J::from(i),
        any_value::Value::DoubleValue(f) => {
            serde_json::Number::from_f64(f).map(J::Number).unwrap_or(J::Null)
        }
        any_value::Value::BytesValue(b) => {
            J::String(cut(&b.iter().map(|b| format!("{b:02x}")).collect::<String>()))
        }
        any_value::Value::ArrayValue(a) if depth < MAX_VALUE_DEPTH => J::Array(
            a.values.into_iter().take(MAX_ATTRIBUTES).map(|v| json(v, depth + 1)).collect(),
        ),
        any_value::Value::KvlistValue(kv) if depth < MAX_VALUE_DEPTH => J::Object(
            kv.values
                .into_iter()
                .take(MAX_ATTRIBUTES)
                .map(|kv| (cut(&kv.key), kv.value.map(|v| json(v, depth + 1)).unwrap_or(J::Null)))
                .collect(),
        ),
        _ => J::String("…".to_owned()),
    }
}

fn any_value(value: &serde_json::Value) -> Option<AnyValue> {
    use serde_json::Value as J;
    let value = match value {
        J::Null => return None,
        J::Bool(b) => any_value::Value::BoolValue(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => any_value::Value::IntValue(i),
            None => any_value::Value::DoubleValue(n.as_f64().unwrap_or_default()),
        },
        J::String(s) => any_value::Value::StringValue(s.clone()),
        J::Array(a) => any_value::Value::ArrayValue(ArrayValue {
            values: a.iter().filter_map(any_value).collect(),
        }),
        J::Object(o) => any_value::Value::KvlistValue(KeyValueList {
            values: o.iter().map(|(k, v)| key_value(k, v)).collect(),
        }),
    };
    Some(AnyValue { value: Some(value) })
}

fn key_value(key: &str, value: &serde_json::Value) -> KeyValue {
    KeyValue { key: key.to_owned(), value: any_value(value), ..KeyValue::default() }
}

fn key_values(list: &[Attribute]) -> Vec<KeyValue> {
    list.iter().map(|a| key_value(&a.key, &a.value)).collect()
}

fn id_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .filter_map(|i| hex.get(2 * i..2 * i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn to_request<'a>(spans: impl IntoIterator<Item = &'a SpanRecord>) -> ExportTraceServiceRequest {
    let mut by_service: BTreeMap<&str, Vec<Span>> = BTreeMap::new();
    for s in spans {
        let code = match s.status_code.as_str() {
            "ok" => status::StatusCode::Ok,
            "error" => status::StatusCode::Error,
            _ => status::StatusCode::Unset,
        };
        by_service.entry(&s.service_name).or_default().push(Span {
            trace_id: id_bytes(&s.trace_id),
            span_id: id_bytes(&s.span_id),
            parent_span_id: s.parent_span_id.as_deref().map(id_bytes).unwrap_or_default(),
            name: s.name.clone(),
            kind: kind_number(&s.kind),
            start_time_unix_nano: unsigned(s.start_unix_nano),
            end_time_unix_nano: unsigned(s.end_unix_nano),
            attributes: key_values(&s.attributes),
            events: s
                .events
                .iter()
                .map(|e| span::Event {
                    time_unix_nano: unsigned(e.time_unix_nano),
                    name: e.name.clone(),
                    attributes: key_values(&e.attributes),
                    dropped_attributes_count: 0,
                })
                .collect(),
            links: s
                .links
                .iter()
                .map(|l| span::Link {
                    trace_id: id_bytes(&l.trace_id),
                    span_id: id_bytes(&l.span_id),
                    attributes: key_values(&l.attributes),
                    ..span::Link::default()
                })
                .collect(),
            status: Some(Status { message: s.status_message.clone(), code: code.into() }),
            ..Span::default()
        });
    }
    ExportTraceServiceRequest {
        resource_spans: by_service
            .into_iter()
            .map(|(service, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![key_value(
                        "service.name",
                        &serde_json::Value::String(service.to_owned()),
                    )],
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: SCOPE.to_owned(),
                        ..InstrumentationScope::default()
                    }),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MAX_ATTRIBUTE_LENGTH;

    fn span(trace: &str, id: &str, parent: Option<&str>) -> SpanRecord {
        SpanRecord {
            trace_id: trace.into(),
            span_id: id.into(),
            parent_span_id: parent.map(str::to_owned),
            name: "POST /api/v1/orders".into(),
            kind: "server".into(),
            service_name: "gateway".into(),
            start_unix_nano: 1_700_000_000_000_000_000,
            end_unix_nano: 1_700_000_000_005_000_000,
            status_code: "error".into(),
            status_message: "boom".into(),
            attributes: vec![
                Attribute { key: "http.response.status_code".into(), value: 500.into() },
                Attribute { key: "ratio".into(), value: 0.5.into() },
                Attribute { key: "ok".into(), value: true.into() },
                Attribute { key: "tags".into(), value: serde_json::json!(["a", 1]) },
            ],
            events: vec![SpanEvent {
                name: "retry".into(),
                time_unix_nano: 1_700_000_000_001_000_000,
                attributes: vec![],
            }],
            links: vec![SpanLink {
                trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
                span_id: "b7ad6b7169203331".into(),
                attributes: vec![],
            }],
        }
    }

    #[test]
    fn spans_survive_otlp_json_and_protobuf() {
        let spans = vec![
            span("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", None),
            span("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b8", Some("00f067aa0ba902b7")),
        ];
        let json = to_json(&spans);
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(text.contains("\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\""), "{text}");
        assert!(text.contains("\"startTimeUnixNano\":\"1700000000000000000\""), "{text}");
        assert_eq!(from_json(&json).unwrap(), Received { spans: spans.clone(), rejected: 0 });
        let proto = to_request(&spans).encode_to_vec();
        assert_eq!(from_protobuf(&proto).unwrap(), Received { spans, rejected: 0 });
    }

    #[test]
    fn malformed_ids_are_rejected_span_by_span() {
        let good = span("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", None);
        let zero = span("00000000000000000000000000000000", "00f067aa0ba902b7", None);
        let short = span("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa", None);
        let received = from_json(&to_json(&[good.clone(), zero, short])).unwrap();
        assert_eq!(received, Received { spans: vec![good], rejected: 2 });
        assert!(from_json(b"{\"resourceSpans\": 7}").is_err());
        assert!(from_json(b"not json").is_err());
        assert!(from_protobuf(b"\xff\xff\xff").is_err());
    }

    #[test]
    fn what_comes_in_is_capped() {
        let mut s = span("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", None);
        s.name = "x".repeat(MAX_ATTRIBUTE_LENGTH * 2);
        s.attributes = (0..MAX_ATTRIBUTES * 2)
            .map(|i| Attribute { key: format!("k{i}"), value: "é".repeat(3000).into() })
            .collect();
        let mut deep = serde_json::json!("leaf");
        for _ in 0..10 {
            deep = serde_json::json!([deep]);
        }
        s.attributes[0].value = deep;
        let kept = from_json(&to_json(&[s])).unwrap().spans.remove(0);
        assert_eq!(kept.name.len(), MAX_ATTRIBUTE_LENGTH);
        assert_eq!(kept.attributes.len(), MAX_ATTRIBUTES);
        assert!(kept.attributes[1].value.as_str().unwrap().len() <= MAX_ATTRIBUTE_LENGTH);
        assert!(!kept.attributes[0].value.to_string().contains("leaf"), "depth is capped");
    }
}
