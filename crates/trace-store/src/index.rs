//! The store's index of the traces it holds, in memory: what listing, filtering and
//! eviction read, so that storing spans costs one row per batch. Rebuilt from the stored
//! batches when the store opens.

use std::collections::{BTreeMap, HashMap, HashSet};

use telemetry::SpanRecord;

use crate::{TraceFilter, TraceSummary};

/// One trace the store holds.
#[derive(Debug)]
pub(crate) struct Entry {
    pub trace_id: String,
    pub start: i64,
    pub end: i64,
    pub error: bool,
    /// The span a listing shows: the root, or the earliest span while the root is missing.
    root: Option<Root>,
    /// Distinct, in the order first seen; what the `service` and `operation` filters read.
    services: Vec<String>,
    operations: Vec<String>,
    span_ids: HashSet<String>,
    /// The batches (`span_batches.seq`) holding its spans, oldest first: the first is the
    /// one that stored it first, so it grows with the trace's `seq`.
    pub batches: Vec<i64>,
}

#[derive(Debug)]
struct Root {
    /// A root span (no parent) wins over any child; then the earliest.
    rank: (bool, i64),
    name: String,
    service: String,
}

impl Entry {
    fn new(trace_id: &str) -> Entry {
        Entry {
            trace_id: trace_id.to_owned(),
            start: i64::MAX,
            end: i64::MIN,
            error: false,
            root: None,
            services: Vec::new(),
            operations: Vec::new(),
            span_ids: HashSet::new(),
            batches: Vec::new(),
        }
    }

    fn add(&mut self, span: &SpanRecord, batch: i64) {
        self.span_ids.insert(span.span_id.clone());
        self.start = self.start.min(span.start_unix_nano);
        self.end = self.end.max(span.end_unix_nano);
        self.error |= span.is_error();
        let rank = (span.parent_span_id.is_some(), span.start_unix_nano);
        if self.root.as_ref().is_none_or(|r| rank < r.rank) {
            self.root =
                Some(Root { rank, name: span.name.clone(), service: span.service_name.clone() });
        }
        for (list, value) in
            [(&mut self.services, &span.service_name), (&mut self.operations, &span.name)]
        {
            if !list.contains(value) {
                list.push(value.clone());
            }
        }
        if self.batches.last() != Some(&batch) {
            self.batches.push(batch);
        }
    }

    pub fn summary(&self, seq: i64) -> TraceSummary {
        let (root_name, root_service) =
            self.root.as_ref().map(|r| (r.name.clone(), r.service.clone())).unwrap_or_default();
        TraceSummary {
            trace_id: self.trace_id.clone(),
            root_name,
            root_service,
            start_unix_nano: self.start,
            duration_ms: (self.end - self.start) as f64 / 1e6,
            span_count: i64::try_from(self.span_ids.len()).unwrap_or(i64::MAX),
            error: self.error,
            seq,
        }
    }

    /// Whether it passes every filter but `attribute` (which needs its spans) and the page.
    pub fn matches(&self, seq: i64, f: &TraceFilter) -> bool {
        let nanos = |ms: f64| (ms * 1e6) as i64;
        let duration = self.end - self.start;
        f.service.as_ref().is_none_or(|s| self.services.contains(s))
            && f.operation.as_ref().is_none_or(|o| self.operations.contains(o))
            && f.min_duration_ms.is_none_or(|ms| duration >= nanos(ms))
            && f.max_duration_ms.is_none_or(|ms| duration <= nanos(ms))
            && f.error.is_none_or(|e| self.error == e)
            && f.started_from_unix_nano.is_none_or(|from| self.start >= from)
            && f.started_before_unix_nano.is_none_or(|before| self.start < before)
            && f.before.is_none_or(|before| seq < before)
    }
}

/// Every trace held, by `seq` (the order first stored: eviction and paging follow it).
#[derive(Debug, Default)]
pub(crate) struct Index {
    pub traces: BTreeMap<i64, Entry>,
    by_id: HashMap<String, i64>,
    next_seq: i64,
    pub next_batch: i64,
}

impl Index {
    /// The spans of `spans` not held yet (an exporter may send a span twice), in order.
    pub fn fresh<'a>(&self, spans: &'a [SpanRecord]) -> Vec<&'a SpanRecord> {
        let mut seen = HashSet::new();
        spans
            .iter()
            .filter(|s| {
                let held = self
                    .by_id
                    .get(&s.trace_id)
                    .and_then(|seq| self.traces.get(seq))
                    .is_some_and(|e| e.span_ids.contains(&s.span_id));
                !held && seen.insert((s.trace_id.as_str(), s.span_id.as_str()))
            })
            .collect()
    }

    /// Adds `spans`, stored in batch `batch`, then evicts the oldest traces beyond `max`.
    /// Returns the oldest batch still needed: every batch before it can go.
    pub fn add(&mut self, spans: &[&SpanRecord], batch: i64, max: usize) -> i64 {
        for span in spans {
            let seq = match self.by_id.get(&span.trace_id) {
                Some(&seq) => seq,
                None => {
                    self.next_seq += 1;
                    self.by_id.insert(span.trace_id.clone(), self.next_seq);
                    self.traces.insert(self.next_seq, Entry::new(&span.trace_id));
                    self.next_seq
                }
            };
            if let Some(entry) = self.traces.get_mut(&seq) {
                entry.add(span, batch);
            }
        }
        self.next_batch = self.next_batch.max(batch + 1);
        while self.traces.len() > max {
            if let Some((_, gone)) = self.traces.pop_first() {
                self.by_id.remove(&gone.trace_id);
            }
        }
        self.oldest_batch()
    }

    /// The first batch of the oldest trace held (traces are first stored in batch order,
    /// so no trace held needs an earlier one).
    pub fn oldest_batch(&self) -> i64 {
        self.traces
            .values()
            .next()
            .and_then(|e| e.batches.first().copied())
            .unwrap_or(self.next_batch)
    }

    pub fn get(&self, trace_id: &str) -> Option<&Entry> {
        self.by_id.get(trace_id).and_then(|seq| self.traces.get(seq))
    }
}
