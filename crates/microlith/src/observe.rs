//! What this process reports about itself: log lines on stderr (filtered by `RUST_LOG`)
//! and, once it knows which process of which topology it is, its spans as OpenTelemetry
//! spans ([`process`]). The subscriber is installed once, whole: `tracing-opentelemetry`
//! finds its context by downcasting the subscriber, which a reloadable layer would hide.

use std::io::IsTerminal as _;
use std::sync::OnceLock;

use opentelemetry_sdk::trace::SdkTracerProvider;
use runtime::ShopConfig;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The log filter unless `RUST_LOG` says otherwise.
const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn";
/// Which spans become OpenTelemetry spans, whatever the log filter: the shop's own
/// (requests, calls, messages, jobs), not the libraries' inner workings. The Lambda
/// runtime's `Lambda runtime invoke` span is left out: it starts a trace of its own, while
/// the invocation is already the host's span, and the work in it continues the caller's.
const SPAN_FILTER: &str =
    "info,sqlx=warn,hyper=off,h2=off,reqwest=off,tower=off,lambda_runtime=off";

fn log_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER))
}

/// The log lines on stderr, filtered by `RUST_LOG`: text, or JSON objects with the
/// OpenTelemetry ids of the span each was logged in (`openTelemetry.traceId`, `.spanId`).
fn log_lines<S>(json: bool) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    if json {
        json_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_current_span(false)
            .with_opentelemetry_ids(true)
            .with_filter(log_filter())
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(colour())
            .with_filter(log_filter())
            .boxed()
    }
}

/// Colour for a person at a terminal (directly, or through the supervisor that relays this
/// process's lines to one: [`runtime::FORCE_COLOUR_ENV`]), never into a file or a pipe;
/// `NO_COLOR` (<https://no-color.org>) turns it off.
fn colour() -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0");
    !set("NO_COLOR") && (std::io::stderr().is_terminal() || set(runtime::FORCE_COLOUR_ENV))
}

/// Log lines only: for commands that are not a process of the shop (the supervisor, the
/// `fault` client).
pub fn logs_only(json: bool) {
    let _ = tracing_subscriber::registry().with(log_lines(json)).try_init();
}

/// Log lines, and this process's spans as OpenTelemetry spans of `config`'s process
/// (`service.name`, `service.instance.id`, the topology), exported to the built-in trace
/// store and to the collector `config.telemetry` names.
pub fn process(config: &ShopConfig) -> anyhow::Result<()> {
    let identity = telemetry::ProcessIdentity {
        service_name: runtime::trust::caller_name(&config.role),
        instance_id: config.role.instance_id(),
        topology: config.topology.name.clone(),
    };
    let uplink = runtime::otlp::uplink(config)?;
    let (spans, provider) =
        telemetry::layer(&identity, &config.telemetry, uplink).map_err(anyhow::Error::msg)?;
    tracing_subscriber::registry()
        .with(spans.with_filter(EnvFilter::new(SPAN_FILTER)))
        .with(log_lines(config.telemetry.json_logs))
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot start recording spans: {e}"))?;
    let _ = PROVIDER.set(provider);
    Ok(())
}

/// Exports the spans still waiting; call it before the process exits.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.shutdown();
    }
}
