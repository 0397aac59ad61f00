use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use cart_api::CartClient;
use catalog_api::CatalogClient;
use gateway::{GatewayConfig, Probe};
use identity::{AdminBootstrap, Identity, IdentityConfig};
use identity_api::{IdentityClient, Password};
use inventory_api::InventoryClient;
use kernel::Email;
use store::Db;

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

        let (identity_db, catalog_db, inventory_db, cart_db) = (
            open(dir, "identity").await?,
            open(dir, "catalog").await?,
            open(dir, "inventory").await?,
            open(dir, "cart").await?,
        );

        // Monolith placement: every client is the local implementation. Modules receive
        // the clients of the modules they call and cannot tell how those are placed.
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
        let inventory = InventoryClient::local(
            inventory::Inventory::new(inventory_db.clone(), catalog.clone()).await?,
        );
        let cart = CartClient::local(cart::Cart::new(cart_db.clone(), catalog.clone()).await?);

        let seeded = if config.seed && catalog_empty {
            seed_demo_catalog(&catalog, &inventory).await.context("cannot seed the demo catalog")?
        } else {
            0
        };

        let modules = identity_api::http::router(identity.clone())
            .merge(catalog_api::http::router(catalog))
            .merge(inventory_api::http::router(inventory))
            .merge(cart_api::http::router(cart));
        let named = [
            ("identity", &identity_db),
            ("catalog", &catalog_db),
            ("inventory", &inventory_db),
            ("cart", &cart_db),
        ];
        let probes: Vec<Arc<dyn Probe>> = named
            .iter()
            .map(|(name, db)| Arc::new(DbProbe { name, db: (*db).clone() }) as Arc<dyn Probe>)
            .collect();
        let router = gateway::build(config.gateway.clone(), identity, modules, probes).await?;
        let dbs = vec![identity_db, catalog_db, inventory_db, cart_db];
        Ok(Shop { router, admin, seeded, data_dir: config.data_dir, dbs })
    }

    /// Closes the databases (after the server stopped), checkpointing SQLite's WAL.
    pub async fn close(&self) {
        for db in &self.dbs {
            db.close().await;
        }
    }
}
