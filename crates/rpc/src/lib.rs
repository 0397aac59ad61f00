//! HTTP/JSON glue shared by every module's HTTP adapter, the gateway and the internal calls
//! between services.
//!
//! It owns the public error envelope (`{"error": {"code", "message"}}`) and the one place
//! where a contract error becomes an HTTP response ([`ApiError`]), and the extractors that
//! turn a request into typed input: [`Json`], [`Path`], [`Query`] (whose rejections use the
//! same envelope) and [`Ctx`] (the caller's [`kernel::RequestContext`]).
//!
//! For the distributed placements it owns the remote transport: [`Remote`] (pooled
//! HTTP/JSON calls to a healthy instance, the request context in headers, typed errors
//! back), the service credentials ([`ServiceKey`], [`CredentialIssuer`],
//! [`CredentialVerifier`]: who calls, for which user, whether the call graph allows it, and
//! who answered), the
//! internal-route guard ([`internal::guard`]), and [`contract!`], which derives a
//! contract's trait, client handle, remote client and internal routes from one
//! declaration.
//!
//! It knows no module.

mod contract;
mod credential;
mod error;
mod extract;
pub mod internal;
mod listener;
mod remote;
pub mod wire;

pub use credential::{
    CallPolicy, CredentialError, CredentialIssuer, CredentialVerifier, DELEGATION_AUDIENCE,
    KeySource, MAX_LIFETIME, ServiceKey, StaticKeys, allow_all, answer_digest, answer_nonce,
    decoding_key, digest,
};
pub use error::{ApiError, ApiResult, ErrorBody, ErrorDetail, cause_chain};
pub use extract::{Ctx, Json, Path, Query, Rejection};
pub use listener::{ListenerLimits, describe_metrics, serve};
pub use remote::{
    Endpoint, Endpoints, InvokeFailure, Invoker, POOL_IDLE, Remote, RemoteError, StaticEndpoints,
    http_pool,
};

/// What [`contract!`] expands to needs, reachable from any crate that uses it.
#[doc(hidden)]
pub mod reexport {
    pub use async_trait::async_trait;
    pub use axum::Router;
    pub use axum::body::Bytes;
    pub use axum::extract::State;
    pub use axum::routing::post;
    pub use kernel::RequestContext;
    pub use resilience::Edge;
    pub use tracing::{Instrument, info_span};
}
