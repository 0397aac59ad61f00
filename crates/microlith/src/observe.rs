//! What this process reports about itself: log lines on stderr from the start, and its
//! spans as OpenTelemetry spans once it knows which process of which topology it is
//! ([`activate`]).

use std::sync::OnceLock;

use opentelemetry_sdk::trace::SdkTracerProvider;
use runtime::ShopConfig;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

type OtelSlot = Option<Box<dyn Layer<Registry> + Send + Sync>>;

static OTEL: OnceLock<reload::Handle<OtelSlot, Registry>> = OnceLock::new();
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The default filter: `RUST_LOG` overrides it.
const DEFAULT_FILTER: &str = "info,sqlx=warn";

/// Installs the process's subscriber: log lines on stderr, and an empty place for the
/// OpenTelemetry layer.
pub fn init() {
    let (otel, handle) = reload::Layer::new(None::<Box<dyn Layer<Registry> + Send + Sync>>);
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    tracing_subscriber::registry()
        .with(otel)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .init();
    let _ = OTEL.set(handle);
}

/// From now on this process's spans are OpenTelemetry spans of `config`'s process
/// (`service.name`, `service.instance.id`, the topology), exported to the trace store.
pub fn activate(config: &ShopConfig) {
    let identity = telemetry::ProcessIdentity {
        service_name: runtime::trust::caller_name(&config.role),
        instance_id: config.role.instance_id(),
        topology: config.topology.name.clone(),
    };
    let (layer, provider) = telemetry::layer::<Registry>(&identity, 1.0);
    if let Some(handle) = OTEL.get()
        && handle.reload(Some(Box::new(layer) as Box<dyn Layer<Registry> + Send + Sync>)).is_ok()
    {
        let _ = PROVIDER.set(provider);
    }
}

/// Exports the spans still waiting; call it before the process exits.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.shutdown();
    }
}
