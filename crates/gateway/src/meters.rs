//! The edge's RED metrics: OpenTelemetry's `http.server.request.duration` (seconds), exported
//! to Prometheus as `http_server_request_duration_seconds`, labelled as the HTTP semantic
//! conventions say: `http.request.method`, `http.route` (the matched template, absent when
//! no route matched), `http.response.status_code`, and `error.type` for a 5xx.

use std::time::Duration;

use axum::http::Method;
use metrics::Unit;

const REQUEST_DURATION: &str = "http.server.request.duration";

/// Describes the edge's metrics to the installed recorder (call after installing it).
pub fn describe_metrics() {
    metrics::describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Duration of public HTTP requests, per method, route and status (probes and scrapes left out)."
    );
}

/// The matched route template, handed from the router to the edge's outer layer.
#[derive(Clone)]
pub(crate) struct MatchedRoute(pub(crate) String);

pub(crate) fn record(method: &Method, route: Option<&MatchedRoute>, status: u16, took: Duration) {
    // A client can send any method token: the conventions fold unknown ones into
    // `_OTHER`, which also keeps the label's values few.
    let method = match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    };
    let status = status.to_string();
    let mut labels = Vec::with_capacity(4);
    labels.push(metrics::Label::new("http.request.method", method));
    if let Some(r) = route {
        labels.push(metrics::Label::new("http.route", r.0.clone()));
    }
    if status.starts_with('5') {
        labels.push(metrics::Label::new("error.type", status.clone()));
    }
    labels.push(metrics::Label::new("http.response.status_code", status));
    metrics::histogram!(REQUEST_DURATION, labels).record(took.as_secs_f64());
}
