//! Head sampling that still keeps errors. The head sampler decides at a trace's start,
//! before anyone knows whether it will fail; so what it would drop is recorded anyway
//! ([`RecordDropped`]), held back for a while ([`KeepErrors`]), and exported after all if a
//! span of the trace ends with an error in this process; otherwise it is let go.
//!
//! Each process decides for its own spans: an error seen by one process keeps that
//! process's part of the trace (and the gateway's, when the error reaches the client as a
//! 5xx), not the spans other processes let go.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use opentelemetry::trace::{Link, SpanContext, SpanKind, Status, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    SamplingDecision, SamplingResult, ShouldSample, Span, SpanData, SpanProcessor,
};

/// How long the spans of a trace the sampler dropped wait for an error of that trace.
pub const HOLD: Duration = Duration::from_secs(30);
/// Traces held back at once; beyond it a new dropped trace is let go at once (memory
/// stays bounded under load), though a later error of it still keeps the spans from there.
pub const MAX_HELD_TRACES: usize = 4096;
/// Spans held back per trace.
pub const MAX_HELD_SPANS: usize = 256;
/// Spans held back in all, whatever the traces: a few tens of megabytes at most, even when
/// every client sends an unsampled `traceparent`.
pub const MAX_HELD_SPANS_TOTAL: usize = 65_536;

/// `inner`'s decisions, except that what it drops is recorded (not sampled), so
/// [`KeepErrors`] sees it end.
#[derive(Debug, Clone)]
pub(crate) struct RecordDropped<S>(pub(crate) S);

impl<S: ShouldSample + Clone + 'static> ShouldSample for RecordDropped<S> {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let mut result =
            self.0.should_sample(parent_context, trace_id, name, span_kind, attributes, links);
        if result.decision == SamplingDecision::Drop {
            result.decision = SamplingDecision::RecordOnly;
        }
        result
    }
}

/// Passes sampled spans to `inner` at once; holds the others by trace for [`HOLD`], and
/// passes them (marked sampled) when a span of their trace ends with an error.
#[derive(Debug)]
pub(crate) struct KeepErrors {
    inner: Vec<Box<dyn SpanProcessor>>,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    traces: HashMap<TraceId, Trace>,
    /// Trace ids in the order they were first held, for expiry.
    order: VecDeque<(Instant, TraceId)>,
    /// Spans held in all traces.
    spans: usize,
}

#[derive(Debug, Default)]
struct Trace {
    spans: Vec<SpanData>,
    /// An error was seen: every span of it passes from now on.
    kept: bool,
}

impl KeepErrors {
    pub(crate) fn new(inner: Vec<Box<dyn SpanProcessor>>) -> KeepErrors {
        KeepErrors { inner, held: Mutex::default() }
    }

    fn pass(&self, span: SpanData) {
        if let [rest @ .., last] = self.inner.as_slice() {
            for p in rest {
                p.on_end(span.clone());
            }
            last.on_end(span);
        }
    }
}

/// `span` as sampled: the exporters pass only those.
fn sampled(mut span: SpanData) -> SpanData {
    let c = &span.span_context;
    span.span_context = SpanContext::new(
        c.trace_id(),
        c.span_id(),
        c.trace_flags().with_sampled(true),
        c.is_remote(),
        c.trace_state().clone(),
    );
    span
}

impl SpanProcessor for KeepErrors {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        for p in &self.inner {
            p.on_start(span, cx);
        }
    }

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            return self.pass(span);
        }
        let failed = matches!(span.status, Status::Error { .. });
        let trace_id = span.span_context.trace_id();
        let released = {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            while let Some((since, id)) = held.order.front().copied() {
                if now.duration_since(since) < HOLD {
                    break;
                }
                held.order.pop_front();
                if let Some(t) = held.traces.remove(&id) {
                    held.spans -= t.spans.len();
                }
            }
            if !held.traces.contains_key(&trace_id) {
                if held.traces.len() >= MAX_HELD_TRACES && !failed {
                    return;
                }
                held.order.push_back((now, trace_id));
            }
            let room = held.spans < MAX_HELD_SPANS_TOTAL;
            let trace = held.traces.entry(trace_id).or_default();
            if trace.kept || failed {
                trace.kept = true;
                let mut out = std::mem::take(&mut trace.spans);
                held.spans -= out.len();
                out.push(span);
                out
            } else {
                if room && trace.spans.len() < MAX_HELD_SPANS {
                    trace.spans.push(span);
                    held.spans += 1;
                }
                return;
            }
        };
        for s in released {
            self.pass(sampled(s));
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        let mut result = Ok(());
        for p in &self.inner {
            result = result.and(p.force_flush());
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let mut result = Ok(());
        for p in &self.inner {
            result = result.and(p.shutdown_with_timeout(timeout));
        }
        result
    }

    fn set_resource(&mut self, resource: &Resource) {
        for p in &mut self.inner {
            p.set_resource(resource);
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::{
        InMemorySpanExporter, Sampler, SdkTracerProvider, SimpleSpanProcessor,
    };

    use super::*;

    /// A provider whose head sampler drops everything, and what it exports.
    fn dropping_all() -> (SdkTracerProvider, InMemorySpanExporter) {
        let exporter = InMemorySpanExporter::default();
        let inner: Vec<Box<dyn SpanProcessor>> =
            vec![Box::new(SimpleSpanProcessor::new(exporter.clone()))];
        let provider = SdkTracerProvider::builder()
            .with_span_processor(KeepErrors::new(inner))
            .with_sampler(RecordDropped(Sampler::AlwaysOff))
            .build();
        (provider, exporter)
    }

    #[test]
    fn a_dropped_trace_is_exported_only_once_it_fails() {
        let (provider, exporter) = dropping_all();
        let tracer = provider.tracer("test");

        let mut sound = tracer.start("sound");
        sound.end();

        let root = tracer.start("root");
        let cx = Context::current_with_span(root);
        let mut before = tracer.start_with_context("before", &cx);
        before.end();
        let mut failing = tracer.start_with_context("failing", &cx);
        failing.set_status(Status::error("boom"));
        failing.end();
        let mut after = tracer.start_with_context("after", &cx);
        after.end();
        cx.span().end();

        let spans = exporter.get_finished_spans().unwrap();
        let mut names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        names.sort_unstable();
        assert_eq!(names, ["after", "before", "failing", "root"]);
        assert!(spans.iter().all(|s| s.span_context.is_sampled()), "marked sampled for export");
    }

    #[test]
    fn a_trace_holds_back_a_bounded_number_of_spans() {
        let (provider, exporter) = dropping_all();
        let tracer = provider.tracer("test");
        let root = tracer.start("root");
        let cx = Context::current_with_span(root);
        for _ in 0..MAX_HELD_SPANS + 50 {
            tracer.start_with_context("step", &cx).end();
        }
        let mut failing = tracer.start_with_context("failing", &cx);
        failing.set_status(Status::error("boom"));
        failing.end();
        assert_eq!(exporter.get_finished_spans().unwrap().len(), MAX_HELD_SPANS + 1);
    }

    #[test]
    fn all_traces_together_hold_back_a_bounded_number_of_spans() {
        let (provider, exporter) = dropping_all();
        let tracer = provider.tracer("test");
        let full = MAX_HELD_SPANS_TOTAL / MAX_HELD_SPANS;
        let mut last = None;
        for _ in 0..=full {
            let root = tracer.start("root");
            let cx = Context::current_with_span(root);
            for _ in 0..MAX_HELD_SPANS {
                tracer.start_with_context("step", &cx).end();
            }
            last = Some(cx);
        }
        // The last trace came when the others held all there is room for: of it, only
        // what ends after its error is kept.
        let cx = last.unwrap();
        let mut failing = tracer.start_with_context("failing", &cx);
        failing.set_status(Status::error("boom"));
        failing.end();
        let spans = exporter.get_finished_spans().unwrap();
        assert_eq!(spans.iter().map(|s| s.name.as_ref()).collect::<Vec<_>>(), ["failing"]);
    }
}
