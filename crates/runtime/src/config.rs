//! What a process of the shop is started with: its role in the topology and its
//! configuration, built by the binary from flags and environment (or handed over whole by
//! its parent, see `handover`).

use std::path::PathBuf;

use gateway::GatewayConfig;
use identity::IdentityConfig;
use identity_api::Password;
use kernel::Email;
use orders::OrdersConfig;
use resilience::FaultBoard;

use crate::{Registry, Topology};

/// Which process of the topology this one is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ProcessRole {
    /// An instance of a service: its modules, their internal routes, and the public gateway
    /// too if the topology puts it in this service (as the monolith does).
    Service { name: String, replica: u16 },
    /// The public gateway alone: every module is remote.
    Gateway,
    /// An instance of a function, started on demand by the function host.
    Function { name: String },
}

impl ProcessRole {
    /// The name this process signs its calls with, and its instance id.
    pub fn instance_id(&self) -> String {
        match self {
            ProcessRole::Service { name, replica } => format!("{name}-{replica}"),
            ProcessRole::Gateway => "gateway".into(),
            ProcessRole::Function { name } => format!("{name}-fn-{}", std::process::id()),
        }
    }
}

/// Everything the shop needs to start; built by the binary from flags and environment.
///
/// A process that starts another (the supervisor, the function host) hands it this value
/// whole, as JSON in [`crate::CONFIG_ENV`], rather than flag by flag: the child runs with exactly
/// the parent's resolved topology and settings. What is live or secret is not in it: the
/// registry, the fault board and how functions are launched are the child's own, and the
/// admin's password goes only to the processes that bootstrap the admin
/// ([`crate::plan::Process::bootstraps_admin`]), in [`crate::ADMIN_PASSWORD_ENV`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ShopConfig {
    pub topology: Topology,
    pub role: ProcessRole,
    pub data_dir: PathBuf,
    /// Seed the demo catalog when the catalog is empty (done by the process with the gateway).
    pub seed: bool,
    pub admin: AdminCredentials,
    pub gateway: GatewayConfig,
    pub identity: IdentityConfig,
    pub orders: OrdersConfig,
    /// Where the other processes' instances are (unused by a single-process placement).
    #[serde(skip)]
    pub registry: Registry,
    /// The faults injected into this process's modules and edges (none by default). The
    /// processes of one test cluster share one board; separate processes share a file.
    #[serde(skip)]
    pub faults: FaultBoard,
    /// Prefix of the NATS streams, consumers and keys, so several shops (or tests) can
    /// share one server.
    pub bus_namespace: String,
    /// Where spans go besides the built-in store, and how many traces are kept.
    pub telemetry: telemetry::TelemetryConfig,
    /// How the process with the gateway starts function instances.
    #[serde(skip)]
    pub functions: crate::FunctionLaunch,
    /// Leave `/metrics` off the public listener: it is served on a listener of its own
    /// ([`crate::lifecycle::Started::serve_metrics_on`]). Off by default: the public
    /// listener of a shop on one machine is where a scraper finds it.
    #[serde(default)]
    pub metrics_apart: bool,
}

/// Who the admin is; without a password one is generated on first start and shown once.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AdminCredentials {
    pub email: Email,
    /// A secret: never in [`crate::CONFIG_ENV`].
    #[serde(skip)]
    pub password: Option<Password>,
}

impl ShopConfig {
    /// The monolith in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>, admin: AdminCredentials) -> ShopConfig {
        ShopConfig {
            topology: Topology::monolith(),
            role: ProcessRole::Service { name: "shop".into(), replica: 1 },
            data_dir: data_dir.into(),
            seed: true,
            admin,
            gateway: GatewayConfig::default(),
            identity: IdentityConfig::default(),
            orders: OrdersConfig::default(),
            registry: Registry::new(),
            faults: FaultBoard::new(),
            bus_namespace: "microlith".into(),
            telemetry: telemetry::TelemetryConfig::default(),
            functions: crate::FunctionLaunch::default(),
            metrics_apart: false,
        }
    }
}
