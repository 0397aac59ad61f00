//! A contract call opens one span per process it runs in, however many edges it passes: the
//! handle the caller holds opens `<module>.<method>`; the caller's and the callee's edges
//! open none of their own.

use std::sync::{Arc, Mutex};

use catalog_api::CatalogClient;
use kernel::{ProductId, RequestContext};
use resilience::{Edge, FaultBoard, Policy, SystemClock, Target};
use tracing_subscriber::layer::{Context, SubscriberExt as _};

/// Records the name of every span opened.
#[derive(Clone, Default)]
struct Opened(Arc<Mutex<Vec<&'static str>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Opened {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: Context<'_, S>,
    ) {
        self.0.lock().unwrap().push(attrs.metadata().name());
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_call_through_both_edges_opens_one_span() {
    let opened = Opened::default();
    // This thread's alone: the test's futures all run on it.
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(opened.clone()));

    let faults = FaultBoard::new();
    let target = Target::new("catalog", Policy::default(), Arc::new(SystemClock));
    // As wiring does in the monolith: the callee's edge, then the caller's.
    let client = CatalogClient::fake(Vec::new())
        .through(Edge::callee("catalog", faults.clone()))
        .through(Edge::caller("cart", target, faults));
    let missing = client.get(&RequestContext::system(), ProductId::new()).await;
    assert!(missing.is_err(), "the fake has no products");

    let names = opened.0.lock().unwrap().clone();
    let calls: Vec<&&str> = names.iter().filter(|n| **n == "catalog.get").collect();
    assert_eq!(calls.len(), 1, "spans opened: {names:?}");
}
