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

use crate::shop::open_db;
use crate::{Module, ShopConfig, load_or_create_signing_key};

/// What a process needs to call modules placed elsewhere.
pub(crate) struct Remotes {
    http: reqwest::Client,
    issuer: rpc::CredentialIssuer,
    secret: rpc::ClusterSecret,
    config: ShopConfig,
}

impl Remotes {
    pub(crate) fn new(config: &ShopConfig, secret: rpc::ClusterSecret) -> Remotes {
        Remotes {
            http: rpc::http_pool(),
            issuer: rpc::CredentialIssuer::new(&secret, &config.role.instance_id()),
            secret,
            config: config.clone(),
        }
    }

    fn remote(&self, module: Module) -> rpc::Remote {
        let service = &self.config.topology.service_of(module).name;
        rpc::Remote::new(
            self.http.clone(),
            service,
            self.config.registry.endpoints(service),
            self.issuer.clone(),
            self.config.call_timeout,
        )
    }

    pub(crate) fn verifier(&self, service: &str) -> rpc::CredentialVerifier {
        rpc::CredentialVerifier::new(&self.secret, service)
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
    /// Every module's public HTTP adapter, each calling its module through its client.
    pub(crate) fn public_routes(&self) -> OpenApiRouter {
        identity_api::http::router(self.identity.clone())
            .merge(catalog_api::http::router(self.catalog.clone()))
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
    pub(crate) orders: Option<Arc<orders::Orders>>,
    pub(crate) admin: Option<AdminBootstrap>,
    pub(crate) dbs: Vec<(&'static str, Db)>,
}

impl Wired {
    pub(crate) async fn build(
        config: &ShopConfig,
        local: &[Module],
        remotes: Option<&Remotes>,
    ) -> anyhow::Result<Wired> {
        let here = |m: Module| local.contains(&m);
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

        let (identity, admin) = if here(Module::Identity) {
            let key =
                load_or_create_signing_key(&dir.join("keys").join("token-signing-ed25519.pem"))?;
            let imp = Identity::new(db("identity").await?, key, config.identity.clone()).await?;
            let admin = imp
                .bootstrap_admin(&config.admin.email, config.admin.password.clone())
                .await
                .context("cannot create the admin account")?;
            (IdentityClient::local(imp), Some(admin))
        } else {
            (IdentityClient::remote(remote(Module::Identity)?), None)
        };
        let catalog = if here(Module::Catalog) {
            CatalogClient::local(catalog::Catalog::new(db("catalog").await?).await?)
        } else {
            CatalogClient::remote(remote(Module::Catalog)?)
        };
        let inventory = if here(Module::Inventory) {
            let imp = inventory::Inventory::new(db("inventory").await?, catalog.clone()).await?;
            subscriptions.push(imp.subscription());
            outboxes.push(imp.outbox());
            InventoryClient::from_arc(imp)
        } else {
            InventoryClient::remote(remote(Module::Inventory)?)
        };
        let cart = if here(Module::Cart) {
            let imp = cart::Cart::new(db("cart").await?, catalog.clone()).await?;
            subscriptions.push(imp.subscription());
            CartClient::from_arc(imp)
        } else {
            CartClient::remote(remote(Module::Cart)?)
        };
        let (orders, orders_impl) = if here(Module::Orders) {
            let imp = orders::Orders::new(db("orders").await?, cart.clone(), config.orders.clone())
                .await?;
            subscriptions.push(imp.subscription());
            outboxes.push(imp.outbox());
            (OrdersClient::from_arc(imp.clone()), Some(imp))
        } else {
            (OrdersClient::remote(remote(Module::Orders)?), None)
        };
        let payments = if here(Module::Payments) {
            // The simulated card provider stands for an external service: a database of
            // its own, next to payments.
            let provider = payments::CardProvider::new(db("card-provider").await?).await?;
            let imp = payments::Payments::new(db("payments").await?, provider).await?;
            subscriptions.push(imp.subscription());
            outboxes.push(imp.outbox());
            PaymentsClient::from_arc(imp)
        } else {
            PaymentsClient::remote(remote(Module::Payments)?)
        };
        let notifications = if here(Module::Notifications) {
            let imp = notifications::Notifications::new(db("notifications").await?).await?;
            subscriptions.push(imp.subscription());
            NotificationsClient::from_arc(imp)
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
            orders: orders_impl,
            admin,
            dbs,
        })
    }

    /// The internal routes of this process's modules, behind the credential guard.
    pub(crate) fn internal_routes(&self, verifier: rpc::CredentialVerifier) -> axum::Router {
        let c = &self.clients;
        let mut routes = axum::Router::new();
        for m in &self.local {
            routes = routes.merge(match m {
                Module::Identity => identity_api::remote::internal_routes(c.identity.clone()),
                Module::Catalog => catalog_api::remote::internal_routes(c.catalog.clone()),
                Module::Inventory => inventory_api::remote::internal_routes(c.inventory.clone()),
                Module::Cart => cart_api::remote::internal_routes(c.cart.clone()),
                Module::Orders => orders_api::remote::internal_routes(c.orders.clone()),
                Module::Payments => payments_api::remote::internal_routes(c.payments.clone()),
                Module::Notifications => {
                    notifications_api::remote::internal_routes(c.notifications.clone())
                }
            });
        }
        rpc::internal::guard(routes, verifier)
    }
}
