//! The topology file: which module runs in which process, how many instances of each, and
//! which modules run as functions, which database, bus and discovery they use, and the call
//! policies. Four presets are built in (`monolith`, the default, `microservices`,
//! `serverless` and `hybrid`, from `topologies/*.toml`); any other placement is a TOML file
//! of the same shape.
//!
//! `module.rs` holds [`Module`] and the call graph; `file.rs` reads and checks the file.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::policy::Policies;

mod file;
mod module;

use file::{parse_bus, parse_database, parse_discovery};
pub use module::Module;
/// Where modules keep their data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Database {
    /// One SQLite file per module in the data directory.
    Sqlite,
    /// One schema per module in this PostgreSQL database (created if missing).
    Postgres(String),
}

/// What carries events between modules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BusKind {
    /// A broker in a SQLite file of the data directory, shared by the local processes.
    Embedded,
    /// NATS JetStream at this URL.
    Nats(String),
}

/// Where processes find each other's instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiscoveryKind {
    /// The local supervisor's registry (a file in the data directory).
    Local,
    /// A NATS JetStream key-value bucket with TTL heartbeats, at this URL.
    Nats(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Infra {
    pub database: Database,
    pub bus: BusKind,
    pub discovery: DiscoveryKind,
}

/// One kind of process: the modules it hosts and how many copies run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    pub modules: Vec<Module>,
    pub replicas: u16,
}

/// What starts a function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Trigger {
    /// Calls to the module's contract, as API Gateway HTTP API (v2) events.
    Http,
    /// Batches of the bus events the module subscribes to (`lambda_runtime`).
    Events,
    /// A job of the module (one of [`Module::jobs`]), run every `every` (`lambda_runtime`).
    Schedule { job: String, every: Duration },
}

/// A module (or its event handlers) run as on-demand function instances by the function
/// host of the gateway's process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Function {
    pub name: String,
    pub module: Module,
    pub trigger: Trigger,
    pub max_concurrency: u32,
    pub max_queue: u32,
    pub idle_timeout: Duration,
    pub timeout: Duration,
    pub memory_mb: u32,
    pub arch: function_host::Arch,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Topology {
    pub name: String,
    pub infra: Infra,
    /// The service whose process also runs the public gateway; `None`: a process of its own.
    pub gateway_in: Option<String>,
    pub services: Vec<Service>,
    /// Modules run as functions, and event handlers run as functions.
    pub functions: Vec<Function>,
    /// What the cost estimate of function invocations uses.
    pub prices: function_host::Prices,
    /// How calls between modules are made: timeouts, retries, breakers, limits.
    pub policies: Policies,
}

pub const MAX_REPLICAS: u16 = 16;

impl Topology {
    pub const PRESETS: &'static [&'static str] =
        &["monolith", "microservices", "serverless", "hybrid"];

    pub fn monolith() -> Topology {
        Self::from_toml(include_str!("../../topologies/monolith.toml"))
            .unwrap_or_else(|e| unreachable!("the monolith preset is valid: {e:#}"))
    }

    pub fn microservices() -> Topology {
        Self::from_toml(include_str!("../../topologies/microservices.toml"))
            .unwrap_or_else(|e| unreachable!("the microservices preset is valid: {e:#}"))
    }

    pub fn serverless() -> Topology {
        Self::from_toml(include_str!("../../topologies/serverless.toml"))
            .unwrap_or_else(|e| unreachable!("the serverless preset is valid: {e:#}"))
    }

    pub fn hybrid() -> Topology {
        Self::from_toml(include_str!("../../topologies/hybrid.toml"))
            .unwrap_or_else(|e| unreachable!("the hybrid preset is valid: {e:#}"))
    }

    /// A preset name, or the path of a TOML file.
    pub fn load(name_or_path: &str) -> anyhow::Result<Topology> {
        match name_or_path {
            "monolith" => Ok(Self::monolith()),
            "microservices" => Ok(Self::microservices()),
            "serverless" => Ok(Self::serverless()),
            "hybrid" => Ok(Self::hybrid()),
            path if path.ends_with(".toml") || Path::new(path).exists() => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the topology file {path}"))?;
                Self::from_toml(&text).with_context(|| format!("in the topology file {path}"))
            }
            other => bail!(
                "unknown topology `{other}`; presets: {}, or the path of a .toml file",
                Self::PRESETS.join(", ")
            ),
        }
    }

    /// Where `module` runs: the name of its service, or of its HTTP function.
    pub fn placement_of(&self, module: Module) -> Placement<'_> {
        if let Some(s) = self.services.iter().find(|s| s.modules.contains(&module)) {
            return Placement::Service(s);
        }
        match self.functions.iter().find(|f| f.module == module && f.trigger == Trigger::Http) {
            Some(f) => Placement::Function(f),
            None => unreachable!("validated: every module is placed"),
        }
    }

    /// True when `module` runs as a function rather than in a service.
    pub fn is_function(&self, module: Module) -> bool {
        self.functions.iter().any(|f| f.module == module && f.trigger == Trigger::Http)
    }

    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.name == name)
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// True when everything runs in one process, so nothing is ever called remotely.
    pub fn is_single_process(&self) -> bool {
        self.functions.is_empty()
            && matches!(self.services.as_slice(), [only] if only.replicas == 1 && self.gateway_in.as_deref() == Some(only.name.as_str()))
    }

    pub fn set_database(&mut self, url: &str) -> anyhow::Result<()> {
        self.infra.database = parse_database(Some(url))?;
        Ok(())
    }

    pub fn set_bus(&mut self, url: &str) -> anyhow::Result<()> {
        self.infra.bus = parse_bus(Some(url))?;
        Ok(())
    }

    pub fn set_discovery(&mut self, url: &str) -> anyhow::Result<()> {
        self.infra.discovery = parse_discovery(Some(url))?;
        Ok(())
    }

    /// The other services that `service`'s modules call (functions start on demand, so
    /// there is nothing to wait for).
    pub fn callees(&self, service: &str) -> Vec<&Service> {
        let Some(own) = self.service(service) else { return Vec::new() };
        let mut out: Vec<&Service> = Vec::new();
        for callee in own.modules.iter().flat_map(|m| m.calls()) {
            if let Placement::Service(s) = self.placement_of(callee)
                && s.name != own.name
                && !out.iter().any(|o| o.name == s.name)
            {
                out.push(s);
            }
        }
        out
    }
}

/// Where a module runs.
#[derive(Debug, Clone, Copy)]
pub enum Placement<'a> {
    Service(&'a Service),
    Function(&'a Function),
}

impl Placement<'_> {
    /// The service's or function's name: the audience of calls to it.
    pub fn name(&self) -> &str {
        match self {
            Placement::Service(s) => &s.name,
            Placement::Function(f) => &f.name,
        }
    }
}

impl Function {
    /// The host's view of it.
    pub fn host_config(&self) -> function_host::FunctionConfig {
        function_host::FunctionConfig {
            name: self.name.clone(),
            max_concurrency: self.max_concurrency,
            max_queue: self.max_queue,
            idle_timeout: self.idle_timeout,
            timeout: self.timeout,
            memory_mb: self.memory_mb,
            arch: self.arch,
            trigger: match self.trigger {
                Trigger::Http => function_host::FaasTrigger::Http,
                Trigger::Events => function_host::FaasTrigger::Pubsub,
                Trigger::Schedule { .. } => function_host::FaasTrigger::Timer,
            },
        }
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_graph_names_only_declared_methods() {
        for (from, to, methods) in Module::CALLS {
            assert_ne!(from, to, "a module calls itself in process");
            for method in *methods {
                let path = format!("/internal/{to}/{method}");
                assert!(
                    to.internal_paths().contains(&path.as_str()),
                    "{from} calls {path}, which the {to} contract does not declare"
                );
            }
        }
    }

    #[test]
    fn presets() {
        let m = Topology::load("monolith").unwrap();
        assert!(m.is_single_process());
        assert_eq!(m.placement_of(Module::Payments).name(), "shop");
        let ms = Topology::load("microservices").unwrap();
        assert!(!ms.is_single_process());
        assert_eq!(ms.services.len(), 7);
        assert_eq!(ms.gateway_in, None);
        assert_eq!(ms.infra.discovery, DiscoveryKind::Local);
        let catalog = ms.policies.for_target(Module::Catalog).timeout;
        assert_eq!(catalog, std::time::Duration::from_secs(1), "a slow catalog falls back");
        let sl = Topology::load("serverless").unwrap();
        assert!(sl.services.is_empty() && !sl.is_single_process());
        assert_eq!(sl.functions.len(), 14, "7 HTTP, 5 events and 2 scheduled functions");
        assert!(sl.is_function(Module::Cart));
        let h = Topology::load("hybrid").unwrap();
        assert_eq!(h.placement_of(Module::Orders).name(), "core");
        assert_eq!(h.placement_of(Module::Payments).name(), "payments");
        assert_eq!(h.placement_of(Module::Notifications).name(), "notifications");
        assert_eq!(h.function("notifications-events").unwrap().max_concurrency, 4);
        assert!(Topology::load("mainframe").unwrap_err().to_string().contains("unknown"));
    }

    fn with_services(services: &str) -> anyhow::Result<Topology> {
        Topology::from_toml(&format!("name = \"t\"\n{services}"))
    }

    #[test]
    fn placement_rules() {
        let all = r#"modules = ["identity", "catalog", "inventory", "cart", "orders", "payments", "notifications"]"#;
        assert!(with_services(&format!("[[service]]\nname = \"a\"\n{all}")).is_ok());
        let twice = with_services(&format!(
            "[[service]]\nname = \"a\"\n{all}\n[[service]]\nname = \"b\"\nmodules = [\"cart\"]"
        ));
        assert!(twice.unwrap_err().to_string().contains("placed twice"));
        let missing = with_services("[[service]]\nname = \"a\"\nmodules = [\"cart\"]");
        assert!(missing.unwrap_err().to_string().contains("missing: identity"));
        let unknown = with_services("[[service]]\nname = \"a\"\nmodules = [\"billing\"]");
        assert!(unknown.is_err());
        let replicas = with_services(&format!("[[service]]\nname = \"a\"\nreplicas = 0\n{all}"));
        assert!(replicas.unwrap_err().to_string().contains("replicas"));
        let gateway = Topology::from_toml(&format!(
            "name = \"t\"\n[gateway]\nin_service = \"zz\"\n[[service]]\nname = \"a\"\n{all}"
        ));
        assert!(gateway.unwrap_err().to_string().contains("not a service"));
        let typo = Topology::from_toml(&format!(
            "name = \"t\"\nreplica = 2\n[[service]]\nname = \"a\"\n{all}"
        ));
        assert!(typo.is_err(), "unknown keys are refused");
    }

    #[test]
    fn function_rules() {
        let rest = r#"[[service]]
name = "a"
modules = ["identity", "catalog", "inventory", "cart", "orders", "payments"]"#;
        let ok = with_services(&format!(
            "{rest}\n[[function]]\nmodule = \"notifications\"\n[[function]]\nmodule = \"notifications\"\ntrigger = \"events\"\nmemory_mb = 512\narch = \"arm64\""
        ))
        .unwrap();
        let f = ok.function("notifications-events").unwrap();
        assert_eq!((f.memory_mb, f.arch), (512, function_host::Arch::Arm64));
        let no_events = with_services(&format!("{rest}\n[[function]]\nmodule = \"notifications\""));
        assert!(no_events.unwrap_err().to_string().contains("trigger = \"events\""));
        let in_service = with_services(&format!(
            "{rest}\n[[function]]\nmodule = \"cart\"\ntrigger = \"events\"\n[[function]]\nmodule = \"notifications\"\n[[function]]\nmodule = \"notifications\"\ntrigger = \"events\""
        ));
        assert!(in_service.unwrap_err().to_string().contains("runs in a service"));
        let twice = with_services(&format!("{rest}\n[[function]]\nmodule = \"cart\""));
        assert!(twice.unwrap_err().to_string().contains("placed twice"));
        let big = with_services(&format!(
            "{rest}\n[[function]]\nmodule = \"notifications\"\nmax_concurrency = 0\n[[function]]\nmodule = \"notifications\"\ntrigger = \"events\""
        ));
        assert!(big.unwrap_err().to_string().contains("max_concurrency"));
        let memory = with_services(&format!(
            "{rest}\n[[function]]\nmodule = \"notifications\"\nmemory_mb = 64\n[[function]]\nmodule = \"notifications\"\ntrigger = \"events\""
        ));
        assert!(memory.unwrap_err().to_string().contains("memory_mb"));
    }

    #[test]
    fn orders_as_a_function_needs_both_jobs_scheduled() {
        let summary_name = || orders::DAILY_SALES_SUMMARY;
        let rest = r#"[[service]]
name = "a"
modules = ["identity", "catalog", "inventory", "cart", "payments", "notifications"]
[[function]]
module = "orders"
[[function]]
module = "orders"
trigger = "events""#;
        let schedule = |job: &str| {
            format!(
                "[[function]]\nmodule = \"orders\"\ntrigger = \"schedule\"\njob = \"{job}\"\nevery_ms = 1000\n"
            )
        };
        let sweep = schedule("expire_stale_orders");
        let summary = schedule("daily_sales_summary");
        let none = with_services(rest).unwrap_err().to_string();
        assert!(none.contains("expire_stale_orders"), "{none}");
        let no_summary = with_services(&format!("{rest}\n{sweep}")).unwrap_err().to_string();
        assert!(no_summary.contains("daily_sales_summary"), "{no_summary}");
        let unknown = with_services(&format!("{rest}\n{sweep}{summary}{}", schedule("bake_bread")))
            .unwrap_err()
            .to_string();
        assert!(
            unknown.contains("no job \"bake_bread\"") && unknown.contains(summary_name()),
            "{unknown}"
        );
        let both = with_services(&format!("{rest}\n{sweep}{summary}")).unwrap();
        let names: Vec<&str> = both.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["orders", "orders-events", "orders-expire-stale-orders", "orders-daily-sales-summary"]
        );
    }

    #[test]
    fn infra_urls() {
        let t = Topology::from_toml(
            "name = \"t\"\n[infra]\ndatabase = \"postgres://127.0.0.1/shop\"\nbus = \"nats://127.0.0.1:4222\"\n[[service]]\nname = \"a\"\nmodules = [\"identity\", \"catalog\", \"inventory\", \"cart\", \"orders\", \"payments\", \"notifications\"]",
        )
        .unwrap();
        assert_eq!(t.infra.database, Database::Postgres("postgres://127.0.0.1/shop".into()));
        assert_eq!(t.infra.bus, BusKind::Nats("nats://127.0.0.1:4222".into()));
        assert_eq!(t.infra.discovery, DiscoveryKind::Local, "discovery is chosen explicitly");
        let mut m = Topology::monolith();
        assert!(m.set_database("mysql://x").is_err());
        assert!(m.set_bus("kafka://x").is_err());
        assert!(m.set_discovery("consul://x").is_err());
        m.set_discovery("nats://127.0.0.1:4222").unwrap();
        assert_eq!(m.infra.discovery, DiscoveryKind::Nats("nats://127.0.0.1:4222".into()));
    }

    #[test]
    fn callees_are_other_services_only() {
        let ms = Topology::microservices();
        let names = |s: &str| ms.callees(s).iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        assert_eq!(names("orders"), ["cart"]);
        assert_eq!(names("inventory"), ["catalog"]);
        assert!(names("catalog").is_empty());
        assert!(Topology::monolith().callees("shop").is_empty(), "all local");
    }
}
