//! The placement plan: for a topology, every process that exists, what it hosts, and in
//! what order a supervisor starts them. A pure value computed once ([`Plan::of`]); the
//! supervisor and the test kit start exactly its processes instead of laying the cluster
//! out themselves.
//!
//! A process is started as the `microlith` binary with its [`Process::command`] and the
//! environment of [`crate::ShopConfig::child_env`]: the resolved configuration once, as a
//! value, never re-printed flag by flag.

use crate::{Module, ProcessRole, Topology, Trigger};

/// How a process comes to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Started by the supervisor (or the test kit) when the shop starts, and kept running.
    AtStart,
    /// Started on demand by the function host, one instance per concurrent invocation.
    OnDemand,
}

/// One process of the shop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// `cart-2`, `gateway`, or a function's name (its instances add a suffix).
    pub id: String,
    pub role: ProcessRole,
    pub start: Start,
    /// The modules whose code runs here (for a function: its module, whatever the trigger).
    pub modules: Vec<Module>,
    /// It is given the public listener (the gateway alone, or the first instance of the
    /// service the gateway runs in; every instance of that service runs the gateway code).
    pub public: bool,
    /// It runs the gateway's code (the public edge): the gateway alone, or every instance of
    /// the service the gateway runs in (only the first is given the public listener).
    pub runs_gateway: bool,
    /// It runs a function host (and so an event source and the schedules): the gateway's
    /// process, or every instance of the service the gateway runs in.
    pub hosts_functions: bool,
    /// It creates the admin account on a first start, so it alone is given the admin
    /// password: identity's first instance, or the function host when identity is a
    /// function (its instances get the password from the host).
    pub bootstraps_admin: bool,
    /// The `microlith` subcommand and arguments that run it: `service NAME --replica N`,
    /// `gateway`, or `function NAME`. The public listener's address is the launcher's to add
    /// (`--listen`), as only it knows where the shop is served.
    pub command: Vec<String>,
    /// The modules that run elsewhere and that its code calls: every module for a process
    /// that runs the gateway's code, else those its modules call ([`Module::calls`]).
    pub calls: Vec<Module>,
    /// The bus consumers it holds: its modules' in a service; in the process that hosts
    /// functions, also the event source of each events function (a function instance
    /// holds none: its events come by invocation).
    pub consumers: Vec<&'static str>,
    /// The internal routes it serves (its modules' [`Module::internal_paths`]; a function
    /// serves them through its invocations).
    pub internal_routes: Vec<&'static str>,
    /// The event types its bus consumers subscribe to.
    pub subscribes: Vec<&'static str>,
    /// The databases it opens, by name: each module's (`<data>/<name>.db` on SQLite, schema
    /// `<name>` on PostgreSQL), and [`TRACES_DATABASE`] where it runs the gateway.
    pub databases: Vec<&'static str>,
}

/// Every process of a topology, in start order: service instances first (readiness before
/// routing), then the gateway when it runs alone, then the functions the host starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub processes: Vec<Process>,
}

impl Plan {
    /// The plan of `topology` (validated by [`Topology::load`]).
    pub fn of(topology: &Topology) -> Plan {
        let identity_is_a_function =
            topology.functions.iter().any(|f| f.module == Module::Identity);
        let gateway_in = topology.gateway_in.as_deref();
        // The modules whose events the function host's event sources pull.
        let event_sources: Vec<Module> = topology
            .functions
            .iter()
            .filter(|f| f.trigger == Trigger::Events)
            .map(|f| f.module)
            .collect();
        let mut processes = Vec::new();
        for s in &topology.services {
            let with_gateway = gateway_in == Some(s.name.as_str());
            for replica in 1..=s.replicas {
                let role = ProcessRole::Service { name: s.name.clone(), replica };
                processes.push(Process {
                    id: role.instance_id(),
                    command: vec![
                        "service".into(),
                        s.name.clone(),
                        "--replica".into(),
                        replica.to_string(),
                    ],
                    databases: databases(&s.modules, with_gateway),
                    internal_routes: internal_routes(&s.modules),
                    calls: calls(&s.modules, with_gateway),
                    consumers: consumers(
                        &s.modules,
                        if with_gateway { &event_sources } else { &[] },
                    ),
                    subscribes: subscribes(
                        &s.modules,
                        if with_gateway { &event_sources } else { &[] },
                    ),
                    role,
                    start: Start::AtStart,
                    modules: s.modules.clone(),
                    public: with_gateway && replica == 1,
                    runs_gateway: with_gateway,
                    hosts_functions: with_gateway && !topology.functions.is_empty(),
                    bootstraps_admin: s.modules.contains(&Module::Identity)
                        || (with_gateway && identity_is_a_function),
                });
            }
        }
        if gateway_in.is_none() {
            processes.push(Process {
                id: ProcessRole::Gateway.instance_id(),
                role: ProcessRole::Gateway,
                start: Start::AtStart,
                modules: Vec::new(),
                public: true,
                runs_gateway: true,
                hosts_functions: !topology.functions.is_empty(),
                bootstraps_admin: identity_is_a_function,
                command: vec!["gateway".into()],
                databases: databases(&[], true),
                internal_routes: Vec::new(),
                calls: calls(&[], true),
                consumers: consumers(&[], &event_sources),
                subscribes: subscribes(&[], &event_sources),
            });
        }
        for f in &topology.functions {
            processes.push(Process {
                id: f.name.clone(),
                role: ProcessRole::Function { name: f.name.clone() },
                start: Start::OnDemand,
                modules: vec![f.module],
                public: false,
                runs_gateway: false,
                hosts_functions: false,
                bootstraps_admin: f.module == Module::Identity && f.trigger == Trigger::Http,
                command: vec!["function".into(), f.name.clone()],
                databases: databases(&[f.module], false),
                internal_routes: internal_routes(&[f.module]),
                calls: calls(&[f.module], false),
                consumers: Vec::new(),
                subscribes: Vec::new(),
            });
        }
        Plan { processes }
    }

    /// The processes a supervisor starts and keeps running, in order.
    pub fn at_start(&self) -> impl Iterator<Item = &Process> {
        self.processes.iter().filter(|p| p.start == Start::AtStart)
    }

    /// The entry of the process that runs as `role` (a function's instances all share
    /// their function's entry).
    pub fn process_of(&self, role: &ProcessRole) -> Option<&Process> {
        let id = match role {
            ProcessRole::Function { name } => name.clone(),
            other => other.instance_id(),
        };
        self.processes.iter().find(|p| p.id == id && p.role == *role)
    }

    /// The process with instance id `id`.
    pub fn process(&self, id: &str) -> Option<&Process> {
        self.processes.iter().find(|p| p.id == id)
    }
}

/// What a process hosting `modules` calls elsewhere (everything, if it runs the gateway's
/// code), in [`Module::ALL`] order.
fn calls(modules: &[Module], runs_gateway: bool) -> Vec<Module> {
    Module::ALL
        .into_iter()
        .filter(|m| !modules.contains(m))
        .filter(|m| runs_gateway || modules.iter().any(|own| own.calls().contains(m)))
        .collect()
}

/// The bus consumers of `modules`, then the event sources' (the same consumer names: a
/// module's events are pulled under its name wherever it runs).
fn consumers(modules: &[Module], event_sources: &[Module]) -> Vec<&'static str> {
    modules.iter().chain(event_sources).filter_map(|m| m.consumer()).map(|(name, _)| name).collect()
}

/// The event types the consumers of `modules` and of `event_sources` subscribe to.
fn subscribes(modules: &[Module], event_sources: &[Module]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for (_, types) in modules.iter().chain(event_sources).filter_map(|m| m.consumer()) {
        for t in types {
            if !out.contains(t) {
                out.push(t);
            }
        }
    }
    out
}

/// The internal routes of `modules`.
fn internal_routes(modules: &[Module]) -> Vec<&'static str> {
    modules.iter().flat_map(|m| m.internal_paths()).copied().collect()
}

/// The databases of `modules`: each module's own (payments also keeps the test card
/// provider's); and the trace store's where the gateway runs.
fn databases(modules: &[Module], runs_gateway: bool) -> Vec<&'static str> {
    let mut out = Vec::new();
    for m in modules {
        out.push(m.as_str());
        if *m == Module::Payments {
            out.push(PROVIDER_DATABASE);
        }
    }
    if runs_gateway {
        out.push(TRACES_DATABASE);
    }
    out
}

/// The test card provider's database, beside payments'.
pub const PROVIDER_DATABASE: &str = "card-provider";
/// The embedded broker's database: a SQLite file in the data directory, whatever the
/// modules use.
pub const BUS_DATABASE: &str = "bus";
/// The built-in trace store, in the data directory of the process that runs the gateway:
/// a SQLite file whatever the modules use.
pub const TRACES_DATABASE: &str = "traces";

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(plan: &Plan, start: Start) -> Vec<&str> {
        plan.processes.iter().filter(|p| p.start == start).map(|p| p.id.as_str()).collect()
    }

    #[test]
    fn each_preset_has_its_processes() {
        let monolith = Plan::of(&Topology::load("monolith").unwrap());
        assert_eq!(ids(&monolith, Start::AtStart), ["shop-1"]);
        let shop = &monolith.processes[0];
        assert!(shop.public && shop.bootstraps_admin && !shop.hosts_functions);
        assert_eq!(shop.modules.len(), 7, "every module in the one process");
        assert_eq!(shop.databases.len(), 9, "each module's, the card provider's, the traces'");
        assert!(shop.databases.contains(&TRACES_DATABASE));

        let micro = Plan::of(&Topology::load("microservices").unwrap());
        let started = ids(&micro, Start::AtStart);
        assert_eq!(started.len(), 8, "seven services and the gateway: {started:?}");
        assert_eq!(started.last(), Some(&"gateway"), "the gateway starts last");
        let admins: Vec<&str> =
            micro.processes.iter().filter(|p| p.bootstraps_admin).map(|p| p.id.as_str()).collect();
        assert_eq!(admins, ["identity-1"]);
        let gateway = micro.process("gateway").unwrap();
        assert!(gateway.public && gateway.modules.is_empty());
        assert_eq!(gateway.databases, [TRACES_DATABASE], "the trace store only");
        assert_eq!(gateway.command, ["gateway"]);
        assert_eq!(gateway.calls.len(), 7, "the public edge calls every module");
        assert!(gateway.consumers.is_empty(), "no functions, so no event sources");
        let orders = micro.process("orders-1").unwrap();
        assert_eq!(orders.calls, [Module::Cart]);
        assert_eq!(orders.consumers, ["orders"]);
        let catalog = micro.process("catalog-1").unwrap();
        assert!(catalog.calls.is_empty() && catalog.consumers.is_empty());
        assert!(catalog.subscribes.is_empty());
        assert_eq!(
            catalog.internal_routes,
            ["list", "get", "create", "update", "quote"].map(|m| format!("/internal/catalog/{m}"))
        );
        assert!(gateway.internal_routes.is_empty(), "the gateway serves no module");
        assert_eq!(orders.subscribes, orders::SUBSCRIBES, "what its consumer reads");
        assert!(monolith.processes[0].calls.is_empty(), "the monolith calls nothing elsewhere");

        let serverless = Plan::of(&Topology::load("serverless").unwrap());
        assert_eq!(ids(&serverless, Start::AtStart), ["gateway"]);
        let gateway = serverless.process("gateway").unwrap();
        assert!(gateway.hosts_functions && gateway.bootstraps_admin, "identity is a function");
        assert_eq!(
            gateway.consumers,
            ["inventory", "cart", "orders", "payments", "notifications"],
            "an event source per events function"
        );
        let orders = serverless.process("orders").unwrap();
        assert!(orders.consumers.is_empty(), "its events come by invocation");
        assert!(orders.subscribes.is_empty());
        assert_eq!(orders.internal_routes, orders_api::OrdersClient::INTERNAL_PATHS);
        for event in orders::SUBSCRIBES.iter().chain(notifications::SUBSCRIBES) {
            assert!(gateway.subscribes.contains(event), "its event sources read {event}");
        }
        let unique: std::collections::BTreeSet<_> = gateway.subscribes.iter().collect();
        assert_eq!(unique.len(), gateway.subscribes.len(), "each event type once");
        assert_eq!(orders.calls, [Module::Cart]);
        let on_demand = ids(&serverless, Start::OnDemand);
        assert!(on_demand.contains(&"orders-events") && on_demand.contains(&"identity"));
        assert!(serverless.process("identity").unwrap().bootstraps_admin);

        let hybrid = Plan::of(&Topology::load("hybrid").unwrap());
        assert_eq!(ids(&hybrid, Start::AtStart), ["core-1", "payments-1"]);
        let core = hybrid.process("core-1").unwrap();
        assert!(core.public && core.hosts_functions && core.bootstraps_admin);
        assert_eq!(core.calls, [Module::Payments, Module::Notifications]);
        assert_eq!(core.consumers, ["inventory", "cart", "orders", "notifications"]);
        assert_eq!(hybrid.process("payments-1").unwrap().calls, Vec::<Module>::new());
        assert_eq!(ids(&hybrid, Start::OnDemand), ["notifications", "notifications-events"]);
    }

    #[test]
    fn replicas_and_a_gateway_in_a_service() {
        let file = r#"
name = "custom"
[gateway]
in_service = "front"
[[service]]
name = "front"
modules = ["identity", "catalog", "cart"]
replicas = 2
[[service]]
name = "back"
modules = ["inventory", "orders", "payments"]
replicas = 3
[[function]]
module = "notifications"
[[function]]
module = "notifications"
trigger = "events"
"#;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("custom.toml");
        std::fs::write(&path, file).unwrap();
        let plan = Plan::of(&Topology::load(path.to_str().unwrap()).unwrap());
        assert_eq!(
            ids(&plan, Start::AtStart),
            ["front-1", "front-2", "back-1", "back-2", "back-3"]
        );
        let public: Vec<&str> =
            plan.processes.iter().filter(|p| p.public).map(|p| p.id.as_str()).collect();
        assert_eq!(public, ["front-1"], "one gateway, in the first instance");
        let host: Vec<&str> =
            plan.processes.iter().filter(|p| p.hosts_functions).map(|p| p.id.as_str()).collect();
        assert_eq!(host, ["front-1", "front-2"], "every instance of the gateway's service");
        let edge: Vec<&str> =
            plan.processes.iter().filter(|p| p.runs_gateway).map(|p| p.id.as_str()).collect();
        assert_eq!(edge, ["front-1", "front-2"]);
        let back2 = ProcessRole::Service { name: "back".into(), replica: 2 };
        assert_eq!(plan.process_of(&back2).map(|p| p.id.as_str()), Some("back-2"));
        let back4 = ProcessRole::Service { name: "back".into(), replica: 4 };
        assert!(plan.process_of(&back4).is_none(), "back has three replicas");
        assert!(plan.process_of(&ProcessRole::Gateway).is_none(), "the gateway runs in front");
        let function = ProcessRole::Function { name: "notifications-events".into() };
        assert_eq!(
            plan.process_of(&function).map(|p| p.modules.clone()),
            Some(vec![Module::Notifications])
        );
        assert!(plan.process("front-2").unwrap().bootstraps_admin, "both identity instances");
        let back2 = plan.process("back-2").unwrap();
        assert_eq!(back2.role, ProcessRole::Service { name: "back".into(), replica: 2 });
        assert_eq!(back2.command, ["service", "back", "--replica", "2"]);
        assert_eq!(back2.databases, ["inventory", "orders", "payments", "card-provider"]);
        let events = plan.process("notifications-events").unwrap();
        assert_eq!(events.command, ["function", "notifications-events"]);
        assert_eq!(events.databases, ["notifications"]);
    }
}
