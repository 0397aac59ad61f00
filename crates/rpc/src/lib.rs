//! HTTP/JSON glue shared by every module's HTTP adapter and by the gateway.
//!
//! It owns the public error envelope (`{"error": {"code", "message"}}`) and the one place
//! where a contract error becomes an HTTP response ([`ApiError`]), and the extractors that
//! turn a request into typed input: [`Json`], [`Path`], [`Query`] (whose rejections use the
//! same envelope) and [`Ctx`] (the caller's [`kernel::RequestContext`]).
//!
//! It knows no module. Later it also carries the remote client transport.

mod error;
mod extract;

pub use error::{ApiError, ApiResult, ErrorBody, ErrorDetail};
pub use extract::{Ctx, Json, Path, Query, Rejection};
