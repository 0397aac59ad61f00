//! Where spans go besides the built-in store, and how many are kept: the standard
//! OpenTelemetry environment variables, unless the command line says otherwise.

use opentelemetry_sdk::trace::Sampler;
use serde::{Deserialize, Serialize};

/// What a process does with its spans beyond the built-in store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TelemetryConfig {
    /// Also send spans to this OTLP/HTTP collector (protobuf), e.g.
    /// `http://localhost:4318`; `/v1/traces` is appended. `None`: the collector that
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` names, if any.
    pub otlp_endpoint: Option<String>,
    /// The share of new traces kept, 0 to 1 (head sampling; a trace that comes with a
    /// sampled flag keeps the caller's decision). `None`: `OTEL_TRACES_SAMPLER` and
    /// `OTEL_TRACES_SAMPLER_ARG`, else every trace.
    pub sample_ratio: Option<f64>,
    /// The built-in trace store's OTLP/HTTP receiver (`http://<gateway>/v1/traces`), for
    /// the processes that do not host it: set by whoever starts them (the supervisor).
    #[serde(default)]
    pub store_endpoint: Option<String>,
    /// Log lines as JSON objects, one per line, with the ids of the span each was logged in
    /// (`openTelemetry.traceId` and `.spanId`); else plain text.
    #[serde(default)]
    pub json_logs: bool,
}

/// The path of OTLP/HTTP's trace export (OTLP specification, "OTLP/HTTP Request").
pub const OTLP_TRACES_PATH: &str = "/v1/traces";

/// The OTLP traces URL for a base endpoint, as `OTEL_EXPORTER_OTLP_ENDPOINT` is read.
pub fn traces_url(base: &str) -> String {
    format!("{}{OTLP_TRACES_PATH}", base.trim_end_matches('/'))
}

/// Whether spans leave by OTLP: a configured endpoint, or the standard variables.
pub fn exports_otlp(config: &TelemetryConfig) -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    config.otlp_endpoint.is_some()
        || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        || set("OTEL_EXPORTER_OTLP_ENDPOINT")
}

/// The sampler: `ratio` if given, else what `OTEL_TRACES_SAMPLER`/`_ARG` say (the
/// OpenTelemetry SDK environment specification), else keep every trace (as
/// `parentbased_always_on`). An unknown sampler or argument is an error.
pub fn sampler(ratio: Option<f64>) -> Result<Sampler, String> {
    if let Some(r) = ratio {
        return Ok(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(check_ratio(r)?))));
    }
    let name = std::env::var("OTEL_TRACES_SAMPLER").unwrap_or_default();
    let arg = std::env::var("OTEL_TRACES_SAMPLER_ARG").ok();
    sampler_named(name.trim(), arg.as_deref())
}

fn check_ratio(r: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&r) {
        Ok(r)
    } else {
        Err(format!("a sampling ratio is between 0 and 1, not {r}"))
    }
}

fn sampler_named(name: &str, arg: Option<&str>) -> Result<Sampler, String> {
    let ratio = || match arg.map(str::trim).filter(|a| !a.is_empty()) {
        None => Ok(1.0),
        Some(a) => a
            .parse::<f64>()
            .map_err(|_| format!("OTEL_TRACES_SAMPLER_ARG is not a number: {a:?}"))
            .and_then(check_ratio),
    };
    let parent = |s: Sampler| Sampler::ParentBased(Box::new(s));
    Ok(match name {
        "" | "parentbased_always_on" => parent(Sampler::AlwaysOn),
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "parentbased_always_off" => parent(Sampler::AlwaysOff),
        "traceidratio" => Sampler::TraceIdRatioBased(ratio()?),
        "parentbased_traceidratio" => parent(Sampler::TraceIdRatioBased(ratio()?)),
        other => {
            return Err(format!(
                "OTEL_TRACES_SAMPLER {other:?} is not one of always_on, always_off, \
                 traceidratio, parentbased_always_on, parentbased_always_off, \
                 parentbased_traceidratio"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samplers_follow_the_specification_names() {
        assert!(matches!(sampler_named("", None), Ok(Sampler::ParentBased(_))));
        assert!(matches!(sampler_named("always_off", None), Ok(Sampler::AlwaysOff)));
        assert!(matches!(
            sampler_named("traceidratio", Some("0.25")),
            Ok(Sampler::TraceIdRatioBased(r)) if r == 0.25
        ));
        assert!(
            matches!(sampler_named("traceidratio", None), Ok(Sampler::TraceIdRatioBased(r)) if r == 1.0)
        );
        assert!(sampler_named("traceidratio", Some("2")).is_err());
        assert!(sampler_named("traceidratio", Some("half")).is_err());
        assert!(sampler_named("sometimes", None).is_err());
        assert!(sampler(Some(-0.1)).is_err());
        assert!(sampler(Some(f64::NAN)).is_err());
    }

    #[test]
    fn a_base_endpoint_gets_the_traces_path() {
        assert_eq!(traces_url("http://localhost:4318"), "http://localhost:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
    }
}
