//! HTTP requests as API Gateway HTTP API (payload 2.0) events, and the events' answers back
//! as HTTP responses: what a gateway in front of an HTTP function does, and the other side,
//! what the function does with them ([`request_from_event`], [`response_event`]).

use aws_lambda_events::apigw::{
    ApiGatewayV2httpRequest, ApiGatewayV2httpRequestContext,
    ApiGatewayV2httpRequestContextHttpDescription, ApiGatewayV2httpResponse,
};
use aws_lambda_events::encodings::Body;
use base64::Engine as _;
use bytes::Bytes;

#[derive(Debug, thiserror::Error)]
pub enum ApigwError {
    #[error("cannot encode the event: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("the function's answer is not an API Gateway response: {0}")]
    Decode(String),
    /// The event carries no HTTP request that can be built (a path, header or body that is
    /// not valid): the function answers 400 rather than fail the invocation.
    #[error("the event is not a valid HTTP request: {0}")]
    BadRequest(String),
}

/// The event for `req`, as API Gateway would send it to the function.
pub fn request_event(req: &http::Request<Bytes>) -> Result<Bytes, ApigwError> {
    let uri = req.uri();
    let path = uri.path().to_owned();
    let mut http_ctx = ApiGatewayV2httpRequestContextHttpDescription::default();
    http_ctx.method = req.method().clone();
    http_ctx.path = Some(path.clone());
    http_ctx.protocol = Some("HTTP/1.1".into());
    http_ctx.source_ip = Some("127.0.0.1".into());
    http_ctx.user_agent = req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut ctx = ApiGatewayV2httpRequestContext::default();
    ctx.route_key = Some("$default".into());
    ctx.stage = Some("$default".into());
    ctx.account_id = Some("000000000000".into());
    ctx.apiid = Some("microlith".into());
    ctx.request_id = Some(uuid::Uuid::new_v4().to_string());
    ctx.time_epoch = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
    ctx.http = http_ctx;

    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".into());
    event.route_key = Some("$default".into());
    event.raw_path = Some(path);
    event.raw_query_string = Some(uri.query().unwrap_or_default().to_owned());
    event.headers = req.headers().clone();
    event.request_context = ctx;
    let body = req.body();
    if !body.is_empty() {
        match std::str::from_utf8(body) {
            Ok(text) => event.body = Some(text.to_owned()),
            Err(_) => {
                event.body = Some(base64::engine::general_purpose::STANDARD.encode(body));
                event.is_base64_encoded = true;
            }
        }
    }
    Ok(Bytes::from(serde_json::to_vec(&event)?))
}

/// The HTTP response a function answered with.
pub fn response_from_event(answer: &[u8]) -> Result<http::Response<Bytes>, ApigwError> {
    let event: ApiGatewayV2httpResponse =
        serde_json::from_slice(answer).map_err(|e| ApigwError::Decode(e.to_string()))?;
    let status = u16::try_from(event.status_code)
        .ok()
        .and_then(|s| http::StatusCode::from_u16(s).ok())
        .ok_or_else(|| ApigwError::Decode(format!("status {}", event.status_code)))?;
    let body = match event.body {
        None | Some(Body::Empty) => Bytes::new(),
        Some(Body::Text(t)) if event.is_base64_encoded => Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .map_err(|e| ApigwError::Decode(format!("body: {e}")))?,
        ),
        Some(Body::Text(t)) => Bytes::from(t),
        Some(Body::Binary(b)) => Bytes::from(b),
        Some(_) => Bytes::new(),
    };
    let mut res = http::Response::new(body);
    *res.status_mut() = status;
    *res.headers_mut() = event.headers;
    for cookie in event.cookies {
        if let Ok(v) = http::HeaderValue::from_str(&cookie) {
            res.headers_mut().append(http::header::SET_COOKIE, v);
        }
    }
    Ok(res)
}

/// The HTTP request an API Gateway HTTP API (payload 2.0) event carries, as the function
/// receives it. Every part of it is checked, never assumed: a method, path, query, cookie
/// or body that does not make a valid request is [`ApigwError::BadRequest`] (found by
/// fuzzing: `lambda_http` panics on a `Host` header that is not a valid authority).
pub fn request_from_event(
    event: ApiGatewayV2httpRequest,
) -> Result<http::Request<Bytes>, ApigwError> {
    let bad = |what: &str| ApigwError::BadRequest(what.to_owned());
    let path = event.raw_path.filter(|p| !p.is_empty()).unwrap_or_else(|| "/".to_owned());
    let target = match event.raw_query_string.as_deref() {
        None | Some("") => path,
        Some(q) => format!("{path}?{q}"),
    };
    let uri = http::uri::PathAndQuery::try_from(target.as_str())
        .map_err(|_| bad("the path or query is not a valid request target"))?;
    let body = match event.body {
        None => Bytes::new(),
        Some(text) if event.is_base64_encoded => Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| bad("the body is not valid base64"))?,
        ),
        Some(text) => Bytes::from(text),
    };
    let mut req = http::Request::new(body);
    *req.method_mut() = event.request_context.http.method;
    *req.uri_mut() = http::Uri::from(uri);
    *req.headers_mut() = event.headers;
    // Payload 2.0 carries cookies apart from the headers.
    if let Some(cookies) = event.cookies.filter(|c| !c.is_empty()) {
        let joined = http::HeaderValue::from_str(&cookies.join("; "))
            .map_err(|_| bad("a cookie is not a valid header value"))?;
        req.headers_mut().insert(http::header::COOKIE, joined);
    }
    Ok(req)
}

/// The API Gateway HTTP API (payload 2.0) response event for `res`, as a function answers;
/// a body that is not UTF-8 goes base64-encoded.
pub fn response_event(res: http::Response<Bytes>) -> ApiGatewayV2httpResponse {
    let (parts, body) = res.into_parts();
    let mut event = ApiGatewayV2httpResponse::default();
    event.status_code = i64::from(parts.status.as_u16());
    event.headers = parts.headers;
    if !body.is_empty() {
        match String::from_utf8(body.to_vec()) {
            Ok(text) => event.body = Some(Body::Text(text)),
            Err(_) => {
                event.body =
                    Some(Body::Text(base64::engine::general_purpose::STANDARD.encode(&body)));
                event.is_base64_encoded = true;
            }
        }
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_becomes_a_v2_event() {
        let req = http::Request::post("/internal/cart/get?x=1")
            .header("authorization", "Bearer t")
            .body(Bytes::from_static(b"[\"a\"]"))
            .unwrap();
        let event: serde_json::Value =
            serde_json::from_slice(&request_event(&req).unwrap()).unwrap();
        assert_eq!(event["version"], "2.0");
        assert_eq!(event["rawPath"], "/internal/cart/get");
        assert_eq!(event["rawQueryString"], "x=1");
        assert_eq!(event["requestContext"]["http"]["method"], "POST");
        assert_eq!(event["headers"]["authorization"], "Bearer t");
        assert_eq!(event["body"], "[\"a\"]");
        assert_eq!(event["isBase64Encoded"], false);
    }

    #[test]
    fn an_answer_becomes_a_response() {
        let answer = br#"{"statusCode":404,"headers":{"content-type":"application/json"},"multiValueHeaders":{},"body":"{\"e\":1}","isBase64Encoded":false,"cookies":[]}"#;
        let res = response_from_event(answer).unwrap();
        assert_eq!(res.status(), 404);
        assert_eq!(res.headers()["content-type"], "application/json");
        assert_eq!(res.body().as_ref(), b"{\"e\":1}");
        let binary = br#"{"statusCode":200,"body":"AAE=","isBase64Encoded":true,"cookies":[]}"#;
        assert_eq!(response_from_event(binary).unwrap().body().as_ref(), &[0u8, 1]);
        assert!(response_from_event(b"{\"nope\":1}").is_err());
    }
}

#[cfg(test)]
mod function_side_tests {
    use super::*;

    fn event(json: &str) -> ApiGatewayV2httpRequest {
        serde_json::from_str(json).expect("an event")
    }

    /// What the host sends is what the function gets: method, path, query, headers, body.
    #[test]
    fn a_request_survives_the_round_trip() {
        let req = http::Request::builder()
            .method("PUT")
            .uri("/api/v1/cart/items/x?a=1&b=%20")
            .header("authorization", "Bearer t")
            .body(Bytes::from_static(b"{\"quantity\": 2}"))
            .unwrap();
        let sent = request_event(&req).unwrap();
        let got = request_from_event(serde_json::from_slice(&sent).unwrap()).unwrap();
        assert_eq!(got.method(), "PUT");
        assert_eq!(got.uri(), "/api/v1/cart/items/x?a=1&b=%20");
        assert_eq!(got.headers()["authorization"], "Bearer t");
        assert_eq!(got.body(), req.body());
        let binary =
            http::Request::builder().uri("/b").body(Bytes::from_static(&[0xff, 0])).unwrap();
        let sent = request_event(&binary).unwrap();
        let got = request_from_event(serde_json::from_slice(&sent).unwrap()).unwrap();
        assert_eq!(got.body(), binary.body());
    }

    /// The crash fuzzing found in `lambda_http` (a `Host` that is no authority), and the
    /// rest of its kind: a 400 reason, never a panic.
    #[test]
    fn an_event_that_is_no_valid_request_is_a_bad_request() {
        let base = r#""requestContext":{"http":{"method":"GET"}},"isBase64Encoded":false"#;
        for bad in [
            format!(r#"{{"rawPath":"/p","headers":{{"host":"sho`"}},{base}}}"#),
            format!(r#"{{"rawPath":"/p q",{base}}}"#),
            format!(r#"{{"rawPath":"/p","rawQueryString":"a=\u0000",{base}}}"#),
            format!(r#"{{"rawPath":"/p","cookies":["a=\n"],{base}}}"#),
            r#"{"rawPath":"/p","body":"!!","isBase64Encoded":true,"requestContext":{"http":{"method":"GET"}}}"#.to_owned(),
        ] {
            match request_from_event(event(&bad)) {
                Err(ApigwError::BadRequest(_)) => {}
                Ok(req) => {
                    // Taken as is only if it is a valid request (the `Host` case: axum
                    // reads the path, not the header).
                    assert!(bad.contains("sho`"), "{bad}: {req:?}");
                }
                Err(e) => panic!("{bad}: {e}"),
            }
        }
    }

    #[test]
    fn a_response_becomes_an_event_the_host_reads_back() {
        let res = http::Response::builder()
            .status(201)
            .header("content-type", "application/json")
            .body(Bytes::from_static(b"{}"))
            .unwrap();
        let event = serde_json::to_vec(&response_event(res)).unwrap();
        let back = response_from_event(&event).unwrap();
        assert_eq!(back.status(), 201);
        assert_eq!(back.body().as_ref(), b"{}");
        let binary = http::Response::new(Bytes::from_static(&[0xff, 0xfe]));
        let event = serde_json::to_vec(&response_event(binary)).unwrap();
        assert_eq!(response_from_event(&event).unwrap().body().as_ref(), &[0xff, 0xfe]);
    }
}
