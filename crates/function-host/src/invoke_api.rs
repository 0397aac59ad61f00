//! Lambda's Invoke API (`POST /2015-03-31/functions/{name}/invocations`) on loopback, for
//! processes other than the host's to invoke its functions, and the client they use.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;

use crate::{FunctionHost, InvokeError, Invoked, Report};

const FUNCTION_ERROR: &str = "x-amz-function-error";
/// The one value Lambda sends in `X-Amz-Function-Error` for an error a runtime reported or
/// a runtime that failed (`Handled` is legacy Node.js callbacks only); SDKs compare it. The
/// error's type is in the body's `errorType`.
const UNHANDLED: &str = "Unhandled";
const ERROR_TYPE: &str = "x-amzn-errortype";
/// Our addition: the invocation's `REPORT` as JSON.
const REPORT: &str = "x-microlith-report";
const TRACE: &str = "x-amzn-trace-id";

/// Decides whether a request may use the Invoke API, from its headers: `Err(why)` refuses
/// it before anything else happens (even a `DryRun`), as Lambda refuses an unsigned call.
pub type Authorize = Arc<dyn Fn(&HeaderMap) -> Result<(), String> + Send + Sync>;

/// The `Authorization` header value a client sends, minted per call (`None`: none).
pub type Bearer = Arc<dyn Fn() -> Option<String> + Send + Sync>;

#[derive(Clone)]
struct Api {
    host: FunctionHost,
    authorize: Authorize,
}

pub fn invoke_router(host: FunctionHost, authorize: Authorize) -> Router {
    Router::new()
        .route("/2015-03-31/functions/{name}/invocations", post(invoke))
        .layer(DefaultBodyLimit::max(crate::runtime_api::MAX_PAYLOAD))
        .with_state(Api { host, authorize })
}

async fn invoke(
    State(Api { host, authorize }): State<Api>,
    Path(named): Path<String>,
    headers: HeaderMap,
    payload: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let Some(name) = function_name(&named) else {
        return not_found(&named);
    };
    let name = name.to_owned();
    if let Err(why) = authorize(&headers) {
        tracing::warn!(function = %name, why, "refused an invocation without a valid credential");
        return aws_error(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        );
    }
    let payload = match payload {
        Ok(payload) => payload,
        Err(refused) => return payload_refused(&refused),
    };
    let trace = headers.get(TRACE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    match headers.get("x-amz-invocation-type").and_then(|v| v.to_str().ok()) {
        None | Some("RequestResponse") => {}
        Some("Event") => {
            if !host.has(&name) {
                return not_found(&name);
            }
            tokio::spawn(async move {
                if let Err(e) = host.invoke(&name, payload, trace).await {
                    tracing::warn!(function = %name, error = %e, "asynchronous invocation failed");
                }
            });
            return StatusCode::ACCEPTED.into_response();
        }
        Some("DryRun") if host.has(&name) => {
            return StatusCode::NO_CONTENT.into_response();
        }
        Some("DryRun") => return not_found(&name),
        Some(other) => {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                &format!("unknown invocation type {other:?}"),
            );
        }
    }
    match host.invoke(&name, payload, trace).await {
        Ok(done) => {
            let mut res = (StatusCode::OK, done.body).into_response();
            let h = res.headers_mut();
            if done.function_error.is_some() {
                h.insert(FUNCTION_ERROR, axum::http::HeaderValue::from_static(UNHANDLED));
            }
            if let Ok(v) = serde_json::to_string(&done.report).unwrap_or_default().parse() {
                h.insert(REPORT, v);
            }
            res
        }
        Err(InvokeError::NotFound) => not_found(&name),
        Err(InvokeError::Throttled) => {
            aws_error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException", "Rate Exceeded.")
        }
        Err(InvokeError::Timeout) => {
            function_failed("Sandbox.Timedout", "the invocation ran out of time")
        }
        Err(InvokeError::Crashed(why)) => function_failed("Runtime.ExitError", &why),
        Err(InvokeError::Unreachable(why)) => {
            aws_error(StatusCode::SERVICE_UNAVAILABLE, "ServiceException", &why)
        }
    }
}

/// The function a path's `FunctionName` names, in each form Lambda's Invoke API accepts:
/// `name`, `name:$LATEST`, `account:function:name` and
/// `arn:aws:lambda:region:account:function:name`, each with an optional `:$LATEST`. This
/// host keeps no versions or aliases: any other qualifier names no function here.
/// (<https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html>, `FunctionName`.)
fn function_name(named: &str) -> Option<&str> {
    let parts: Vec<&str> = named.split(':').collect();
    let (name, qualifier) = match parts.as_slice() {
        [name] => (*name, None),
        [name, qualifier] => (*name, Some(*qualifier)),
        [_account, "function", name] => (*name, None),
        [_account, "function", name, qualifier] => (*name, Some(*qualifier)),
        ["arn", _partition, "lambda", _region, _account, "function", name] => (*name, None),
        ["arn", _partition, "lambda", _region, _account, "function", name, qualifier] => {
            (*name, Some(*qualifier))
        }
        _ => return None,
    };
    let valid = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (valid && qualifier.is_none_or(|q| q == "$LATEST")).then_some(name)
}

/// A payload the API cannot take, in Lambda's words: over its 6 MB limit for synchronous
/// invocations, `RequestTooLargeException` (413), else `InvalidRequestContentException`.
fn payload_refused(refused: &axum::extract::rejection::BytesRejection) -> Response {
    if refused.status() == StatusCode::PAYLOAD_TOO_LARGE {
        let max = crate::runtime_api::MAX_PAYLOAD;
        aws_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            &format!("Request must be smaller than {max} bytes for the InvokeFunction operation"),
        )
    } else {
        aws_error(StatusCode::BAD_REQUEST, "InvalidRequestContentException", &refused.body_text())
    }
}

fn not_found(name: &str) -> Response {
    aws_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        &format!("Function not found: {name}"),
    )
}

/// Lambda reports a runtime that died or timed out as a function error, status 200.
fn function_failed(kind: &str, message: &str) -> Response {
    let body = serde_json::json!({"errorType": kind, "errorMessage": message});
    (StatusCode::OK, [(FUNCTION_ERROR, UNHANDLED)], axum::Json(body)).into_response()
}

fn aws_error(status: StatusCode, kind: &'static str, message: &str) -> Response {
    let body = serde_json::json!({"Type": "User", "message": message});
    (status, [(ERROR_TYPE, kind)], axum::Json(body)).into_response()
}

/// Invokes functions of a host in another process, through its Invoke API.
#[derive(Clone)]
pub struct HttpInvoker {
    http: reqwest::Client,
    base_url: String,
    bearer: Bearer,
}

impl std::fmt::Debug for HttpInvoker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpInvoker").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl HttpInvoker {
    /// `base_url` such as `http://127.0.0.1:41234`; `bearer` mints the credential of each
    /// call.
    pub fn new(http: reqwest::Client, base_url: impl Into<String>, bearer: Bearer) -> HttpInvoker {
        HttpInvoker { http, base_url: base_url.into(), bearer }
    }

    pub async fn invoke(
        &self,
        function: &str,
        payload: Bytes,
        trace: Option<&str>,
        timeout: Duration,
    ) -> Result<Invoked, InvokeError> {
        let mut req = self
            .http
            .post(format!("{}/2015-03-31/functions/{function}/invocations", self.base_url))
            .timeout(timeout)
            .body(payload);
        if let Some(t) = trace {
            req = req.header(TRACE, t);
        }
        if let Some(token) = (self.bearer)() {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.map_err(|e| {
            if e.is_timeout() {
                InvokeError::Timeout
            } else {
                InvokeError::Unreachable(e.to_string())
            }
        })?;
        let status = res.status();
        let error_type =
            res.headers().get(ERROR_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let function_error =
            res.headers().get(FUNCTION_ERROR).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let report: Option<Report> = res
            .headers()
            .get(REPORT)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| serde_json::from_str(v).ok());
        let body = res.bytes().await.map_err(|e| InvokeError::Unreachable(e.to_string()))?;
        match status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Err(InvokeError::NotFound),
            StatusCode::TOO_MANY_REQUESTS => return Err(InvokeError::Throttled),
            StatusCode::FORBIDDEN => {
                return Err(InvokeError::Unreachable(
                    "the function host refused the credential".into(),
                ));
            }
            other => {
                return Err(InvokeError::Unreachable(format!(
                    "{other} {}",
                    error_type.unwrap_or_default()
                )));
            }
        }
        match (function_error, report) {
            (Some(header), Some(report)) => {
                // The error's type is the body's, as Lambda reports it; the header only
                // says there is one.
                let failure: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let kind = failure["errorType"].as_str().map_or(header, str::to_owned);
                Ok(Invoked { body, function_error: Some(kind), report })
            }
            // A function error without a report: the instance never answered.
            (Some(_), None) => {
                let failure: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let why = failure["errorMessage"].as_str().unwrap_or("").to_owned();
                match failure["errorType"].as_str() {
                    Some("Sandbox.Timedout") => Err(InvokeError::Timeout),
                    _ => Err(InvokeError::Crashed(why)),
                }
            }
            (None, Some(report)) => Ok(Invoked { body, function_error: None, report }),
            (None, None) => Err(InvokeError::Unreachable("an answer without a report".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_is_named_in_every_form_lambda_accepts() {
        for named in [
            "catalog-http",
            "catalog-http:$LATEST",
            "123456789012:function:catalog-http",
            "123456789012:function:catalog-http:$LATEST",
            "arn:aws:lambda:us-east-1:123456789012:function:catalog-http",
            "arn:aws-cn:lambda:cn-north-1:123456789012:function:catalog-http:$LATEST",
        ] {
            assert_eq!(function_name(named), Some("catalog-http"), "{named}");
        }
        for named in [
            "",
            "catalog-http:7",
            "catalog-http:prod",
            "arn:aws:lambda:us-east-1:123456789012:layer:catalog-http",
            "a:b:c:d:e",
            "catalog http",
            &"x".repeat(65),
        ] {
            assert_eq!(function_name(named), None, "{named}");
        }
    }
}
