use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kernel::{ContractError, ErrorKind};
use serde::{Deserialize, Serialize};

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `product_not_found`.
    pub code: String,
    /// A human sentence; never carries internals.
    pub message: String,
}

/// An error on its way to the client. Built from any contract error (`?` works in handlers)
/// or directly; 5xx causes are logged here and replaced by a generic message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    message: String,
    retry_after_secs: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::with_status(status_of(kind), code, message)
    }

    pub fn with_status(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: Cow::Borrowed(code),
            message: message.into(),
            retry_after_secs: None,
        }
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs.max(1));
        self
    }

    /// The generic answer for a status code that no handler produced (the router's 404 and
    /// 405, a body-limit layer's 413).
    pub fn for_status(status: StatusCode) -> Self {
        let (code, message) = match status.as_u16() {
            400 => ("bad_request", "the request is not valid"),
            401 => ("unauthenticated", "authentication is required"),
            403 => ("forbidden", "you are not allowed to do this"),
            404 => ("not_found", "no such resource"),
            405 => ("method_not_allowed", "this method is not allowed on this resource"),
            408 => ("request_timeout", "the request took too long"),
            413 => ("payload_too_large", "the request body is too large"),
            415 => {
                ("unsupported_media_type", "expected a JSON body (content-type: application/json)")
            }
            422 => ("unprocessable", "the request cannot be processed"),
            429 => ("rate_limited", "too many requests"),
            503 => ("unavailable", "the service is unavailable, try again later"),
            504 => ("timeout", "the service did not answer in time"),
            s if s >= 500 => ("internal", "internal error"),
            _ => ("error", "the request failed"),
        };
        ApiError::with_status(status, code, message)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail { code: self.code.to_string(), message: self.message.clone() },
        }
    }
}

fn status_of(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Formats an error with its whole `source()` chain, for logs.
pub fn cause_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

impl<E: ContractError> From<E> for ApiError {
    fn from(e: E) -> Self {
        let kind = e.kind();
        if kind.is_client_error() {
            let api = ApiError::new(kind, e.code(), e.to_string());
            match e.retry_after_secs() {
                Some(secs) => api.retry_after(secs),
                None if kind == ErrorKind::RateLimited => api.retry_after(1),
                None => api,
            }
        } else {
            // The cause stays in the log; the client learns only that it was not its fault.
            tracing::error!(code = e.code(), error = %cause_chain(&e), "request failed");
            let mut api = ApiError::for_status(status_of(kind));
            if kind == ErrorKind::Unavailable {
                api = api.retry_after(1);
            }
            api
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut res =
            (self.status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        if let Some(secs) = self.retry_after_secs {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            let value = if self.code == "invalid_token" {
                r#"Bearer error="invalid_token""#
            } else {
                "Bearer"
            };
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[derive(Debug)]
    struct Boom;
    impl std::fmt::Display for Boom {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("database file /secret/path is locked")
        }
    }
    impl std::error::Error for Boom {}
    impl ContractError for Boom {
        fn kind(&self) -> ErrorKind {
            ErrorKind::Internal
        }
        fn code(&self) -> &'static str {
            "internal"
        }
    }

    #[tokio::test]
    async fn internal_errors_never_reach_the_client() {
        let res = ApiError::from(Boom).into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(!text.contains("secret"), "{text}");
        let parsed: ErrorBody = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed.error.code, "internal");
    }

    #[test]
    fn unauthenticated_answers_carry_www_authenticate() {
        let res = ApiError::new(ErrorKind::Unauthenticated, "invalid_token", "bad").into_response();
        assert_eq!(res.headers()[header::WWW_AUTHENTICATE], r#"Bearer error="invalid_token""#);
    }
}
