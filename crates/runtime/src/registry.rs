//! Discovery and load balancing. The [`Registry`] holds the instances of every service with
//! their health; callers get an [`rpc::Endpoints`] per service that spreads calls
//! round-robin over the healthy instances and steps around one that just refused a
//! connection until the next health report.
//!
//! Who feeds it depends on the placement: locally the supervisor health-checks its children
//! and publishes the list in a file of the data directory, which every process watches;
//! across machines instances announce themselves in a NATS JetStream key-value bucket
//! (see `nats_registry`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One running process of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub service: String,
    /// `<service>-<replica>`, unique in the cluster.
    pub id: String,
    /// Where its internal routes listen.
    pub address: SocketAddr,
    pub healthy: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

/// How long an instance that refused a connection is skipped, unless a health report says
/// it is back first.
const PASSIVE_DOWN: Duration = Duration::from_secs(2);

#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    instances: RwLock<Vec<Instance>>,
    /// Instances that refused a connection, until when they are skipped.
    refused: Mutex<HashMap<String, Instant>>,
    next: Mutex<HashMap<String, Arc<AtomicUsize>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("instances", &self.instances().len()).finish()
    }
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Replaces what is known (a new health report).
    pub fn set(&self, mut instances: Vec<Instance>) {
        instances.sort_by(|a, b| a.id.cmp(&b.id));
        let mut refused = self.inner.refused.lock().unwrap_or_else(|p| p.into_inner());
        // A fresh report that an instance is healthy outranks an old refused connection
        // only once the passive window is over; keep the window, drop unknown ids.
        refused.retain(|id, _| instances.iter().any(|i| &i.id == id));
        drop(refused);
        *self.inner.instances.write().unwrap_or_else(|p| p.into_inner()) = instances;
    }

    pub fn instances(&self) -> Vec<Instance> {
        self.inner.instances.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Healthy instances of `service` right now.
    pub fn healthy(&self, service: &str) -> usize {
        self.instances().iter().filter(|i| i.service == service && i.healthy).count()
    }

    /// The load balancer for calls to `service`.
    pub fn endpoints(&self, service: &str) -> Arc<dyn rpc::Endpoints> {
        let next = self
            .inner
            .next
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(service.to_owned())
            .or_default()
            .clone();
        Arc::new(ServiceEndpoints { registry: self.clone(), service: service.to_owned(), next })
    }

    /// Follows the file the local supervisor writes, reloading it when it changes.
    pub fn watch_file(&self, path: PathBuf, cancel: CancellationToken) -> JoinHandle<()> {
        let registry = self.clone();
        crate::shared_file::watch(path, Duration::from_millis(100), cancel, move |list| {
            registry.set(list);
        })
    }
}

/// The registry file of a data directory.
pub fn registry_file(data_dir: &Path) -> PathBuf {
    data_dir.join("run").join("registry.json")
}

/// Writes the list atomically, so a reader never sees half of it.
pub fn write_file(path: &Path, instances: &[Instance]) -> anyhow::Result<()> {
    crate::shared_file::write(path, instances)
}

struct ServiceEndpoints {
    registry: Registry,
    service: String,
    next: Arc<AtomicUsize>,
}

impl rpc::Endpoints for ServiceEndpoints {
    fn pick(&self, avoid: &[String]) -> Option<rpc::Endpoint> {
        let now = Instant::now();
        let instances = self.registry.inner.instances.read().unwrap_or_else(|p| p.into_inner());
        let refused = self.registry.inner.refused.lock().unwrap_or_else(|p| p.into_inner());
        let usable: Vec<&Instance> = instances
            .iter()
            .filter(|i| i.service == self.service && i.healthy && !avoid.contains(&i.id))
            .filter(|i| refused.get(&i.id).is_none_or(|until| *until <= now))
            .collect();
        if usable.is_empty() {
            return None;
        }
        let i = usable[self.next.fetch_add(1, Ordering::Relaxed) % usable.len()];
        Some(rpc::Endpoint { instance: i.id.clone(), base_url: format!("http://{}", i.address) })
    }

    fn report(&self, endpoint: &rpc::Endpoint, reachable: bool) {
        let mut refused = self.registry.inner.refused.lock().unwrap_or_else(|p| p.into_inner());
        if reachable {
            refused.remove(&endpoint.instance);
        } else {
            refused.insert(endpoint.instance.clone(), Instant::now() + PASSIVE_DOWN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: &str, port: u16, healthy: bool) -> Instance {
        Instance {
            service: "cart".into(),
            id: id.into(),
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            healthy,
            pid: None,
        }
    }

    #[test]
    fn balances_over_healthy_instances_only() {
        let r = Registry::new();
        r.set(vec![
            instance("cart-1", 1, true),
            instance("cart-2", 2, true),
            instance("cart-3", 3, false),
        ]);
        let e = r.endpoints("cart");
        let picked: Vec<String> = (0..4).map(|_| e.pick(&[]).unwrap().instance).collect();
        assert_eq!(picked.iter().filter(|i| *i == "cart-1").count(), 2);
        assert_eq!(picked.iter().filter(|i| *i == "cart-2").count(), 2);
        assert_eq!(e.pick(&["cart-1".into(), "cart-2".into()]), None);
        assert!(r.endpoints("orders").pick(&[]).is_none());

        // A refused connection takes the instance out until it answers again.
        let one = e.pick(&[]).unwrap();
        e.report(&one, false);
        for _ in 0..4 {
            assert_ne!(e.pick(&[]).unwrap().instance, one.instance);
        }
        e.report(&one, true);
        assert!((0..4).any(|_| e.pick(&[]).unwrap().instance == one.instance));
    }

    #[test]
    fn the_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = registry_file(dir.path());
        let list = vec![instance("cart-1", 1, true)];
        write_file(&path, &list).unwrap();
        assert_eq!(crate::shared_file::read::<Vec<Instance>>(&path).unwrap(), list);
    }
}
