use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;

/// Serves `app` on an already bound `listener` until `shutdown` completes, then lets the
/// requests in flight finish. Binding is the caller's business, so tests bind port 0. The
/// listener has the process's [`rpc::ListenerLimits`] (header-read and idle timeout, a
/// connection cap), like every listener of the shop.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    rpc::serve(listener, app, rpc::ListenerLimits::for_this_process(), shutdown).await
}
