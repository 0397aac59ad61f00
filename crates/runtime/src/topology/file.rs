//! The topology file as written: its TOML shape, and the checks that turn it into a
//! [`Topology`] (placements, replicas, function triggers and bounds, policies).

use std::time::Duration;

use anyhow::bail;
use serde::Deserialize;

use crate::policy::{Policies, PolicyFile};

use super::{
    BusKind, Database, DiscoveryKind, Function, Infra, MAX_REPLICAS, Module, Service, Topology,
    Trigger,
};

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
    #[serde(rename = "function", default)]
    functions: Vec<FunctionFile>,
    policy: Option<PolicyFile>,
    prices: Option<function_host::Prices>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FunctionFile {
    module: Module,
    /// Default: the module's name, with `-events` for an events trigger.
    name: Option<String>,
    #[serde(default)]
    trigger: TriggerFile,
    max_concurrency: Option<u32>,
    max_queue: Option<u32>,
    idle_timeout_ms: Option<u64>,
    timeout_ms: Option<u64>,
    memory_mb: Option<u32>,
    arch: Option<function_host::Arch>,
    /// For `trigger = "schedule"`: which job, and how often.
    job: Option<String>,
    every_ms: Option<u64>,
}

#[derive(Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum TriggerFile {
    #[default]
    Http,
    Events,
    Schedule,
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

/// Bounds that keep one function from taking the machine.
const MAX_FUNCTION_CONCURRENCY: u32 = 256;

impl Topology {
    pub fn from_toml(text: &str) -> anyhow::Result<Topology> {
        let file: File = toml::from_str(text)?;
        let database = parse_database(file.infra.database.as_deref())?;
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
        let functions =
            file.functions.into_iter().map(Function::from_file).collect::<anyhow::Result<_>>()?;
        let topology = Topology {
            name: file.name,
            infra: Infra { database, bus, discovery },
            gateway_in: file.gateway.in_service,
            services,
            functions,
            prices: file.prices.unwrap_or_default(),
            policies: Policies::from_file(file.policy)?,
        };
        topology.validate()?;
        Ok(topology)
    }

    pub(crate) fn validate(&self) -> anyhow::Result<()> {
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
        for (i, f) in self.functions.iter().enumerate() {
            if !name_ok(&f.name) || f.name == "gateway" {
                bail!(
                    "function name {:?} must be 1 to 40 of a-z, 0-9, - (and not `gateway`)",
                    f.name
                );
            }
            if self.services.iter().any(|s| s.name == f.name)
                || self.functions[..i].iter().any(|o| o.name == f.name)
            {
                bail!("two services or functions are named {:?}", f.name);
            }
            f.validate()?;
            if f.trigger == Trigger::Http {
                if let Some((_, other)) = placed.iter().find(|(p, _)| *p == f.module) {
                    bail!("module {} is placed twice (in {other:?} and {:?})", f.module, f.name);
                }
                placed.push((f.module, &f.name));
            }
        }
        for f in self.functions.iter().filter(|f| f.trigger != Trigger::Http) {
            if !self.is_function(f.module) {
                bail!(
                    "function {:?}: module {} runs in a service, which handles its events and jobs itself",
                    f.name,
                    f.module
                );
            }
        }
        // A module run as a function has no process of its own to run its jobs in.
        for m in Module::ALL.into_iter().filter(|m| self.is_function(*m)) {
            for job in m.jobs() {
                let scheduled = self.functions.iter().any(|f| {
                    f.module == m
                        && matches!(&f.trigger, Trigger::Schedule { job: j, .. } if j == job)
                });
                if !scheduled {
                    bail!(
                        "module {m} runs as a function: give it a [[function]] with trigger = \"schedule\" and job = \"{job}\", or that job never runs"
                    );
                }
            }
        }
        for m in Module::ALL {
            let events =
                self.functions.iter().filter(|f| f.module == m && f.trigger == Trigger::Events);
            if self.is_function(m) && m.handles_events() && events.count() != 1 {
                bail!(
                    "module {m} runs as a function and handles events: give it one [[function]] with trigger = \"events\""
                );
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
}

impl Function {
    fn from_file(f: FunctionFile) -> anyhow::Result<Function> {
        let trigger = match (f.trigger, f.job, f.every_ms) {
            (TriggerFile::Http, None, None) => Trigger::Http,
            (TriggerFile::Events, None, None) => Trigger::Events,
            (TriggerFile::Schedule, Some(job), Some(ms)) => {
                if !f.module.jobs().contains(&job.as_str()) {
                    bail!(
                        "module {} has no job {job:?}; its jobs: {}",
                        f.module,
                        if f.module.jobs().is_empty() {
                            "none".into()
                        } else {
                            f.module.jobs().join(", ")
                        }
                    );
                }
                if !(100..=86_400_000).contains(&ms) {
                    bail!("every_ms must be 100 to 86400000");
                }
                Trigger::Schedule { job, every: Duration::from_millis(ms) }
            }
            (TriggerFile::Schedule, _, _) => {
                bail!("a function with trigger = \"schedule\" needs job and every_ms")
            }
            _ => bail!("job and every_ms are for trigger = \"schedule\" only"),
        };
        let defaults = function_host::FunctionConfig::new("");
        let name = f.name.unwrap_or_else(|| match &trigger {
            Trigger::Http => f.module.as_str().to_owned(),
            Trigger::Events => format!("{}-events", f.module),
            Trigger::Schedule { job, .. } => format!("{}-{}", f.module, job.replace('_', "-")),
        });
        Ok(Function {
            name,
            module: f.module,
            trigger,
            max_concurrency: f.max_concurrency.unwrap_or(defaults.max_concurrency),
            max_queue: f.max_queue.unwrap_or(defaults.max_queue),
            idle_timeout: f.idle_timeout_ms.map_or(defaults.idle_timeout, Duration::from_millis),
            timeout: f.timeout_ms.map_or(defaults.timeout, Duration::from_millis),
            memory_mb: f.memory_mb.unwrap_or(defaults.memory_mb),
            arch: f.arch.unwrap_or_default(),
        })
    }

    fn validate(&self) -> anyhow::Result<()> {
        let n = &self.name;
        if !(1..=MAX_FUNCTION_CONCURRENCY).contains(&self.max_concurrency) {
            bail!("function {n:?}: max_concurrency must be 1 to {MAX_FUNCTION_CONCURRENCY}");
        }
        if self.max_queue > 10_000 {
            bail!("function {n:?}: max_queue must be at most 10000");
        }
        if !(Duration::from_millis(10)..=Duration::from_secs(3600)).contains(&self.idle_timeout) {
            bail!("function {n:?}: idle_timeout_ms must be 10 to 3600000");
        }
        if !(Duration::from_millis(10)..=Duration::from_secs(900)).contains(&self.timeout) {
            bail!("function {n:?}: timeout_ms must be 10 to 900000 (Lambda's 15 minutes)");
        }
        if !(128..=10_240).contains(&self.memory_mb) {
            bail!("function {n:?}: memory_mb must be 128 to 10240, as on Lambda");
        }
        Ok(())
    }
}

pub(super) fn parse_discovery(s: Option<&str>) -> anyhow::Result<DiscoveryKind> {
    match s {
        None | Some("local") => Ok(DiscoveryKind::Local),
        Some(url) if url.starts_with("nats://") => Ok(DiscoveryKind::Nats(url.to_owned())),
        Some(other) => bail!("infra.discovery must be \"local\" or nats://…, not {other:?}"),
    }
}

pub(super) fn parse_database(s: Option<&str>) -> anyhow::Result<Database> {
    match s {
        None | Some("sqlite") => Ok(Database::Sqlite),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Database::Postgres(url.to_owned()))
        }
        Some(other) => bail!("infra.database must be \"sqlite\" or postgres://…, not {other:?}"),
    }
}

pub(super) fn parse_bus(s: Option<&str>) -> anyhow::Result<BusKind> {
    match s {
        None | Some("embedded") => Ok(BusKind::Embedded),
        Some(url) if url.starts_with("nats://") => Ok(BusKind::Nats(url.to_owned())),
        Some(other) => bail!("infra.bus must be \"embedded\" or nats://…, not {other:?}"),
    }
}
