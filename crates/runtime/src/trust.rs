//! Who trusts whom inside the shop: each caller's key, and the call graph that says which
//! caller may call which internal route. Derived from the topology, like the placement.
//!
//! Keys: one Ed25519 key per caller name (each service, each function, and `gateway` when
//! the gateway runs on its own), in `<data>/keys/services/<name>.key` (PKCS#8 PEM) with its
//! public half in `<name>.pub` (a JWK `x`), all mode 0600. A verifier reads only public
//! halves. Processes on several machines need the public halves of every caller and the
//! private key of their own service only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use jsonwebtoken::DecodingKey;

use crate::{Module, ProcessRole, Topology};

/// The audience of credentials for the function host's Invoke API.
pub const FUNCTION_HOST: &str = "function-host";

/// The name a process signs its calls with.
pub fn caller_name(role: &ProcessRole) -> String {
    match role {
        ProcessRole::Service { name, .. } | ProcessRole::Function { name } => name.clone(),
        ProcessRole::Gateway => "gateway".into(),
    }
}

/// The caller that runs the public edge (and the function host): the only signer of
/// delegations and of event batches.
pub fn edge_name(topology: &Topology) -> String {
    topology.gateway_in.clone().unwrap_or_else(|| "gateway".into())
}

/// Every caller name of a topology.
fn callers(topology: &Topology) -> Vec<String> {
    let mut names: Vec<String> = topology.services.iter().map(|s| s.name.clone()).collect();
    names.extend(topology.functions.iter().map(|f| f.name.clone()));
    names.push("gateway".into());
    names.sort();
    names.dedup();
    names
}

/// The modules a caller hosts.
fn hosted(topology: &Topology, caller: &str) -> Vec<Module> {
    let mut modules: Vec<Module> = topology
        .services
        .iter()
        .filter(|s| s.name == caller)
        .flat_map(|s| s.modules.iter().copied())
        .collect();
    modules.extend(topology.functions.iter().filter(|f| f.name == caller).map(|f| f.module));
    modules
}

/// Who may call which internal route of the process `callee` signs as: the edge may call
/// everything; another caller only the methods its modules call ([`Module::CALLS`]).
pub fn call_policy(topology: &Topology) -> rpc::CallPolicy {
    let edge = edge_name(topology);
    let mut allowed: HashMap<String, Vec<String>> = HashMap::new();
    for caller in callers(topology) {
        let paths = allowed.entry(caller.clone()).or_default();
        for m in hosted(topology, &caller) {
            for (from, to, methods) in Module::CALLS {
                if *from == m {
                    paths.extend(methods.iter().map(|method| format!("/internal/{to}/{method}")));
                }
            }
        }
    }
    Arc::new(move |caller: &str, path: &str| {
        caller == edge || allowed.get(caller).is_some_and(|paths| paths.iter().any(|p| p == path))
    })
}

/// The service keys of one data directory.
pub struct Keyring {
    dir: PathBuf,
    public: RwLock<HashMap<String, DecodingKey>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// Where a data directory keeps its service keys.
pub fn keys_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("keys").join("services")
}

impl Keyring {
    /// Opens the keys of `data_dir`. A process creates only its own key ([`Keyring::own`]):
    /// a caller's key exists before its first call, and a process on another machine must
    /// not invent keys for the others.
    pub fn open(data_dir: &Path) -> anyhow::Result<Arc<Keyring>> {
        let dir = keys_dir(data_dir);
        crate::create_private_dir(&dir)?;
        Ok(Arc::new(Keyring { dir, public: RwLock::default() }))
    }

    /// Creates the missing keys of every caller of `topology`: what the local supervisor
    /// does before it starts the processes.
    pub fn create_all(&self, topology: &Topology) -> anyhow::Result<()> {
        for name in callers(topology) {
            self.own(&name)?;
        }
        Ok(())
    }

    /// The private key `name` signs with (created on first use).
    pub fn own(&self, name: &str) -> anyhow::Result<rpc::ServiceKey> {
        anyhow::ensure!(
            !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{name:?} cannot name a key"
        );
        let private = self.dir.join(format!("{name}.key"));
        let key = match std::fs::read_to_string(&private) {
            Ok(pem) => rpc::ServiceKey::from_pem(name, &pem)
                .map_err(|e| anyhow::anyhow!("{e} (in {})", private.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = rpc::ServiceKey::generate(name).map_err(anyhow::Error::msg)?;
                match crate::keys::create_private(&private, key.to_pem()) {
                    Ok(()) => key,
                    // Another process of the shop created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let pem = std::fs::read_to_string(&private)?;
                        rpc::ServiceKey::from_pem(name, &pem).map_err(anyhow::Error::msg)?
                    }
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("cannot write {}", private.display()));
                    }
                }
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", private.display())),
        };
        let public = self.dir.join(format!("{name}.pub"));
        if std::fs::read_to_string(&public).ok().as_deref() != Some(key.public_x().as_str()) {
            crate::keys::replace_private(&public, &key.public_x())
                .with_context(|| format!("cannot write {}", public.display()))?;
        }
        Ok(key)
    }
}

impl rpc::KeySource for Keyring {
    fn public_key(&self, service: &str) -> Option<DecodingKey> {
        if let Some(k) = self.public.read().unwrap_or_else(|p| p.into_inner()).get(service) {
            return Some(k.clone());
        }
        if !service.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return None;
        }
        let x = std::fs::read_to_string(self.dir.join(format!("{service}.pub"))).ok()?;
        let key = rpc::decoding_key(&x)?;
        self.public
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(service.to_owned(), key.clone());
        Some(key)
    }
}

/// What a process needs to prove who it is and to check who calls it.
#[derive(Clone)]
pub struct Trust {
    pub(crate) issuer: rpc::CredentialIssuer,
    keys: Arc<Keyring>,
    edge: String,
    policy: rpc::CallPolicy,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

impl Trust {
    /// The trust of the process that plays `role` in `topology`, keys in `data_dir`.
    pub fn open(data_dir: &Path, topology: &Topology, role: &ProcessRole) -> anyhow::Result<Trust> {
        let keys = Keyring::open(data_dir)?;
        let me = caller_name(role);
        let edge = edge_name(topology);
        let mut issuer = rpc::CredentialIssuer::new(keys.own(&me)?, keys.clone());
        if me == edge {
            issuer = issuer.delegating();
        }
        Ok(Trust { issuer, keys, edge, policy: call_policy(topology) })
    }

    /// The verifier of calls to `audience` (a service, a function, or the function host).
    pub fn verifier(&self, audience: &str) -> rpc::CredentialVerifier {
        rpc::CredentialVerifier::new(audience, self.keys.clone(), &self.edge, self.policy.clone())
    }

    /// What this process signs its calls with.
    pub fn issuer(&self) -> rpc::CredentialIssuer {
        self.issuer.clone()
    }

    /// Whether `caller` is the public edge (the signer of event batches and delegations).
    pub fn is_edge(&self, caller: &str) -> bool {
        caller == self.edge
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_graph_comes_from_the_placement() {
        let t = crate::Topology::load("microservices").unwrap();
        let allow = call_policy(&t);
        assert!(allow("gateway", "/internal/catalog/create"), "the edge calls everything");
        assert!(allow("inventory", "/internal/catalog/get"));
        assert!(!allow("inventory", "/internal/catalog/create"));
        assert!(allow("cart", "/internal/catalog/quote"));
        assert!(allow("orders", "/internal/cart/get"));
        assert!(!allow("orders", "/internal/cart/clear"));
        assert!(!allow("payments", "/internal/catalog/create"), "payments calls no one");
        assert!(!allow("payments", "/internal/system/resilience"));
        assert!(!allow("stranger", "/internal/catalog/get"));

        let hybrid = crate::Topology::load("hybrid").unwrap();
        let allow = call_policy(&hybrid);
        assert!(allow("core", "/internal/payments/charge"), "core runs the edge");
        assert!(!allow("gateway", "/internal/payments/charge"), "no process signs as gateway");
        assert!(!allow("payments", "/internal/cart/get"));
    }

    #[test]
    fn keys_are_private_and_shared_through_their_public_halves() {
        use rpc::KeySource as _;
        let dir = tempfile::tempdir().unwrap();
        let t = crate::Topology::load("microservices").unwrap();
        let ring = Keyring::open(dir.path()).unwrap();
        assert!(ring.public_key("cart").is_none(), "no key is made up for another process");
        ring.create_all(&t).unwrap();
        assert!(ring.public_key("payments").is_some());
        let cart = ring.own("cart").unwrap();
        assert_eq!(ring.own("cart").unwrap().public_x(), cart.public_x(), "stable");
        assert!(ring.public_key("cart").is_some());
        assert!(ring.public_key("../cart").is_none());
        assert!(ring.public_key("nobody").is_none());
        assert!(ring.own("../x").is_err());
        #[cfg(unix)]
        for entry in std::fs::read_dir(keys_dir(dir.path())).unwrap() {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = entry.unwrap().metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }
}
