use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use bus::{BusClient, EmbeddedBus, EventBus as _, Retention};
use cart_api::CartClient;
use catalog_api::CatalogClient;
use gateway::{GatewayConfig, Probe};
use identity::{AdminBootstrap, Identity, IdentityConfig};
use identity_api::{IdentityClient, Password};
use inventory_api::InventoryClient;
use kernel::Email;
use notifications_api::NotificationsClient;
use orders::OrdersConfig;
use orders_api::OrdersClient;
use payments_api::PaymentsClient;
use store::Db;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{Topology, load_or_create_signing_key, seed_demo_catalog};

/// Everything the shop needs to start; built by the binary from flags and environment.
#[derive(Debug, Clone)]
pub struct ShopConfig {
    pub topology: Topology,
    pub data_dir: PathBuf,
    /// Seed the demo catalog when the catalog is empty.
    pub seed: bool,
    pub admin: AdminCredentials,
    pub gateway: GatewayConfig,
    pub identity: IdentityConfig,
    pub orders: OrdersConfig,
}

/// Who the admin is; without a password one is generated on first start and shown once.
#[derive(Debug, Clone)]
pub struct AdminCredentials {
    pub email: Email,
    pub password: Option<Password>,
}

impl ShopConfig {
    pub fn new(data_dir: impl Into<PathBuf>, admin: AdminCredentials) -> ShopConfig {
        ShopConfig {
            topology: Topology::Monolith,
            data_dir: data_dir.into(),
            seed: true,
            admin,
            gateway: GatewayConfig::default(),
            identity: IdentityConfig::default(),
            orders: OrdersConfig::default(),
        }
    }
}

/// A started shop: its public router and what start-up did.
pub struct Shop {
    pub router: axum::Router,
    pub admin: AdminBootstrap,
    /// Products seeded by this start (0 when the catalog already had some).
    pub seeded: usize,
    pub data_dir: PathBuf,
    bus: EmbeddedBus,
    /// Relays, the deadline sweeper: stopped by `close`.
    background: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    dbs: Vec<Db>,
}

impl std::fmt::Debug for Shop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shop").field("data_dir", &self.data_dir).finish_non_exhaustive()
    }
}

struct DbProbe {
    name: &'static str,
    db: Db,
}

#[async_trait]
impl Probe for DbProbe {
    fn name(&self) -> &str {
        self.name
    }
    async fn check(&self) -> Result<(), String> {
        self.db.ping().await.map_err(|e| e.to_string())
    }
}

async fn open(dir: &Path, module: &'static str) -> anyhow::Result<Db> {
    Db::open_sqlite(&dir.join(format!("{module}.db")))
        .await
        .with_context(|| format!("cannot open the {module} database"))
}

/// Creates the data directory readable by its owner only. An existing directory is left as
/// it is: it may be one the operator chose on purpose (even `.`).
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))
}

impl Shop {
    /// Opens every module's database in `config.data_dir`, wires the modules for
    /// `config.topology`, seeds a first start and builds the gateway.
    pub async fn start(config: ShopConfig) -> anyhow::Result<Shop> {
        let Topology::Monolith = config.topology;
        let dir = &config.data_dir;
        create_private_dir(dir)?;
        let key = load_or_create_signing_key(&dir.join("keys").join("token-signing-ed25519.pem"))?;

        let db = |module| open(dir, module);
        let (identity_db, catalog_db, inventory_db, cart_db) = (
            db("identity").await?,
            db("catalog").await?,
            db("inventory").await?,
            db("cart").await?,
        );
        let (orders_db, payments_db, notifications_db) =
            (db("orders").await?, db("payments").await?, db("notifications").await?);
        // The simulated card provider stands for an external service: a database of its own.
        let provider_db = db("card-provider").await?;
        let bus_db = db("bus").await?;

        // Monolith placement: every client is the local implementation, and the bus is the
        // embedded one. Modules receive the clients of the modules they call and cannot
        // tell how those are placed.
        let identity_impl =
            Identity::new(identity_db.clone(), key, config.identity.clone()).await?;
        let admin = identity_impl
            .bootstrap_admin(&config.admin.email, config.admin.password.clone())
            .await
            .context("cannot create the admin account")?;
        let identity = IdentityClient::local(identity_impl);
        let catalog_impl = catalog::Catalog::new(catalog_db.clone()).await?;
        let catalog_empty = catalog_impl.is_empty().await?;
        let catalog = CatalogClient::local(catalog_impl);
        let inventory_impl =
            inventory::Inventory::new(inventory_db.clone(), catalog.clone()).await?;
        let inventory = InventoryClient::from_arc(inventory_impl.clone());
        let cart_impl = cart::Cart::new(cart_db.clone(), catalog.clone()).await?;
        let cart = CartClient::from_arc(cart_impl.clone());
        let orders_impl =
            orders::Orders::new(orders_db.clone(), cart.clone(), config.orders.clone()).await?;
        let provider = payments::CardProvider::new(provider_db.clone()).await?;
        let payments_impl = payments::Payments::new(payments_db.clone(), provider).await?;
        let notifications_impl =
            notifications::Notifications::new(notifications_db.clone()).await?;

        let embedded = EmbeddedBus::open(bus_db.clone()).await.context("cannot open the bus")?;
        let bus = BusClient::new(embedded.clone());
        // Subscriptions first, so nothing a relay publishes finds a subscriber missing.
        for subscription in [
            inventory_impl.subscription(),
            cart_impl.subscription(),
            orders_impl.subscription(),
            payments_impl.subscription(),
            notifications_impl.subscription(),
        ] {
            bus.subscribe(subscription).await?;
        }
        let background = CancellationToken::new();
        let mut tasks: Vec<JoinHandle<()>> =
            [orders_impl.outbox(), inventory_impl.outbox(), payments_impl.outbox()]
                .into_iter()
                .map(|outbox| {
                    bus::spawn_relay(outbox, bus.clone(), Retention::default(), background.clone())
                })
                .collect();
        tasks.push(orders_impl.spawn_sweeper(background.clone()));

        let seeded = if config.seed && catalog_empty {
            seed_demo_catalog(&catalog, &inventory).await.context("cannot seed the demo catalog")?
        } else {
            0
        };

        let modules = identity_api::http::router(identity.clone())
            .merge(catalog_api::http::router(catalog))
            .merge(inventory_api::http::router(inventory))
            .merge(cart_api::http::router(cart))
            .merge(orders_api::http::router(OrdersClient::from_arc(orders_impl)))
            .merge(payments_api::http::router(PaymentsClient::from_arc(payments_impl)))
            .merge(notifications_api::http::router(NotificationsClient::from_arc(
                notifications_impl,
            )))
            .merge(bus::http::router(bus));
        let named = [
            ("identity", &identity_db),
            ("catalog", &catalog_db),
            ("inventory", &inventory_db),
            ("cart", &cart_db),
            ("orders", &orders_db),
            ("payments", &payments_db),
            ("notifications", &notifications_db),
            ("bus", &bus_db),
        ];
        let probes: Vec<Arc<dyn Probe>> = named
            .iter()
            .map(|(name, db)| Arc::new(DbProbe { name, db: (*db).clone() }) as Arc<dyn Probe>)
            .collect();
        let router = gateway::build(config.gateway.clone(), identity, modules, probes).await?;
        let dbs = vec![
            identity_db,
            catalog_db,
            inventory_db,
            cart_db,
            orders_db,
            payments_db,
            notifications_db,
            provider_db,
            bus_db,
        ];
        Ok(Shop {
            router,
            admin,
            seeded,
            data_dir: config.data_dir,
            bus: embedded,
            background,
            tasks,
            dbs,
        })
    }

    /// Stops the relays, the sweeper and the bus's deliveries, then closes the databases
    /// (after the server stopped), checkpointing SQLite's WAL. Whatever was in flight is
    /// redelivered on the next start.
    pub async fn close(mut self) {
        self.background.cancel();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        self.bus.shutdown().await;
        for db in &self.dbs {
            db.close().await;
        }
    }
}
