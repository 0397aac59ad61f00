//! The topology file: which module runs in which process, how many instances of each, and
//! which database, bus and discovery they use. Two presets are built in (`monolith`, the
//! default, and `microservices`); any other placement is a TOML file of the same shape.

use std::fmt;
use std::path::Path;

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::policy::{Policies, PolicyFile};

/// The modules of the shop, in the order they are built (each after those it calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Module {
    Identity,
    Catalog,
    Inventory,
    Cart,
    Orders,
    Payments,
    Notifications,
}

impl Module {
    pub const ALL: [Module; 7] = [
        Module::Identity,
        Module::Catalog,
        Module::Inventory,
        Module::Cart,
        Module::Orders,
        Module::Payments,
        Module::Notifications,
    ];

    /// The modules whose contracts this one calls (events aside).
    pub fn calls(self) -> &'static [Module] {
        match self {
            Module::Inventory | Module::Cart => &[Module::Catalog],
            Module::Orders => &[Module::Cart],
            Module::Identity | Module::Catalog | Module::Payments | Module::Notifications => &[],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Module::Identity => "identity",
            Module::Catalog => "catalog",
            Module::Inventory => "inventory",
            Module::Cart => "cart",
            Module::Orders => "orders",
            Module::Payments => "payments",
            Module::Notifications => "notifications",
        }
    }
}

impl fmt::Display for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where modules keep their data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// One SQLite file per module in the data directory.
    Sqlite,
    /// One schema per module in this PostgreSQL database (created if missing).
    Postgres(String),
}

/// What carries events between modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusKind {
    /// A broker in a SQLite file of the data directory, shared by the local processes.
    Embedded,
    /// NATS JetStream at this URL.
    Nats(String),
}

/// Where processes find each other's instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryKind {
    /// The local supervisor's registry (a file in the data directory).
    Local,
    /// A NATS JetStream key-value bucket with TTL heartbeats, at this URL.
    Nats(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Infra {
    pub database: Database,
    pub bus: BusKind,
    pub discovery: DiscoveryKind,
}

/// One kind of process: the modules it hosts and how many copies run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub modules: Vec<Module>,
    pub replicas: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    pub name: String,
    pub infra: Infra,
    /// The service whose process also runs the public gateway; `None`: a process of its own.
    pub gateway_in: Option<String>,
    pub services: Vec<Service>,
    /// How calls between modules are made: timeouts, retries, breakers, limits.
    pub policies: Policies,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: String,
    #[serde(default)]
    infra: InfraFile,
    #[serde(default)]
    gateway: GatewayFile,
    #[serde(rename = "service", default)]
    services: Vec<ServiceFile>,
    policy: Option<PolicyFile>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct InfraFile {
    database: Option<String>,
    bus: Option<String>,
    discovery: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct GatewayFile {
    in_service: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceFile {
    name: String,
    modules: Vec<Module>,
    replicas: Option<u16>,
}

pub const MAX_REPLICAS: u16 = 16;

impl Topology {
    pub const PRESETS: &'static [&'static str] = &["monolith", "microservices"];

    pub fn monolith() -> Topology {
        Self::from_toml(include_str!("../topologies/monolith.toml"))
            .unwrap_or_else(|e| unreachable!("the monolith preset is valid: {e:#}"))
    }

    pub fn microservices() -> Topology {
        Self::from_toml(include_str!("../topologies/microservices.toml"))
            .unwrap_or_else(|e| unreachable!("the microservices preset is valid: {e:#}"))
    }

    /// A preset name, or the path of a TOML file.
    pub fn load(name_or_path: &str) -> anyhow::Result<Topology> {
        match name_or_path {
            "monolith" => Ok(Self::monolith()),
            "microservices" => Ok(Self::microservices()),
            "serverless" | "hybrid" => bail!(
                "topology `{name_or_path}` is not available yet; presets: {}, or a TOML file",
                Self::PRESETS.join(", ")
            ),
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

    pub fn from_toml(text: &str) -> anyhow::Result<Topology> {
        let file: File = toml::from_str(text)?;
        let database = match file.infra.database.as_deref() {
            None | Some("sqlite") => Database::Sqlite,
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Database::Postgres(url.to_owned())
            }
            Some(other) => {
                bail!("infra.database must be \"sqlite\" or postgres://…, not {other:?}")
            }
        };
        let bus = parse_bus(file.infra.bus.as_deref())?;
        let discovery = parse_discovery(file.infra.discovery.as_deref())?;
        let services = file
            .services
            .into_iter()
            .map(|s| Service {
                name: s.name,
                modules: s.modules,
                replicas: s.replicas.unwrap_or(1),
            })
            .collect();
        let topology = Topology {
            name: file.name,
            infra: Infra { database, bus, discovery },
            gateway_in: file.gateway.in_service,
            services,
            policies: Policies::from_file(file.policy)?,
        };
        topology.validate()?;
        Ok(topology)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let name_ok = |s: &str| {
            (1..=40).contains(&s.len())
                && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if !name_ok(&self.name) {
            bail!("name must be 1 to 40 characters of a-z, 0-9 and -");
        }
        let mut placed: Vec<(Module, &str)> = Vec::new();
        for (i, s) in self.services.iter().enumerate() {
            if !name_ok(&s.name) || s.name == "gateway" {
                bail!(
                    "service name {:?} must be 1 to 40 of a-z, 0-9, - (and not `gateway`)",
                    s.name
                );
            }
            if self.services[..i].iter().any(|o| o.name == s.name) {
                bail!("two services are named {:?}", s.name);
            }
            if s.modules.is_empty() {
                bail!("service {:?} hosts no module", s.name);
            }
            if !(1..=MAX_REPLICAS).contains(&s.replicas) {
                bail!("service {:?}: replicas must be 1 to {MAX_REPLICAS}", s.name);
            }
            for m in &s.modules {
                if let Some((_, other)) = placed.iter().find(|(p, _)| p == m) {
                    bail!("module {m} is placed twice (in {other:?} and {:?})", s.name);
                }
                placed.push((*m, &s.name));
            }
        }
        let missing: Vec<&str> = Module::ALL
            .iter()
            .filter(|m| !placed.iter().any(|(p, _)| p == *m))
            .map(|m| m.as_str())
            .collect();
        if !missing.is_empty() {
            bail!("every module must be placed; missing: {}", missing.join(", "));
        }
        if let Some(g) = &self.gateway_in
            && !self.services.iter().any(|s| &s.name == g)
        {
            bail!("gateway.in_service names {g:?}, which is not a service");
        }
        Ok(())
    }

    /// The service hosting `module`.
    pub fn service_of(&self, module: Module) -> &Service {
        self.services
            .iter()
            .find(|s| s.modules.contains(&module))
            .unwrap_or_else(|| unreachable!("validated: every module is placed"))
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// True when everything runs in one process, so nothing is ever called remotely.
    pub fn is_single_process(&self) -> bool {
        matches!(self.services.as_slice(), [only] if only.replicas == 1 && self.gateway_in.as_deref() == Some(only.name.as_str()))
    }

    pub fn set_database(&mut self, url: &str) -> anyhow::Result<()> {
        self.infra.database = match url {
            "sqlite" => Database::Sqlite,
            u if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Database::Postgres(u.to_owned())
            }
            other => bail!("--database must be \"sqlite\" or postgres://…, not {other:?}"),
        };
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

    /// The other services that `service`'s modules call.
    pub fn callees(&self, service: &str) -> Vec<&Service> {
        let Some(own) = self.service(service) else { return Vec::new() };
        let mut out: Vec<&Service> = Vec::new();
        for callee in own.modules.iter().flat_map(|m| m.calls()) {
            let s = self.service_of(*callee);
            if s.name != own.name && !out.iter().any(|o| o.name == s.name) {
                out.push(s);
            }
        }
        out
    }
}

fn parse_discovery(s: Option<&str>) -> anyhow::Result<DiscoveryKind> {
    match s {
        None | Some("local") => Ok(DiscoveryKind::Local),
        Some(url) if url.starts_with("nats://") => Ok(DiscoveryKind::Nats(url.to_owned())),
        Some(other) => bail!("infra.discovery must be \"local\" or nats://…, not {other:?}"),
    }
}

fn parse_bus(s: Option<&str>) -> anyhow::Result<BusKind> {
    match s {
        None | Some("embedded") => Ok(BusKind::Embedded),
        Some(url) if url.starts_with("nats://") => Ok(BusKind::Nats(url.to_owned())),
        Some(other) => bail!("infra.bus must be \"embedded\" or nats://…, not {other:?}"),
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
    fn presets() {
        let m = Topology::load("monolith").unwrap();
        assert!(m.is_single_process());
        assert_eq!(m.service_of(Module::Payments).name, "shop");
        let ms = Topology::load("microservices").unwrap();
        assert!(!ms.is_single_process());
        assert_eq!(ms.services.len(), 7);
        assert_eq!(ms.gateway_in, None);
        assert_eq!(ms.infra.discovery, DiscoveryKind::Local);
        let catalog = ms.policies.for_target(Module::Catalog).timeout;
        assert_eq!(catalog, std::time::Duration::from_secs(1), "a slow catalog falls back");
        let e = Topology::load("serverless").unwrap_err().to_string();
        assert!(e.contains("not available yet"), "{e}");
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
