//! The metrics the host records, each named once here and described to the recorder by
//! [`describe_metrics`]. The `faas.*` ones are OpenTelemetry's FaaS metrics, labelled with
//! `faas.name` (exported to Prometheus as `faas_coldstarts_total`, `faas_init_duration_seconds`
//! and so on).

use metrics::Unit;

pub(crate) const INVOCATIONS: &str = "faas.invocations";
pub(crate) const COLDSTARTS: &str = "faas.coldstarts";
pub(crate) const INIT_DURATION: &str = "faas.init_duration";
pub(crate) const INVOKE_DURATION: &str = "faas.invoke_duration";
pub(crate) const BILLED_DURATION: &str = "microlith_function_billed_duration";
pub(crate) const COST: &str = "microlith_function_cost_usd";
pub(crate) const THROTTLED: &str = "microlith_function_throttled_total";
pub(crate) const CRASHES: &str = "microlith_function_crashes_total";
pub(crate) const INSTANCES: &str = "microlith_function_instances";

/// Describes the host's metrics to the installed recorder (call after installing it).
pub fn describe_metrics() {
    metrics::describe_counter!(INVOCATIONS, Unit::Count, "Completed invocations per function.");
    metrics::describe_counter!(
        COLDSTARTS,
        Unit::Count,
        "Invocations that started a new instance (a cold start)."
    );
    metrics::describe_histogram!(
        INIT_DURATION,
        Unit::Seconds,
        "Init phase of a new instance, from start to its first request for work."
    );
    metrics::describe_histogram!(
        INVOKE_DURATION,
        Unit::Seconds,
        "Invocation duration as the function reported it."
    );
    metrics::describe_histogram!(
        BILLED_DURATION,
        Unit::Seconds,
        "Billed duration per invocation (rounded up as Lambda bills)."
    );
    metrics::describe_gauge!(
        COST,
        "Estimated cost so far per function, in US dollars, at the configured prices."
    );
    metrics::describe_counter!(
        THROTTLED,
        Unit::Count,
        "Invocations refused because every instance was busy and the queue was full."
    );
    metrics::describe_counter!(
        CRASHES,
        Unit::Count,
        "Invocations lost because their instance died."
    );
    metrics::describe_gauge!(INSTANCES, "Instances of a function, starting, idle or busy.");
}
