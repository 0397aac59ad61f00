//! Discovery across machines: instances announce themselves in a NATS JetStream key-value
//! bucket (`<namespace>_instances`, one key `<service>.<instance id>` each) and renew the
//! entry every [`HEARTBEAT`]; the bucket's `max_age` is the TTL, so an instance that dies
//! without a word disappears within [`TTL`]. Every process follows the bucket into its
//! [`Registry`].

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, kv};
use futures::StreamExt as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{Instance, Registry};

pub const HEARTBEAT: Duration = Duration::from_secs(1);
pub const TTL: Duration = Duration::from_secs(4);
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

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

/// Mirrors the bucket into `registry` until `cancel`.
pub async fn follow(
    url: &str,
    namespace: &str,
    registry: Registry,
    cancel: CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    let store = bucket(url, namespace).await?;
    Ok(tokio::spawn(async move {
        loop {
            match read_all(&store).await {
                Ok(list) => registry.set(list),
                Err(e) => tracing::warn!(error = %e, "cannot read the discovery bucket"),
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(FOLLOW_EVERY) => {}
            }
        }
    }))
}

async fn read_all(store: &kv::Store) -> anyhow::Result<Vec<Instance>> {
    let keys: Vec<String> = store.keys().await?.filter_map(async |k| k.ok()).collect().await;
    let mut out = Vec::new();
    for key in keys {
        if let Some(value) = store.get(key).await?
            && let Ok(instance) = serde_json::from_slice::<Instance>(&value)
        {
            out.push(instance);
        }
    }
    Ok(out)
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
                eprintln!("notice: skipping, NATS at {url} is unreachable");
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
