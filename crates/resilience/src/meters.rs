//! The metrics this crate records, each named once here and described to the recorder by
//! [`describe_metrics`], so the scrape gives every family its `# HELP`.

use metrics::Unit;

pub(crate) const CALLS: &str = "microlith_calls_total";
pub(crate) const RETRIES: &str = "microlith_retries_total";
pub(crate) const SHED: &str = "microlith_shed_total";
pub(crate) const BREAKER_REJECTED: &str = "microlith_breaker_rejected_total";
pub const BREAKER_STATE: &str = "microlith_breaker_state";
pub(crate) const FAULTS_INJECTED: &str = "microlith_faults_injected_total";
/// OpenTelemetry's `rpc.client.call.duration` (seconds): one try of a call between modules,
/// labelled by its edge (`caller`, `rpc.service`) and `rpc.method`, with `error.type` when
/// the try failed. Exported to Prometheus as `rpc_client_call_duration_seconds`.
pub(crate) const CALL_DURATION: &str = "rpc.client.call.duration";

/// Describes this crate's metrics to the installed recorder (call after installing it).
pub fn describe_metrics() {
    metrics::describe_counter!(
        CALLS,
        Unit::Count,
        "Tries of calls between modules, by caller, target and outcome (ok, answered, timeout, failed)."
    );
    metrics::describe_counter!(
        RETRIES,
        Unit::Count,
        "Retries of idempotent calls after a transient failure."
    );
    metrics::describe_counter!(
        SHED,
        Unit::Count,
        "Calls refused at once because too many to the target were in flight."
    );
    metrics::describe_counter!(
        BREAKER_REJECTED,
        Unit::Count,
        "Calls refused at once by an open circuit breaker."
    );
    metrics::describe_gauge!(
        BREAKER_STATE,
        "State of the circuit breaker per target: 0 closed, 1 open, 2 half-open."
    );
    metrics::describe_counter!(
        FAULTS_INJECTED,
        Unit::Count,
        "Faults injected into calls, by target and kind."
    );
    metrics::describe_histogram!(
        CALL_DURATION,
        Unit::Seconds,
        "Duration of one try of a call between modules, per edge (caller, rpc_service) and rpc_method."
    );
}
