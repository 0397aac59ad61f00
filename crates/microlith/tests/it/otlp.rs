//! `--otlp-endpoint`: the shop's spans also go to an OpenTelemetry collector over OTLP/HTTP.
//! The collector here is a real OTLP/HTTP endpoint: it decodes the protobuf.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message as _;

type Received = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

async fn collect(State(received): State<Received>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/x-protobuf") {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE;
    }
    match ExportTraceServiceRequest::decode(body) {
        Ok(request) => {
            received.lock().unwrap().push(request);
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

fn string(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    })
}

#[tokio::test]
async fn spans_reach_an_otlp_collector() {
    let received = Received::default();
    let collector = axum::Router::new()
        .route("/v1/traces", axum::routing::post(collect))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, collector).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("http://{addr}");
    let shop = crate::up_with(&dir.path().join("data"), None, &["--otlp-endpoint", &endpoint]);
    let trace = format!("{:032x}", uuid::Uuid::new_v4().as_u128());
    let res = reqwest::Client::new()
        .get(format!("{}/api/v1/products", shop.base))
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found =
            received.lock().unwrap().iter().flat_map(|r| r.resource_spans.iter()).find_map(|rs| {
                let resource = rs.resource.as_ref()?;
                rs.scope_spans.iter().flat_map(|s| s.spans.iter()).find_map(|span| {
                    let hex: String = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                    (hex == trace && span.name == "GET /api/v1/products").then(|| {
                        (resource.attributes.clone(), span.kind, span.parent_span_id.clone())
                    })
                })
            });
        if let Some((resource, kind, parent)) = found {
            assert_eq!(string(&resource, "service.name").as_deref(), Some("shop"));
            assert_eq!(string(&resource, "microlith.topology").as_deref(), Some("monolith"));
            assert_eq!(string(&resource, "service.instance.id").as_deref(), Some("shop-1"));
            assert_eq!(kind, 2, "SPAN_KIND_SERVER");
            assert_eq!(parent, vec![0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
            break;
        }
        assert!(Instant::now() < deadline, "the collector got no span of trace {trace}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    crate::stop(shop);
}

#[test]
fn a_bad_otlp_endpoint_is_refused_before_anything_starts() {
    for bad in ["localhost:4318", "ftp://collector", "not a url"] {
        let out = std::process::Command::new(crate::BIN)
            .args(["up", "--otlp-endpoint", bad, "--data-dir", "/nonexistent/never-created"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--otlp-endpoint"), "{bad}: {err}");
    }
    let out = std::process::Command::new(crate::BIN)
        .args(["up", "--trace-sample-ratio", "1.5", "--data-dir", "/nonexistent/never-created"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--trace-sample-ratio"));
}
