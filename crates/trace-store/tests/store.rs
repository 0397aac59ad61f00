//! The trace store: bounded, oldest evicted first, kept across a reopen, queried by trace
//! and by filter.

use trace_store::{SpanRecord, TraceFilter, TraceStore};

fn span(
    trace: u128,
    span: u64,
    parent: Option<u64>,
    name: &str,
    start_ms: i64,
    ms: i64,
) -> SpanRecord {
    SpanRecord {
        trace_id: format!("{trace:032x}"),
        span_id: format!("{span:016x}"),
        parent_span_id: parent.map(|p| format!("{p:016x}")),
        name: name.into(),
        kind: "internal".into(),
        service_name: "shop".into(),
        start_unix_nano: start_ms * 1_000_000,
        end_unix_nano: (start_ms + ms) * 1_000_000,
        status_code: "unset".into(),
        status_message: String::new(),
        attributes: vec![],
        events: vec![],
        links: vec![],
    }
}

#[tokio::test]
async fn a_trace_comes_back_whole_and_a_listing_filters() {
    let dir = tempfile::tempdir().unwrap();
    let store = TraceStore::open(&dir.path().join("traces.db"), 100).await.unwrap();
    let mut failed = span(2, 20, None, "GET /api/v1/products", 2_000, 500);
    failed.status_code = "error".into();
    failed.service_name = "gateway".into();
    store
        .insert(&[
            span(1, 10, None, "POST /api/v1/orders", 1_000, 40),
            span(1, 11, Some(10), "orders.place", 1_005, 30),
            failed,
        ])
        .await
        .unwrap();
    // A span sent twice (an exporter's retry) is stored once.
    store.insert(&[span(1, 11, Some(10), "orders.place", 1_005, 30)]).await.unwrap();

    let spans = store.trace(&format!("{:032x}", 1)).await.unwrap();
    assert_eq!(
        spans.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["POST /api/v1/orders", "orders.place"]
    );
    assert_eq!(spans[1].parent_span_id.as_deref(), Some(spans[0].span_id.as_str()));
    assert!(store.trace(&format!("{:032x}", 3)).await.unwrap().is_empty());

    let all = store.list(&TraceFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].trace_id, format!("{:032x}", 2), "newest stored first");
    let first = &all[1];
    assert_eq!(
        (first.root_name.as_str(), first.span_count, first.error),
        ("POST /api/v1/orders", 2, false)
    );
    assert!((first.duration_ms - 40.0).abs() < 1e-9);

    let only = |f: TraceFilter| {
        let store = &store;
        async move {
            store
                .list(&TraceFilter { limit: 10, ..f })
                .await
                .unwrap()
                .into_iter()
                .map(|t| t.trace_id)
                .collect::<Vec<_>>()
        }
    };
    let two = vec![format!("{:032x}", 2)];
    let one = vec![format!("{:032x}", 1)];
    assert_eq!(only(TraceFilter { error: Some(true), ..Default::default() }).await, two);
    assert_eq!(
        only(TraceFilter { service: Some("gateway".into()), ..Default::default() }).await,
        two
    );
    assert_eq!(
        only(TraceFilter { operation: Some("orders.place".into()), ..Default::default() }).await,
        one
    );
    assert_eq!(only(TraceFilter { min_duration_ms: Some(100.0), ..Default::default() }).await, two);
    assert_eq!(only(TraceFilter { max_duration_ms: Some(100.0), ..Default::default() }).await, one);
    assert_eq!(only(TraceFilter { before: Some(all[0].seq), ..Default::default() }).await, one);
}

/// At most `max` traces, the oldest stored evicted first, whatever comes in; and what it
/// holds is there again after a reopen.
#[tokio::test]
async fn the_store_stays_within_its_bound_and_survives_a_reopen() {
    const MAX: u64 = 10_000;
    const TRACES: u128 = 50_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traces.db");
    let store = TraceStore::open(&path, MAX).await.unwrap();
    let mut batch = Vec::new();
    for t in 1..=TRACES {
        batch.push(span(t, 1, None, "GET /healthz", t as i64, 1));
        if batch.len() == 1_000 {
            store.insert(&batch).await.unwrap();
            batch.clear();
        }
    }
    assert_eq!(store.trace_count().await.unwrap(), MAX);
    assert!(store.trace(&format!("{:032x}", 1)).await.unwrap().is_empty(), "the oldest went first");
    assert!(store.trace(&format!("{:032x}", TRACES - u128::from(MAX))).await.unwrap().is_empty());
    assert_eq!(
        store.trace(&format!("{:032x}", TRACES - u128::from(MAX) + 1)).await.unwrap().len(),
        1
    );
    store.close().await;
    // What was evicted left the file too: it is about the size of a store that only ever
    // took one bound's worth (closing checkpoints the write-ahead log into the file).
    let reference = dir.path().join("reference.db");
    let one_bound = TraceStore::open(&reference, MAX).await.unwrap();
    for t in (1..=u128::from(MAX)).collect::<Vec<_>>().chunks(1_000) {
        let spans: Vec<_> = t.iter().map(|t| span(*t, 1, None, "GET /healthz", 0, 1)).collect();
        one_bound.insert(&spans).await.unwrap();
    }
    one_bound.close().await;
    let size = |p: &std::path::Path| std::fs::metadata(p).unwrap().len();
    assert!(
        size(&path) < 2 * size(&reference),
        "{} bytes after {TRACES} traces, {} for {MAX}",
        size(&path),
        size(&reference)
    );

    let reopened = TraceStore::open(&path, MAX).await.unwrap();
    assert_eq!(reopened.trace_count().await.unwrap(), MAX);
    assert_eq!(reopened.trace(&format!("{:032x}", TRACES)).await.unwrap().len(), 1);
    // New traces still go after the old ones: the oldest is evicted, not the newest.
    reopened.insert(&[span(TRACES + 1, 1, None, "GET /healthz", 0, 1)]).await.unwrap();
    assert_eq!(reopened.trace_count().await.unwrap(), MAX);
    assert!(
        reopened.trace(&format!("{:032x}", TRACES - u128::from(MAX) + 1)).await.unwrap().is_empty()
    );
    assert_eq!(reopened.trace(&format!("{:032x}", TRACES + 1)).await.unwrap().len(), 1);
}

/// A batch holds spans of many traces, sometimes one span twice, and a trace's spans can
/// arrive over several batches: each trace's row sums what was new, and keeps its place.
#[tokio::test]
async fn a_trace_spread_over_batches_is_summed_once_per_span() {
    let dir = tempfile::tempdir().unwrap();
    let store = TraceStore::open(&dir.path().join("traces.db"), 100).await.unwrap();
    let twice = span(1, 11, Some(10), "orders.place", 1_005, 30);
    store
        .insert(&[
            span(1, 10, None, "POST /api/v1/orders", 1_000, 40),
            twice.clone(),
            span(2, 20, None, "GET /api/v1/products", 2_000, 5),
            twice,
        ])
        .await
        .unwrap();
    let mut late = span(1, 12, Some(11), "payments.capture", 1_050, 100);
    late.status_code = "error".into();
    store.insert(&[late, span(3, 30, None, "GET /api/v1/cart", 3_000, 5)]).await.unwrap();

    let all = store.list(&TraceFilter { limit: 10, ..Default::default() }).await.unwrap();
    let order: Vec<_> = all.iter().map(|t| t.trace_id.clone()).collect();
    assert_eq!(order, [3u128, 2, 1].map(|t| format!("{t:032x}")), "first stored, first in line");
    let first = &all[2];
    assert_eq!((first.span_count, first.error), (3, true));
    assert!((first.duration_ms - 150.0).abs() < 1e-9, "{}", first.duration_ms);
    assert_eq!(store.trace(&first.trace_id).await.unwrap().len(), 3);
}

/// What goes in comes back as it was, events, links and typed attributes included, and
/// the index rebuilt on a reopen lists the same traces the same way.
#[tokio::test]
async fn spans_come_back_as_stored_and_the_index_survives_a_reopen() {
    use serde_json::json;
    use telemetry::{Attribute, SpanEvent, SpanLink};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traces.db");
    let store = TraceStore::open(&path, 100).await.unwrap();
    let attribute = |key: &str, value| Attribute { key: key.into(), value };
    let mut rich = span(7, 70, None, "POST /api/v1/orders", 7_000, 25);
    rich.kind = "server".into();
    rich.status_code = "error".into();
    rich.status_message = "payments timed out".into();
    rich.attributes = vec![
        attribute("http.request.method", json!("POST")),
        attribute("http.response.status_code", json!(504)),
        attribute("retry", json!(true)),
        attribute("ratio", json!(0.5)),
        attribute("tags", json!(["a", "b"])),
    ];
    rich.events = vec![SpanEvent {
        name: "retry".into(),
        time_unix_nano: 7_010_000_000,
        attributes: vec![attribute("attempt", json!(2))],
    }];
    rich.links = vec![SpanLink {
        trace_id: format!("{:032x}", 8),
        span_id: format!("{:016x}", 80),
        attributes: vec![],
    }];
    let child = span(7, 71, Some(70), "orders.place", 7_001, 20);
    store.insert(&[child.clone(), rich.clone()]).await.unwrap();
    store.insert(&[span(9, 90, None, "GET /healthz", 9_000, 1)]).await.unwrap();

    assert_eq!(store.trace(&rich.trace_id).await.unwrap(), vec![rich.clone(), child.clone()]);
    let by = |key: &str, value: &str| TraceFilter {
        attribute: Some((key.into(), value.into())),
        limit: 10,
        ..Default::default()
    };
    let ids = |list: Vec<trace_store::TraceSummary>| {
        list.into_iter().map(|t| t.trace_id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.list(&by("http.response.status_code", "504")).await.unwrap()),
        [rich.trace_id.clone()]
    );
    assert_eq!(
        ids(store.list(&by("http.request.method", "POST")).await.unwrap()),
        [rich.trace_id.clone()]
    );
    assert!(store.list(&by("http.request.method", "GET")).await.unwrap().is_empty());

    let all = TraceFilter { limit: 10, ..Default::default() };
    let before = store.list(&all).await.unwrap();
    assert_eq!(before.len(), 2);
    assert_eq!(
        (before[1].root_name.as_str(), before[1].span_count, before[1].error),
        ("POST /api/v1/orders", 2, true)
    );
    store.close().await;
    let reopened = TraceStore::open(&path, 100).await.unwrap();
    assert_eq!(reopened.list(&all).await.unwrap(), before);
    assert_eq!(reopened.trace(&rich.trace_id).await.unwrap(), vec![rich, child]);
}

/// One insert bigger than a row holds (an import, say) is stored whole, over several rows.
#[tokio::test]
async fn a_big_insert_is_stored_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = TraceStore::open(&dir.path().join("traces.db"), 100).await.unwrap();
    let spans: Vec<_> =
        (1..=5_000).map(|i| span(5, i, (i > 1).then_some(1), "step", i as i64, 1)).collect();
    store.insert(&spans).await.unwrap();
    assert_eq!(store.trace(&spans[0].trace_id).await.unwrap().len(), 5_000);
    let all = store.list(&TraceFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!((all.len(), all[0].span_count), (1, 5_000));
}
