//! Composition: the only library crate that names module implementation crates (besides
//! the test kit). It reads the topology, opens each module's own database, loads the key
//! files, builds every module of this process with a client for each module it calls (the
//! implementation when the callee runs here, a remote client otherwise), seeds a first
//! start, and puts the gateway and/or the internal routes in front. It also holds the
//! registry of instances (discovery and load balancing) and the local process supervisor.

mod admin;
mod config;
mod edges;
mod fault_acks;
mod faults;
mod functions;
mod handover;
mod keys;
pub mod lifecycle;
mod metrics;
pub mod nats_registry;
pub mod otlp;
pub mod plan;
mod policy;
mod registry;
mod seed;
mod shared_file;
mod shop;
mod storage;
mod supervisor;
mod system;
mod topology;
mod traces;
pub mod trust;
mod wiring;

pub use admin::{admin_lines, bootstrap_admin};
pub use config::{AdminCredentials, ProcessRole, ShopConfig};
pub use faults::{clear_faults_in, faults_file, faults_in};
pub use functions::{
    FunctionInvoker, FunctionLaunch, FunctionWork, ScheduledEvent, Signed,
    host_file as function_host_file,
};
pub use handover::{ADMIN_PASSWORD_ENV, CONFIG_ENV, ChildEnv, admin_password_from_env};
pub use keys::{FileKeys, load_or_create_signing_key, replace_private};
pub use lifecycle::READY_LINE;
pub use plan::Plan;
pub use policy::Policies;
pub use registry::{Instance, Registry, registry_file, write_file as write_registry_file};
pub use seed::{DEMO_PRODUCTS, seed_demo_catalog};
pub use shop::Shop;
pub use storage::{create_private_dir, open_db};
pub use supervisor::{FORCE_COLOUR_ENV, Ports, SUPERVISED_ENV, supervise};
pub use telemetry::TelemetryConfig;
pub use topology::{
    BusKind, Database, DiscoveryKind, Function, Infra, MAX_REPLICAS, Module, Placement, Service,
    Topology, Trigger,
};
pub use trust::{Keyring, Trust};
