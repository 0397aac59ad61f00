//! Placement: for each module, either the implementation built here (with the clients of
//! the modules it calls) or a remote client to the service that hosts it. This is the one
//! place that knows where a module runs; modules and callers only ever see a client.

use std::sync::Arc;

use anyhow::Context as _;
use bus::{Outbox, Subscription};
use cart_api::CartClient;
use catalog_api::CatalogClient;
use identity::{AdminBootstrap, Identity};
use identity_api::IdentityClient;
use inventory_api::InventoryClient;
use notifications_api::NotificationsClient;
use orders_api::OrdersClient;
use payments_api::PaymentsClient;
use store::Db;
use utoipa_axum::router::OpenApiRouter;

use crate::edges::{Targets, with_faults};
use crate::storage::open_db;
use crate::topology::Placement;
use crate::{Module, ShopConfig};

/// What a process needs to call modules placed elsewhere.
pub(crate) struct Remotes {
    http: reqwest::Client,
    trust: crate::Trust,
    config: ShopConfig,
    functions: Arc<dyn rpc::Invoker>,
}

impl Remotes {
    pub(crate) fn new(
        config: &ShopConfig,
        trust: crate::Trust,
        functions: Arc<dyn rpc::Invoker>,
    ) -> Remotes {
        Remotes { http: rpc::http_pool(), trust, config: config.clone(), functions }
    }

    fn remote(&self, module: Module) -> rpc::Remote {
        // The transport's ceiling; the caller's edge gives each try its own, shorter one.
        let timeout = self.config.topology.policies.for_target(module).timeout;
        match self.config.topology.placement_of(module) {
            Placement::Service(s) => rpc::Remote::new(
                self.http.clone(),
                &s.name,
                self.config.registry.endpoints(&s.name),
                self.trust.issuer.clone(),
                timeout,
            ),
            Placement::Function(f) => rpc::Remote::function(
                &f.name,
                self.functions.clone(),
                self.trust.issuer.clone(),
                timeout,
            ),
        }
    }

    pub(crate) fn peers(&self) -> crate::system::Peers {
        crate::system::Peers { http: self.http.clone(), issuer: self.trust.issuer.clone() }
    }

    pub(crate) fn verifier(&self, service: &str) -> rpc::CredentialVerifier {
        self.trust.verifier(service)
    }

    pub(crate) fn trust(&self) -> &crate::Trust {
        &self.trust
    }
}

/// A client for every module, however placed.
pub(crate) struct Clients {
    pub(crate) identity: IdentityClient,
    pub(crate) catalog: CatalogClient,
    pub(crate) inventory: InventoryClient,
    pub(crate) cart: CartClient,
    pub(crate) orders: OrdersClient,
    pub(crate) payments: PaymentsClient,
    pub(crate) notifications: NotificationsClient,
}

impl Clients {
    /// The same clients, each through the edge from `caller` to its module.
    pub(crate) fn as_called_by(&self, caller: &str, targets: &Targets) -> Clients {
        let edge = |m: Module| targets.edge(caller, m);
        Clients {
            identity: self.identity.clone().through(edge(Module::Identity)),
            catalog: self.catalog.clone().through(edge(Module::Catalog)),
            inventory: self.inventory.clone().through(edge(Module::Inventory)),
            cart: self.cart.clone().through(edge(Module::Cart)),
            orders: self.orders.clone().through(edge(Module::Orders)),
            payments: self.payments.clone().through(edge(Module::Payments)),
            notifications: self.notifications.clone().through(edge(Module::Notifications)),
        }
    }

    /// Every module's public HTTP adapter, each calling its module through its client.
    pub(crate) fn public_routes(&self, products: catalog_api::http::ProductCache) -> OpenApiRouter {
        identity_api::http::router(self.identity.clone())
            .merge(catalog_api::http::router(self.catalog.clone(), products))
            .merge(inventory_api::http::router(self.inventory.clone()))
            .merge(cart_api::http::router(self.cart.clone()))
            .merge(orders_api::http::router(self.orders.clone()))
            .merge(payments_api::http::router(self.payments.clone()))
            .merge(notifications_api::http::router(self.notifications.clone()))
    }
}

/// The modules of this process, built and wired.
pub(crate) struct Wired {
    pub(crate) clients: Clients,
    pub(crate) local: Vec<Module>,
    pub(crate) subscriptions: Vec<Subscription>,
    pub(crate) outboxes: Vec<Outbox>,
    /// The local modules' jobs ([`bus::Job`]).
    pub(crate) jobs: Vec<Arc<dyn bus::Job>>,
    pub(crate) admin: Option<AdminBootstrap>,
    pub(crate) dbs: Vec<(&'static str, Db)>,
}

impl Wired {
    /// Builds this process's modules. Each local module is served through its callee edge
    /// (faults aimed at it); each module it calls is reached through the edge from it.
    pub(crate) async fn build(
        config: &ShopConfig,
        local: &[Module],
        remotes: Option<&Remotes>,
        targets: &Targets,
    ) -> anyhow::Result<Wired> {
        let here = |m: Module| local.contains(&m);
        let callee = |m: Module| targets.callee(m);
        let from = |caller: Module, m: Module| targets.edge(caller.as_str(), m);
        let faulty = |s: Subscription, m: Module| with_faults(s, m, config.faults.clone());
        let remote = |m: Module| {
            remotes.map(|r| r.remote(m)).with_context(|| {
                format!("module {m} is not in this process and the placement has no remote calls")
            })
        };
        let dir = &config.data_dir;
        let database = &config.topology.infra.database;
        let mut dbs: Vec<(&'static str, Db)> = Vec::new();
        let mut db = async |name: &'static str| -> anyhow::Result<Db> {
            let db = open_db(database, dir, name).await?;
            dbs.push((name, db.clone()));
            Ok(db)
        };
        let mut subscriptions = Vec::new();
        let mut outboxes = Vec::new();
        let mut jobs: Vec<Arc<dyn bus::Job>> = Vec::new();

        let (identity, admin) = if here(Module::Identity) {
            let keys = crate::keys::FileKeys::open(dir)?;
            let imp = Identity::new(db("identity").await?, keys, config.identity.clone()).await?;
            // A function instance starts often: it creates the admin if missing, but does
            // not hash its password again on every cold start.
            let is_function = matches!(config.role, crate::ProcessRole::Function { .. });
            let admin = if is_function && imp.has_user(&config.admin.email).await? {
                AdminBootstrap::Existing
            } else {
                imp.bootstrap_admin(&config.admin.email, config.admin.password.clone())
                    .await
                    .context("cannot create the admin account")?
            };
            outboxes.push(imp.outbox());
            (IdentityClient::local(imp).through(callee(Module::Identity)), Some(admin))
        } else {
            (IdentityClient::remote(remote(Module::Identity)?), None)
        };
        let catalog = if here(Module::Catalog) {
            CatalogClient::local(catalog::Catalog::new(db("catalog").await?).await?)
                .through(callee(Module::Catalog))
        } else {
            CatalogClient::remote(remote(Module::Catalog)?)
        };
        let inventory = if here(Module::Inventory) {
            let catalog = catalog.clone().through(from(Module::Inventory, Module::Catalog));
            let imp = inventory::Inventory::new(db("inventory").await?, catalog).await?;
            subscriptions.push(faulty(imp.subscription(), Module::Inventory));
            outboxes.push(imp.outbox());
            InventoryClient::from_arc(imp).through(callee(Module::Inventory))
        } else {
            InventoryClient::remote(remote(Module::Inventory)?)
        };
        let cart = if here(Module::Cart) {
            let catalog = catalog.clone().through(from(Module::Cart, Module::Catalog));
            let imp = cart::Cart::new(db("cart").await?, catalog).await?;
            subscriptions.push(faulty(imp.subscription(), Module::Cart));
            CartClient::from_arc(imp).through(callee(Module::Cart))
        } else {
            CartClient::remote(remote(Module::Cart)?)
        };
        let orders = if here(Module::Orders) {
            let cart = cart.clone().through(from(Module::Orders, Module::Cart));
            let imp = orders::Orders::new(db("orders").await?, cart, config.orders.clone()).await?;
            subscriptions.push(faulty(imp.subscription(), Module::Orders));
            outboxes.push(imp.outbox());
            jobs.extend(imp.jobs());
            OrdersClient::from_arc(imp).through(callee(Module::Orders))
        } else {
            OrdersClient::remote(remote(Module::Orders)?)
        };
        let payments = if here(Module::Payments) {
            // The simulated card provider stands for an external service: a database of
            // its own, next to payments.
            let provider =
                payments::CardProvider::new(db(crate::plan::PROVIDER_DATABASE).await?).await?;
            let imp = payments::Payments::new(db("payments").await?, provider).await?;
            subscriptions.push(faulty(imp.subscription(), Module::Payments));
            outboxes.push(imp.outbox());
            PaymentsClient::from_arc(imp).through(callee(Module::Payments))
        } else {
            PaymentsClient::remote(remote(Module::Payments)?)
        };
        let notifications = if here(Module::Notifications) {
            let imp = notifications::Notifications::new(db("notifications").await?).await?;
            subscriptions.push(faulty(imp.subscription(), Module::Notifications));
            NotificationsClient::from_arc(imp).through(callee(Module::Notifications))
        } else {
            NotificationsClient::remote(remote(Module::Notifications)?)
        };
        Ok(Wired {
            clients: Clients {
                identity,
                catalog,
                inventory,
                cart,
                orders,
                payments,
                notifications,
            },
            local: local.to_vec(),
            subscriptions,
            outboxes,
            jobs,
            admin,
            dbs,
        })
    }

    /// The internal routes of this process's modules, behind the credential guard.
    pub(crate) fn internal_routes(
        &self,
        verifier: rpc::CredentialVerifier,
        signer: rpc::CredentialIssuer,
    ) -> axum::Router {
        let c = &self.clients;
        let mut routes = axum::Router::new();
        for m in &self.local {
            routes = routes.merge(match m {
                Module::Identity => identity_api::internal_routes(c.identity.clone()),
                Module::Catalog => catalog_api::internal_routes(c.catalog.clone()),
                Module::Inventory => inventory_api::internal_routes(c.inventory.clone()),
                Module::Cart => cart_api::internal_routes(c.cart.clone()),
                Module::Orders => orders_api::internal_routes(c.orders.clone()),
                Module::Payments => payments_api::internal_routes(c.payments.clone()),
                Module::Notifications => {
                    notifications_api::internal_routes(c.notifications.clone())
                }
            });
        }
        rpc::internal::guard(routes, verifier, signer)
    }
}
