use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use kernel::{Delegation, Principal, RequestContext, RequestId, TraceParent};

use crate::ApiError;
use crate::wire::Deadline;

/// `axum::Json` whose rejections use the public error envelope.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(Rejection))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Path` whose rejections use the public error envelope.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Rejection))]
pub struct Path<T>(pub T);

/// `axum::extract::Query` whose rejections use the public error envelope.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Rejection))]
pub struct Query<T>(pub T);

/// An extractor's rejection, answered in the public error envelope. (A type of its own
/// because `ApiError` already converts from every contract error.)
#[derive(Debug)]
pub struct Rejection(pub ApiError);

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl From<JsonRejection> for Rejection {
    fn from(r: JsonRejection) -> Self {
        // axum answers 422 for well-formed JSON of the wrong shape; in this API 422 means an
        // idempotency key reused with another body, so a wrong shape is a plain 400.
        let (status, code) = match &r {
            JsonRejection::JsonSyntaxError(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            JsonRejection::JsonDataError(_) => (StatusCode::BAD_REQUEST, "invalid_body"),
            JsonRejection::MissingJsonContentType(_) => (r.status(), "unsupported_media_type"),
            _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => (r.status(), "payload_too_large"),
            _ => (StatusCode::BAD_REQUEST, "invalid_body"),
        };
        Rejection(ApiError::with_status(status, code, r.body_text()))
    }
}

impl From<PathRejection> for Rejection {
    fn from(r: PathRejection) -> Self {
        Rejection(ApiError::with_status(StatusCode::BAD_REQUEST, "invalid_path", r.body_text()))
    }
}

impl From<QueryRejection> for Rejection {
    fn from(r: QueryRejection) -> Self {
        Rejection(ApiError::with_status(StatusCode::BAD_REQUEST, "invalid_query", r.body_text()))
    }
}

/// The caller's request context. The gateway (or, on an internal call, the credential
/// guard) puts a verified [`Principal`], the [`RequestId`], the [`TraceParent`] and the
/// [`Deadline`] into the request's extensions; a request without a principal is anonymous.
#[derive(Debug, Clone)]
pub struct Ctx(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let request_id =
            parts.extensions.get::<RequestId>().cloned().unwrap_or_else(RequestId::generate);
        let principal = parts.extensions.get::<Principal>().cloned();
        let delegation = parts.extensions.get::<Delegation>().cloned();
        let trace =
            parts.extensions.get::<TraceParent>().cloned().unwrap_or_else(TraceParent::root);
        let deadline = parts.extensions.get::<Deadline>().map(|d| d.0);
        Ok(Ctx(RequestContext::new(request_id, principal)
            .with_delegation(delegation)
            .with_trace(trace)
            .with_deadline(deadline)))
    }
}
