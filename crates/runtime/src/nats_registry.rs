//! Discovery across machines: instances announce themselves in a NATS JetStream key-value
//! bucket (`<namespace>_instances`, one key `<service>.<instance id>` each) and renew the
//! entry every [`HEARTBEAT`]; the bucket's `max_age` is the TTL, so an instance that dies
//! without a word disappears within [`TTL`]. Every process follows the bucket into its
//! [`Registry`].

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{self, kv};
use futures::StreamExt as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{Instance, Registry};

pub const HEARTBEAT: Duration = Duration::from_secs(1);
pub const TTL: Duration = Duration::from_secs(4);

/// The bucket of `namespace` on the server at `url`, created if missing.
async fn bucket(url: &str, namespace: &str) -> anyhow::Result<kv::Store> {
    let client = async_nats::ConnectOptions::new()
        .name("microlith-discovery")
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to NATS at {url}: {e}"))?;
    let js = jetstream::new(client);
    let name = format!("{namespace}_instances");
    if let Ok(store) = js.get_key_value(&name).await {
        return Ok(store);
    }
    // The bucket's stream, as `create_key_value` would make it; made by hand because that
    // call first queries account limits in a shape NATS 2.9 does not answer.
    let config = jetstream::stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age: TTL,
        // Must not exceed max_age.
        duplicate_window: TTL,
        storage: jetstream::stream::StorageType::Memory,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        ..Default::default()
    };
    js.get_or_create_stream(config)
        .await
        .with_context(|| format!("cannot create the key-value bucket {name}"))?;
    js.get_key_value(&name)
        .await
        .with_context(|| format!("cannot open the key-value bucket {name}"))
}

/// Keeps `instance` announced while `healthy` says so, until `cancel`; then withdraws it.
pub async fn announce(
    url: &str,
    namespace: &str,
    instance: Instance,
    healthy: impl Fn() -> futures::future::BoxFuture<'static, bool> + Send + 'static,
    cancel: CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    let store = bucket(url, namespace).await?;
    let key = format!("{}.{}", instance.service, instance.id);
    Ok(tokio::spawn(async move {
        loop {
            let entry = Instance { healthy: healthy().await, ..instance.clone() };
            match serde_json::to_vec(&entry) {
                Ok(value) => {
                    if let Err(e) = store.put(&key, value.into()).await {
                        tracing::warn!(error = %e, "cannot renew the discovery entry");
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot encode the discovery entry"),
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(HEARTBEAT) => {}
            }
        }
        let _ = store.delete(&key).await;
    }))
}

/// Mirrors the bucket into `registry` until `cancel`: a watch of every key delivers each
/// heartbeat within milliseconds, and an entry not renewed for [`TTL`] is dropped here, as
/// the server drops it (expiry by `max_age` sends no event).
pub async fn follow(
    url: &str,
    namespace: &str,
    registry: Registry,
    cancel: CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    let store = bucket(url, namespace).await?;
    // The first watch is opened here, so a bad bucket fails the start, not a task.
    let first = store.watch_with_history(">").await.context("cannot watch the discovery bucket")?;
    Ok(tokio::spawn(async move {
        let mut mirror = Mirror::default();
        let mut watch = Some(first);
        loop {
            let current = match watch.take() {
                Some(w) => w,
                None => match store.watch_with_history(">").await {
                    Ok(w) => w,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot watch the discovery bucket");
                        tokio::select! {
                            () = cancel.cancelled() => return,
                            () = tokio::time::sleep(HEARTBEAT) => continue,
                        }
                    }
                },
            };
            if mirror.run(current, &registry, &cancel).await.is_break() {
                return;
            }
        }
    }))
}

/// The entries seen, each with when it was last renewed.
#[derive(Default)]
struct Mirror {
    entries: std::collections::BTreeMap<String, (Instance, Instant)>,
}

impl Mirror {
    /// Applies `watch` to the registry until it ends (`Continue`: watch again) or `cancel`.
    async fn run(
        &mut self,
        mut watch: kv::Watch,
        registry: &Registry,
        cancel: &CancellationToken,
    ) -> ControlFlow<()> {
        let mut sweep = tokio::time::interval(HEARTBEAT / 2);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return ControlFlow::Break(()),
                next = watch.next() => match next {
                    Some(Ok(entry)) => self.apply(entry),
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "the discovery watch failed; watching again");
                        return ControlFlow::Continue(());
                    }
                    None => return ControlFlow::Continue(()),
                },
                _ = sweep.tick() => {
                    let now = Instant::now();
                    self.entries.retain(|_, (_, seen)| now.duration_since(*seen) < TTL);
                }
            }
            registry.set(self.entries.values().map(|(i, _)| i.clone()).collect());
        }
    }

    fn apply(&mut self, entry: kv::Entry) {
        match entry.operation {
            kv::Operation::Put => match serde_json::from_slice::<Instance>(&entry.value) {
                Ok(instance) => {
                    // A replayed entry is as old as the server says, so a dead instance's
                    // last heartbeat does not get a fresh TTL here.
                    let written = std::time::SystemTime::from(entry.created);
                    let age = written.elapsed().unwrap_or_default().min(TTL);
                    let seen = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
                    self.entries.insert(entry.key, (instance, seen));
                }
                Err(e) => tracing::warn!(key = entry.key, error = %e, "unreadable discovery entry"),
            },
            kv::Operation::Delete | kv::Operation::Purge => {
                self.entries.remove(&entry.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    async fn test_nats() -> Option<String> {
        let url =
            std::env::var("MICROLITH_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
        match tokio::time::timeout(Duration::from_secs(3), async_nats::connect(&url)).await {
            Ok(Ok(_)) => Some(url),
            _ if std::env::var_os("CI").is_some() => panic!("NATS at {url} is required under CI"),
            _ => {
                // Straight to the terminal: the test runner swallows `eprintln!` of a passing test.
                use std::io::Write as _;
                let _ =
                    writeln!(std::io::stderr(), "notice: skipped, NATS at {url} is unreachable");
                None
            }
        }
    }

    fn instance(id: &str, port: u16) -> Instance {
        Instance {
            service: "cart".into(),
            id: id.into(),
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            healthy: false,
            pid: None,
        }
    }

    async fn eventually(what: &str, registry: &Registry, check: impl Fn(&[Instance]) -> bool) {
        let deadline = tokio::time::Instant::now() + TTL * 3;
        while !check(&registry.instances()) {
            assert!(tokio::time::Instant::now() < deadline, "{what}: {:?}", registry.instances());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[tokio::test]
    async fn instances_appear_and_expire_with_their_heartbeats() {
        let Some(url) = test_nats().await else { return };
        let ns = format!("t{}", uuid::Uuid::new_v4().simple());
        let registry = Registry::new();
        let stop = CancellationToken::new();
        follow(&url, &ns, registry.clone(), stop.clone()).await.unwrap();
        let healthy = || Box::pin(async { true }) as futures::future::BoxFuture<'static, bool>;
        let a = CancellationToken::new();
        announce(&url, &ns, instance("cart-1", 1), healthy, a.clone()).await.unwrap();
        let b = announce(&url, &ns, instance("cart-2", 2), healthy, CancellationToken::new())
            .await
            .unwrap();
        eventually("both announced", &registry, |l| l.len() == 2 && l.iter().all(|i| i.healthy))
            .await;

        // cart-2 dies without a word: it goes when its entry's TTL runs out.
        b.abort();
        eventually("cart-2 expired", &registry, |l| l.len() == 1 && l[0].id == "cart-1").await;
        // cart-1 stops cleanly: it withdraws at once.
        a.cancel();
        eventually("cart-1 withdrawn", &registry, |l| l.is_empty()).await;
        stop.cancel();

        let js = jetstream::new(async_nats::connect(&url).await.unwrap());
        js.delete_stream(format!("KV_{ns}_instances")).await.unwrap();
    }
}
