//! Events between modules, as data: the [`Event`] trait each contract implements on the
//! events it publishes, and the [`Envelope`] they travel in. Here, below the bus, so that a
//! contract crate declares its events without compiling a broker client; the bus moves
//! envelopes and knows no event type.

use crate::{EventId, RequestContext, TraceParent};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A domain event: a fact a module publishes for others. The type lives in the publishing
/// module's `-api` crate, because its JSON is a wire format other modules depend on.
pub trait Event: Serialize + DeserializeOwned + Send + Sync {
    /// `<module>.<fact>`, e.g. `orders.order_placed`.
    const TYPE: &'static str;
    /// Bumped on an incompatible payload change; a consumer refuses versions it does not know.
    const VERSION: u32 = 1;
}

/// W3C trace context plus the request id, so one purchase can be followed across every
/// event it causes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TraceContext {
    /// `00-<trace id>-<parent id>-<flags>`.
    pub traceparent: Option<String>,
    pub request_id: Option<String>,
}

impl TraceContext {
    /// The context of work begun by a request: the request's trace, a new parent span.
    pub fn from_request(ctx: &RequestContext) -> TraceContext {
        TraceContext {
            traceparent: Some(ctx.trace.child().to_string()),
            request_id: Some(ctx.request_id.as_str().to_owned()),
        }
    }

    /// The context of an event caused by the one carrying `self`: same trace, new parent.
    pub fn child(&self) -> TraceContext {
        let traceparent = self.parsed().map(|t| t.child().to_string());
        TraceContext { traceparent, request_id: self.request_id.clone() }
    }

    pub fn trace_id(&self) -> Option<String> {
        self.parsed().map(|t| t.trace_id())
    }

    fn parsed(&self) -> Option<TraceParent> {
        self.traceparent.as_deref().and_then(TraceParent::parse)
    }
}

/// What travels on the bus: one event with its metadata. The payload stays JSON until a
/// consumer decodes it into the type it knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// UUID v7; the deduplication key everywhere (outbox, broker, inbox).
    pub id: EventId,
    #[serde(rename = "type")]
    pub event_type: String,
    pub version: u32,
    /// The module that published it.
    pub source: String,
    /// Epoch milliseconds of the state change.
    pub occurred_at: i64,
    pub trace: TraceContext,
    pub payload: serde_json::Value,
}

/// Why an envelope could not be read as the event a consumer expected.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("expected event {expected} v{version}, got {got} v{got_version}")]
    WrongType { expected: &'static str, version: u32, got: String, got_version: u32 },
    #[error("payload of {event_type} does not parse: {source}")]
    Payload { event_type: String, source: serde_json::Error },
}

impl Envelope {
    pub fn new<E: Event>(source: &str, event: &E, trace: TraceContext) -> Envelope {
        Envelope {
            id: EventId::new(),
            event_type: E::TYPE.to_owned(),
            version: E::VERSION,
            source: source.to_owned(),
            occurred_at: crate::now_ms(),
            trace,
            // Serializing a plain data struct into a `Value` cannot fail (no maps with
            // non-string keys, no custom serializers) ; `Null` would be caught by decode.
            payload: serde_json::to_value(event).unwrap_or(serde_json::Value::Null),
        }
    }

    pub fn is<E: Event>(&self) -> bool {
        self.event_type == E::TYPE
    }

    pub fn decode<E: Event>(&self) -> Result<E, DecodeError> {
        if self.event_type != E::TYPE || self.version != E::VERSION {
            return Err(DecodeError::WrongType {
                expected: E::TYPE,
                version: E::VERSION,
                got: self.event_type.clone(),
                got_version: self.version,
            });
        }
        serde_json::from_value(self.payload.clone())
            .map_err(|source| DecodeError::Payload { event_type: self.event_type.clone(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Pinged {
        n: u32,
    }
    impl Event for Pinged {
        const TYPE: &'static str = "test.pinged";
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Other {}
    impl Event for Other {
        const TYPE: &'static str = "test.other";
    }

    #[test]
    fn round_trips_and_refuses_other_types() {
        let ctx = RequestContext::anonymous();
        let env = Envelope::new("test", &Pinged { n: 7 }, TraceContext::from_request(&ctx));
        let json = serde_json::to_string(&env).unwrap();
        let back: Envelope = serde_json::from_str(&json).unwrap();
        assert_eq!(back, env);
        assert!(back.is::<Pinged>());
        assert_eq!(back.decode::<Pinged>().unwrap(), Pinged { n: 7 });
        assert!(matches!(back.decode::<Other>(), Err(DecodeError::WrongType { .. })));
        let mut newer = back.clone();
        newer.version = 2;
        assert!(newer.decode::<Pinged>().is_err());
    }

    #[test]
    fn children_keep_the_trace_id() {
        let ctx = RequestContext::anonymous();
        let root = TraceContext::from_request(&ctx);
        let child = root.child();
        assert_eq!(root.trace_id().map(|t| t.len()), Some(32));
        assert_eq!(child.trace_id(), root.trace_id());
        assert_ne!(child.traceparent, root.traceparent);
        assert_eq!(child.request_id.as_deref(), Some(ctx.request_id.as_str()));
    }
}
