/// A W3C trace context `traceparent` (`00-<trace id>-<parent id>-<flags>`): which trace a
/// piece of work belongs to and which span caused it. It travels with every contract call,
/// every event and every function invocation, so one checkout is one trace in any topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: u128,
    parent_id: u64,
    sampled: bool,
}

impl TraceParent {
    /// A new trace, for work that arrives without one.
    pub fn root() -> TraceParent {
        TraceParent { trace_id: nonzero_u128(), parent_id: nonzero_u64(), sampled: true }
    }

    /// Parses a `traceparent` header. Only version `00` is understood; all-zero ids are
    /// invalid by the specification. A bad header means "start a new trace", never an error.
    pub fn parse(s: &str) -> Option<TraceParent> {
        let mut parts = s.trim().split('-');
        let (version, trace, parent, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || version != "00" {
            return None;
        }
        let hex = |s: &str, len: usize| {
            (s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
                .then_some(())
        };
        hex(trace, 32)?;
        hex(parent, 16)?;
        hex(flags, 2)?;
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let parent_id = u64::from_str_radix(parent, 16).ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        (trace_id != 0 && parent_id != 0).then_some(TraceParent {
            trace_id,
            parent_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The context of work caused by this one: the same trace, a new parent span.
    pub fn child(&self) -> TraceParent {
        TraceParent { parent_id: nonzero_u64(), ..self.clone() }
    }

    /// The context with these parts; `None` for the all-zero ids the specification calls
    /// invalid.
    pub fn from_parts(trace_id: u128, parent_id: u64, sampled: bool) -> Option<TraceParent> {
        (trace_id != 0 && parent_id != 0).then_some(TraceParent { trace_id, parent_id, sampled })
    }

    /// The trace id as a number (its 16 bytes big-endian are the W3C `trace-id`).
    pub fn trace_id_value(&self) -> u128 {
        self.trace_id
    }

    /// The id of the span that caused this work (the W3C `parent-id`).
    pub fn parent_id_value(&self) -> u64 {
        self.parent_id
    }

    /// Whether the caller records this trace (the W3C `sampled` flag).
    pub fn sampled(&self) -> bool {
        self.sampled
    }

    /// The 32 hex digits that name the trace.
    pub fn trace_id(&self) -> String {
        format!("{:032x}", self.trace_id)
    }
}

impl std::fmt::Display for TraceParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.parent_id,
            u8::from(self.sampled)
        )
    }
}

fn nonzero_u128() -> u128 {
    uuid::Uuid::new_v4().as_u128() | 1
}

fn nonzero_u64() -> u64 {
    (uuid::Uuid::new_v4().as_u128() as u64) | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_child() {
        let s = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let tp = TraceParent::parse(s).unwrap();
        assert_eq!(tp.to_string(), s);
        assert_eq!(tp.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let child = tp.child();
        assert_eq!(child.trace_id(), tp.trace_id());
        assert_ne!(child.to_string(), s);
        assert!(TraceParent::parse(&TraceParent::root().to_string()).is_some());
    }

    #[test]
    fn bad_headers_are_refused() {
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-xyz-00f067aa0ba902b7-01",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad}");
        }
    }
}
