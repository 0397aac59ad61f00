//! The client side of an internal call: a contract method becomes `POST
//! /internal/<module>/<method>` with the arguments as a JSON array, sent to a healthy
//! instance of the owning service over a pooled keep-alive connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use futures::future::BoxFuture;
use kernel::{RequestContext, TransportError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::CredentialIssuer;
use crate::wire::{ANSWER_NONCE, ON_BEHALF_OF, answer_signature, write_context};

/// A contract error that crosses the wire as itself: any [`TransportError`] that serde
/// can carry (every error declared with `kernel::contract_error!`).
pub trait RemoteError: TransportError + Serialize + DeserializeOwned {}

impl<E: TransportError + Serialize + DeserializeOwned> RemoteError for E {}

/// One instance of a service, as discovery reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Unique per process, e.g. `cart-2`.
    pub instance: String,
    /// `http://127.0.0.1:41234`
    pub base_url: String,
}

/// Where the instances of one service are: discovery plus load balancing.
pub trait Endpoints: Send + Sync + 'static {
    /// A healthy instance to call now, other than those in `avoid`; `None` if there is none.
    fn pick(&self, avoid: &[String]) -> Option<Endpoint>;
    /// What happened on a call, so an instance that refuses connections is avoided at once
    /// rather than at the next health check.
    fn report(&self, endpoint: &Endpoint, reachable: bool);
}

/// A fixed list of instances, taken in turn; one that refused a connection is skipped
/// for a few seconds. For explicit configuration and tests; discovery lives in `runtime`.
pub struct StaticEndpoints {
    list: Vec<Endpoint>,
    next: AtomicUsize,
    down_until: Mutex<HashMap<String, Instant>>,
}

impl StaticEndpoints {
    pub const DOWN_FOR: Duration = Duration::from_secs(2);

    pub fn new(list: Vec<Endpoint>) -> Arc<StaticEndpoints> {
        Arc::new(StaticEndpoints { list, next: AtomicUsize::new(0), down_until: Mutex::default() })
    }
}

impl Endpoints for StaticEndpoints {
    fn pick(&self, avoid: &[String]) -> Option<Endpoint> {
        let now = Instant::now();
        let down = self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        let usable = |e: &&Endpoint| {
            !avoid.contains(&e.instance) && down.get(&e.instance).is_none_or(|until| *until <= now)
        };
        let n = self.list.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n).map(|i| &self.list[(start + i) % n]).find(usable).cloned()
    }

    fn report(&self, endpoint: &Endpoint, reachable: bool) {
        let mut down = self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        if reachable {
            down.remove(&endpoint.instance);
        } else {
            down.insert(endpoint.instance.clone(), Instant::now() + Self::DOWN_FOR);
        }
    }
}

/// The transport to one service. Cheap to clone; every clone shares the connection pool.
#[derive(Clone)]
pub struct Remote {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    service: String,
    route: Route,
    credentials: CredentialIssuer,
    timeout: Duration,
}

/// How a call reaches the code that answers it.
enum Route {
    /// An HTTP request to a healthy instance of the service.
    Instances(Arc<dyn Endpoints>),
    /// An invocation of the function named like the service.
    Function(Arc<dyn Invoker>),
}

/// Runs a function with an HTTP request and returns its HTTP answer: the function host's
/// side of a call to a module placed as a function.
pub trait Invoker: Send + Sync + 'static {
    fn invoke(
        &self,
        function: &str,
        request: http::Request<Bytes>,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<http::Response<Bytes>, InvokeFailure>>;
}

/// Why an invocation has no answer; the caller's contract error follows from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvokeFailure {
    /// Throttled, crashed, or the host unreachable: worth retrying later.
    Unavailable(String),
    Timeout,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("service", &self.inner.service).finish_non_exhaustive()
    }
}

/// How long a pooled connection may sit idle: well under the servers' keep-alive limit
/// ([`crate::ListenerLimits::header_read_timeout`]), so a client never sends on a
/// connection the server is closing.
pub const POOL_IDLE: Duration = Duration::from_secs(20);

/// A connection pool for internal calls; share one per process.
pub fn http_pool() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(POOL_IDLE)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(1))
        .build()
        .unwrap_or_default()
}

impl Remote {
    /// Calls to `service` (also the credential's audience), spread over `endpoints`; a call
    /// takes at most `timeout`, less if the caller's deadline is nearer.
    pub fn new(
        http: reqwest::Client,
        service: &str,
        endpoints: Arc<dyn Endpoints>,
        credentials: CredentialIssuer,
        timeout: Duration,
    ) -> Remote {
        Remote {
            inner: Arc::new(Inner {
                http,
                service: service.to_owned(),
                route: Route::Instances(endpoints),
                credentials,
                timeout,
            }),
        }
    }

    /// Calls to the function `function` (also the credential's audience), through
    /// `invoker`.
    pub fn function(
        function: &str,
        invoker: Arc<dyn Invoker>,
        credentials: CredentialIssuer,
        timeout: Duration,
    ) -> Remote {
        Remote {
            inner: Arc::new(Inner {
                http: http_pool(),
                service: function.to_owned(),
                route: Route::Function(invoker),
                credentials,
                timeout,
            }),
        }
    }

    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// Sends `args` to `path` and decodes the answer or the typed error. A connection that
    /// cannot be made is tried on another instance (the request never left, so this is safe
    /// for any call); anything else is returned, as the contract's error.
    ///
    /// The call is a client span (OpenTelemetry HTTP client conventions: `POST <path>`,
    /// `http.request.method`, `url.full`, `http.response.status_code`; `faas.invoked_name`
    /// when a function answers), the parent of the callee's server span.
    pub async fn call<A, T, E>(&self, ctx: &RequestContext, path: &str, args: &A) -> Result<T, E>
    where
        A: Serialize,
        T: DeserializeOwned,
        E: RemoteError,
    {
        use tracing::field::Empty;
        let span = tracing::info_span!(
            "call",
            otel.name = %format_args!("POST {path}"),
            otel.kind = "client",
            otel.status_code = Empty,
            http.request.method = "POST",
            url.full = Empty,
            http.response.status_code = Empty,
            faas.invoked_name = Empty,
        );
        if let Route::Function(_) = &self.inner.route {
            span.record("faas.invoked_name", self.inner.service.as_str());
        }
        let result =
            tracing::Instrument::instrument(self.send(ctx, path, args), span.clone()).await;
        if result.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        result
    }

    async fn send<A, T, E>(&self, ctx: &RequestContext, path: &str, args: &A) -> Result<T, E>
    where
        A: Serialize,
        T: DeserializeOwned,
        E: RemoteError,
    {
        let inner = &*self.inner;
        let body = serde_json::to_vec(args)
            .map_err(|e| E::internal(format!("cannot encode the arguments of {path}: {e}")))?;
        let budget = match ctx.remaining() {
            Some(left) => left.min(inner.timeout),
            None => inner.timeout,
        };
        if budget.is_zero() {
            return Err(E::timeout());
        }
        let token = inner
            .credentials
            .token_for(&inner.service)
            .map_err(|e| E::internal(format!("cannot mint a service credential: {e}")))?;
        let delegation = delegation(inner, ctx)
            .map_err(|e| E::internal(format!("cannot sign the user's delegation: {e}")))?;
        // A nonce per try: each answer must be signed for the very request it answers.
        let context_headers = |budget: Duration, nonce: &str| {
            let mut headers = reqwest::header::HeaderMap::new();
            write_context(&mut headers, ctx, budget);
            if let Ok(v) = reqwest::header::HeaderValue::from_str(nonce) {
                headers.insert(ANSWER_NONCE, v);
            }
            if let Some(d) = &delegation
                && let Ok(v) = reqwest::header::HeaderValue::from_str(d)
            {
                headers.insert(ON_BEHALF_OF, v);
            }
            headers
        };
        let endpoints = match &inner.route {
            Route::Instances(endpoints) => endpoints,
            Route::Function(invoker) => {
                let nonce = crate::answer_nonce();
                let headers = context_headers(budget, &nonce);
                let mut req = http::Request::post(path)
                    .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Bytes::from(body))
                    .map_err(|e| E::internal(format!("cannot build the call to {path}: {e}")))?;
                req.headers_mut().extend(headers);
                return match invoker.invoke(&inner.service, req, budget).await {
                    Ok(res) => {
                        tracing::Span::current()
                            .record("http.response.status_code", res.status().as_u16());
                        let signature = answer_signature(res.headers());
                        match check(inner, &nonce, res.status(), res.body(), signature) {
                            Ok(()) => decode(path, res.status(), res.body()),
                            Err(e) => Err(e),
                        }
                    }
                    Err(InvokeFailure::Timeout) => Err(E::timeout()),
                    Err(InvokeFailure::Unavailable(why)) => {
                        tracing::warn!(function = %inner.service, path, why, "invocation failed");
                        Err(E::unavailable())
                    }
                };
            }
        };
        let started = Instant::now();
        let mut avoid: Vec<String> = Vec::new();
        loop {
            let Some(endpoint) = endpoints.pick(&avoid) else {
                tracing::warn!(service = %inner.service, path, "no healthy instance");
                return Err(E::unavailable());
            };
            let left = budget.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(E::timeout());
            }
            let nonce = crate::answer_nonce();
            let headers = context_headers(left, &nonce);
            let url = format!("{}{path}", endpoint.base_url);
            tracing::Span::current().record("url.full", url.as_str());
            let req = inner
                .http
                .post(url)
                .timeout(left)
                .bearer_auth(&token)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .headers(headers)
                .body(body.clone());
            let res = match req.send().await {
                Ok(res) => res,
                Err(e) if e.is_connect() => {
                    tracing::debug!(instance = %endpoint.instance, path, error = %e, "cannot connect");
                    endpoints.report(&endpoint, false);
                    avoid.push(endpoint.instance);
                    continue;
                }
                Err(e) => return Err(transport_error(&endpoint, path, &e)),
            };
            let status = res.status();
            tracing::Span::current().record("http.response.status_code", status.as_u16());
            let signature = answer_signature(res.headers()).map(str::to_owned);
            let bytes = match res.bytes().await {
                Ok(b) => b,
                Err(e) => return Err(transport_error(&endpoint, path, &e)),
            };
            if let Err(e) = check(inner, &nonce, status, &bytes, signature.as_deref()) {
                // Not the service we meant to call: keep away from this address for a while.
                endpoints.report(&endpoint, false);
                return Err(e);
            }
            endpoints.report(&endpoint, true);
            return decode(path, status, &bytes);
        }
    }
}

/// The proof of the user a call is made for: the delegation the request came with, or, in
/// the process that runs the public edge, a new one for the user it authenticated.
fn delegation(
    inner: &Inner,
    ctx: &RequestContext,
) -> Result<Option<String>, jsonwebtoken::errors::Error> {
    match (&ctx.delegation, &ctx.principal) {
        (Some(d), _) => Ok(Some(d.as_str().to_owned())),
        (None, Some(p)) => {
            let signed = inner.credentials.delegation_for(p)?;
            if signed.is_none() {
                tracing::debug!(service = %inner.service, "a user without a delegation: the call goes anonymous");
            }
            Ok(signed)
        }
        (None, None) => Ok(None),
    }
}

/// Whether the answer is the called service's own. A success or a contract error must be
/// signed by the callee for this call; an unsigned refusal (the listener's 503 when it is
/// full, a proxy's 502/504) means only that the call did not happen.
fn check<E: RemoteError>(
    inner: &Inner,
    nonce: &str,
    status: reqwest::StatusCode,
    body: &[u8],
    signature: Option<&str>,
) -> Result<(), E> {
    let Err(why) =
        inner.credentials.check_answer(&inner.service, nonce, status.as_u16(), body, signature)
    else {
        return Ok(());
    };
    match (signature, status.as_u16()) {
        (None, 502 | 503) => Err(E::unavailable()),
        (None, 504) => Err(E::timeout()),
        _ => {
            tracing::warn!(service = %inner.service, %status, %why, "refused an answer the service did not sign");
            Err(E::unavailable())
        }
    }
}

fn transport_error<E: RemoteError>(endpoint: &Endpoint, path: &str, e: &reqwest::Error) -> E {
    tracing::warn!(instance = %endpoint.instance, path, error = %e, "internal call failed");
    if e.is_timeout() { E::timeout() } else { E::unavailable() }
}

/// The error body of an internal route: the contract's own error, typed.
#[derive(Serialize, serde::Deserialize)]
pub(crate) struct WireError<E> {
    pub(crate) error: E,
}

fn decode<T: DeserializeOwned, E: RemoteError>(
    path: &str,
    status: reqwest::StatusCode,
    bytes: &[u8],
) -> Result<T, E> {
    if status.is_success() {
        return serde_json::from_slice(bytes)
            .map_err(|e| E::internal(format!("{path}: the answer does not decode: {e}")));
    }
    if let Ok(wire) = serde_json::from_slice::<WireError<E>>(bytes) {
        return Err(wire.error);
    }
    // Not a contract error: the service's edge (credential, overload) or something between.
    Err(match status.as_u16() {
        502 | 503 => E::unavailable(),
        504 => E::timeout(),
        s => E::internal(format!("{path} answered {s}: {}", String::from_utf8_lossy(bytes))),
    })
}
