//! HTTP requests as API Gateway HTTP API (payload 2.0) events, and the events' answers back
//! as HTTP responses: what a gateway in front of `lambda_http` functions does.

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
