//! Serving a router on a bound listener, with the limits every listener of the shop needs
//! against slow or greedy clients (slowloris): a header-read timeout, which since hyper
//! 1.6 also bounds how long a kept-alive connection may sit idle between requests, and a
//! connection cap that refuses at once, with a 503, beyond it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How a listener protects itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// The longest a client may take to send a request's headers, and the longest a
    /// kept-alive connection may wait for its next request (nginx's `client_header_timeout`
    /// and `keepalive_timeout` in one). Clients' pools must close idle connections sooner
    /// ([`crate::http_pool`] does, at [`crate::POOL_IDLE`]).
    pub header_read_timeout: Duration,
    /// Connections served at once; one more is answered 503 and closed.
    pub max_connections: usize,
}

impl ListenerLimits {
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
    /// File descriptors kept free for everything else a process opens (databases,
    /// outgoing connections, logs).
    const RESERVED_FDS: u64 = 256;

    /// Sane limits for this process: a cap well under its open-file limit, so that a flood
    /// of connections is refused rather than starving the process of descriptors.
    pub fn for_this_process() -> ListenerLimits {
        ListenerLimits {
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: connection_cap(open_file_limit()),
        }
    }

    pub fn with_header_read_timeout(mut self, timeout: Duration) -> ListenerLimits {
        self.header_read_timeout = timeout;
        self
    }

    pub fn with_max_connections(mut self, max: usize) -> ListenerLimits {
        self.max_connections = max.max(1);
        self
    }
}

fn connection_cap(open_files: u64) -> usize {
    let usable = open_files.saturating_sub(ListenerLimits::RESERVED_FDS).max(16) / 2;
    usize::try_from(usable.min(8192)).unwrap_or(8192)
}

#[cfg(unix)]
fn open_file_limit() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024)
}

#[cfg(not(unix))]
fn open_file_limit() -> u64 {
    1024
}

/// What a refused connection is told before it is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nretry-after: 1\r\n\
content-type: application/json\r\ncontent-length: 81\r\n\r\n\
{\"error\":{\"code\":\"too_many_connections\",\"message\":\"too many open connections\"}}";

/// Serves `app` on `listener` until `shutdown` completes, then lets the requests in flight
/// finish. Handlers see the peer's address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ListenerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let stopping = CancellationToken::new();
    let connections = TaskTracker::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let (mut stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait a
                    // little rather than spin, as axum::serve does.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics::counter!(CONNECTIONS_REFUSED).increment(1);
            // A lingering close (nginx's): answer, stop writing, and read what the client
            // still sends for a moment, so the close is not a reset that eats the answer.
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    stream.write_all(BUSY).await?;
                    stream.shutdown().await?;
                    let mut sink = [0u8; 1024];
                    while stream.read(&mut sink).await? > 0 {}
                    Ok::<(), std::io::Error>(())
                })
                .await;
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            app.clone(),
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            },
        ));
        let builder = builder.clone();
        let stopping = stopping.clone();
        connections.spawn(async move {
            let _permit = permit;
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stopping.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    stopping.cancel();
    connections.close();
    connections.wait().await;
    Ok(())
}

const CONNECTIONS_REFUSED: &str = "microlith_connections_refused_total";

/// Describes the listener's metrics to the installed recorder (call after installing it).
pub fn describe_metrics() {
    metrics::describe_counter!(
        CONNECTIONS_REFUSED,
        metrics::Unit::Count,
        "Connections answered with 503 and closed because the listener was at its connection limit."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_descriptors_for_the_rest() {
        assert_eq!(connection_cap(256), 8, "at least a few");
        assert_eq!(connection_cap(1024), 384);
        assert_eq!(connection_cap(1 << 20), 8192);
    }
}

#[cfg(test)]
mod slow_clients {
    use std::net::SocketAddr;
    use std::time::Instant;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;

    use super::*;

    async fn start(limits: ListenerLimits) -> (SocketAddr, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, app, limits, stop.clone().cancelled_owned()));
        (addr, stop)
    }

    /// Connections that send half a request head and then nothing.
    async fn half_open(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
        let mut held = Vec::new();
        for _ in 0..n {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
            held.push(s);
        }
        held
    }

    async fn get(addr: SocketAddr) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn half_open_connections_do_not_stop_new_requests() {
        let (addr, stop) = start(ListenerLimits::for_this_process()).await;
        let _held = half_open(addr, 300).await;
        let started = Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(5), get(addr)).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(started.elapsed() < Duration::from_secs(2));
        stop.cancel();
    }

    #[tokio::test]
    async fn beyond_the_cap_a_connection_is_refused_at_once_and_slow_ones_time_out() {
        let limits = ListenerLimits::for_this_process()
            .with_max_connections(20)
            .with_header_read_timeout(Duration::from_millis(500));
        let (addr, stop) = start(limits).await;
        let mut held = half_open(addr, 20).await;
        let answer = tokio::time::timeout(Duration::from_secs(2), get(addr)).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("too_many_connections"));
        // The slow ones are closed after the header-read timeout, freeing their places.
        let mut buf = [0u8; 64];
        let closed = tokio::time::timeout(Duration::from_secs(3), held[0].read(&mut buf)).await;
        assert!(closed.is_ok(), "the server closed the slow connection");
        let started = Instant::now();
        loop {
            let answer = get(addr).await;
            if answer.starts_with("HTTP/1.1 200") {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(3), "{answer}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        held.clear();
        stop.cancel();
    }
}
