//! Typed dispatch for a consumer: one declaration gives both the list of event types a
//! module subscribes to and the enum its handler matches on, so the two cannot disagree and
//! the compiler checks that every subscribed event is handled.

/// Declares the events a consumer handles, as an enum with one variant per event type (each
/// named as its event struct, which must be in scope), with:
/// - `TYPES`: the event types, in declaration order, for the subscription;
/// - `decode(&Envelope)`: the event, decoded. A type not listed, or a version or payload
///   this code cannot read, is [`HandleError::Reject`](crate::HandleError): a dead letter.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// #[derive(Serialize, Deserialize)]
/// struct OrderPlaced { order: String }
/// impl bus::Event for OrderPlaced { const TYPE: &'static str = "orders.order_placed"; }
///
/// bus::subscribes! {
///     /// What this consumer handles.
///     enum Consumed { OrderPlaced }
/// }
/// assert_eq!(Consumed::TYPES, ["orders.order_placed"]);
/// ```
#[macro_export]
macro_rules! subscribes {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($event:ident),+ $(,)? }) => {
        $(#[$meta])*
        // The variants are the events' names, prefixes and all.
        #[allow(clippy::enum_variant_names)]
        $vis enum $name {
            $($event($event)),+
        }

        impl $name {
            /// The event types, in declaration order.
            $vis const TYPES: &'static [&'static str] = &[$(<$event as $crate::Event>::TYPE),+];

            /// The event in `envelope`, decoded; a type not listed, or a version or payload
            /// this code cannot read, is rejected (a dead letter).
            $vis fn decode(envelope: &$crate::Envelope) -> Result<Self, $crate::HandleError> {
                $(
                    if envelope.event_type == <$event as $crate::Event>::TYPE {
                        return Ok($name::$event(envelope.decode()?));
                    }
                )+
                Err($crate::HandleError::reject(format!(
                    "{} is not an event this consumer handles",
                    envelope.event_type
                )))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use crate::{Envelope, Event, HandleError, TraceContext};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Placed {
        n: u32,
    }
    impl Event for Placed {
        const TYPE: &'static str = "t.placed";
    }
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Cancelled {
        why: String,
    }
    impl Event for Cancelled {
        const TYPE: &'static str = "t.cancelled";
        const VERSION: u32 = 2;
    }
    #[derive(Serialize, Deserialize)]
    struct Other {}
    impl Event for Other {
        const TYPE: &'static str = "t.other";
    }

    crate::subscribes! {
        #[derive(Debug, PartialEq)]
        enum Consumed { Placed, Cancelled }
    }

    fn envelope<E: Event>(e: &E) -> Envelope {
        Envelope::new("t", e, TraceContext::default())
    }

    #[test]
    fn the_list_and_the_match_come_from_one_declaration() {
        assert_eq!(Consumed::TYPES, ["t.placed", "t.cancelled"]);
        let placed = Consumed::decode(&envelope(&Placed { n: 3 })).unwrap();
        assert_eq!(placed, Consumed::Placed(Placed { n: 3 }));
        let cancelled = Consumed::decode(&envelope(&Cancelled { why: "late".into() })).unwrap();
        assert_eq!(cancelled, Consumed::Cancelled(Cancelled { why: "late".into() }));

        let unknown = Consumed::decode(&envelope(&Other {}));
        assert!(matches!(unknown, Err(HandleError::Reject(m)) if m.contains("t.other")));
        let mut old = envelope(&Cancelled { why: "late".into() });
        old.version = 1;
        assert!(matches!(Consumed::decode(&old), Err(HandleError::Reject(_))), "unknown version");
        let mut garbled = envelope(&Placed { n: 3 });
        garbled.payload = serde_json::json!({"n": "three"});
        assert!(matches!(Consumed::decode(&garbled), Err(HandleError::Reject(_))));
    }
}
