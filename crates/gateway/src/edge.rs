use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use identity_api::IdentityClient;
use kernel::{ErrorKind, RequestId, TraceParent};
use rpc::ApiError;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument as _;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::limit::{Caller, Limiter};
use crate::{Authenticator, GatewayConfig, Probe, health};

/// The target of the access log's lines (`RUST_LOG=microlith::access=off` turns them off).
pub const ACCESS_LOG: &str = "microlith::access";
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const TRACERESPONSE: HeaderName = HeaderName::from_static("traceresponse");
/// Paths whose requests are not traced: health probes, the metrics scrape, and the trace
/// store's receiver (tracing it would trace every export of its own spans, without end).
const UNTRACED_PATHS: [&str; 4] = ["/healthz", "/readyz", "/metrics", telemetry::OTLP_TRACES_PATH];

struct PublicEdge {
    auth: Authenticator,
    limiter: Arc<Limiter>,
}

/// Puts the gateway in front of `modules` (the merged public routes of every module) and
/// adds `/healthz`, `/readyz`, `/openapi.json` and `ops` (more routes for operators, e.g.
/// `/metrics`, outside authentication and rate limits). `known_keys` are token keys the
/// gateway holds already (see [`Authenticator::new`]).
pub async fn build(
    config: GatewayConfig,
    identity: IdentityClient,
    known_keys: Option<identity_api::Jwks>,
    modules: OpenApiRouter,
    probes: Vec<Arc<dyn Probe>>,
    ops: OpenApiRouter,
) -> anyhow::Result<Router> {
    let edge = Arc::new(PublicEdge {
        auth: Authenticator::new(
            identity,
            config.audience.clone(),
            known_keys,
            config.token_keys_max_age,
        )
        .await?,
        limiter: Limiter::new(config.per_user, config.per_address),
    });

    let (api_routes, mut doc) = OpenApiRouter::with_openapi(base_doc())
        .merge(modules)
        .routes(routes!(openapi_json))
        .split_for_parts();
    crate::doc::document_edge_answers(&mut doc);
    let secured = Arc::new(crate::doc::secured_operations(&doc));
    // Health probes stay outside authentication and rate limits: orchestrators call them.
    let (ops_routes, ops_doc) = OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .with_state(Arc::new(probes))
        .merge(ops)
        .split_for_parts();
    doc.merge(ops_doc);
    let doc = OpenApiJson(Arc::from(doc.to_json()?));

    let app = api_routes
        .route_layer(middleware::from_fn_with_state(secured, record_route))
        .layer(middleware::from_fn_with_state(edge, guard))
        .layer(axum::Extension(doc))
        .merge(ops_routes)
        .merge(api_browser())
        .fallback(|| async { ApiError::for_status(StatusCode::NOT_FOUND) })
        .layer(
            ServiceBuilder::new()
                .layer(middleware::from_fn(error_shape))
                .layer(middleware::from_fn(request_context))
                .layer(cors(&config.cors_origins)?)
                // Applied by every body extractor: a larger body is a 413 in the error shape.
                .layer(DefaultBodyLimit::max(config.body_limit)),
        );
    Ok(app)
}

/// The browsable API page at `/docs`: Swagger UI, vendored into the binary (no CDN), on
/// the document at `/openapi.json`; "Try it out" calls the shop with a bearer token.
fn api_browser() -> Router {
    let config = utoipa_swagger_ui::Config::from("/openapi.json").try_it_out_enabled(true);
    Router::from(utoipa_swagger_ui::SwaggerUi::new(DOCS_PATH).config(config))
}

/// Where [`api_browser`] serves.
pub const DOCS_PATH: &str = "/docs";

fn base_doc() -> OpenApi {
    let mut doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Microlith shop API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("The shop's public HTTP API, the same in every topology."))
                .build(),
        )
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
        ),
    );
    doc
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "ops", responses((status = 200, description = "OpenAPI 3.1 document")))]
async fn openapi_json(axum::Extension(doc): axum::Extension<OpenApiJson>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], doc.0.to_string()).into_response()
}

/// The rendered OpenAPI document, made once at start-up.
#[derive(Clone)]
struct OpenApiJson(Arc<str>);

fn cors(origins: &[String]) -> anyhow::Result<CorsLayer> {
    let allow_origin = if origins.is_empty() {
        AllowOrigin::any()
    } else {
        let list = origins
            .iter()
            .map(|o| HeaderValue::from_str(o).map_err(|_| anyhow::anyhow!("bad CORS origin {o:?}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        AllowOrigin::list(list)
    };
    Ok(CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            REQUEST_ID,
            rpc::wire::TRACEPARENT,
        ])
        .expose_headers([REQUEST_ID, header::RETRY_AFTER, TRACERESPONSE])
        .max_age(std::time::Duration::from_secs(3600)))
}

/// Gives every request an id (the client's `x-request-id` if it is sane), a tracing span,
/// and echoes the id on the response.
async fn request_context(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(RequestId::parse)
        .unwrap_or_else(RequestId::generate);
    req.extensions_mut().insert(id.clone());
    // The server span (OpenTelemetry HTTP semantic conventions). It continues a client's
    // valid `traceparent`, sampled flag included; a missing or malformed one starts a new
    // trace (and is never logged: only the parsed context is).
    // Probes and scrapes (orchestrators call them every few seconds) are debug spans, so
    // they fill no trace store.
    macro_rules! server_span {
        ($level:expr) => {
            tracing::span!(
                $level,
                "request",
                otel.name = %req.method(),
                otel.kind = "server",
                otel.status_code = tracing::field::Empty,
                http.request.method = %req.method(),
                http.route = tracing::field::Empty,
                http.response.status_code = tracing::field::Empty,
                url.path = %req.uri().path(),
                request_id = id.as_str(),
            )
        };
    }
    let span = if UNTRACED_PATHS.contains(&req.uri().path()) {
        server_span!(tracing::Level::DEBUG)
    } else {
        server_span!(tracing::Level::INFO)
    };
    let client = req
        .headers()
        .get(rpc::wire::TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse);
    if let Some(parent) = &client {
        telemetry::set_parent(&span, parent);
    }
    let trace = telemetry::traceparent_of(&span)
        .or_else(|| client.as_ref().map(TraceParent::child))
        .unwrap_or_else(TraceParent::root);
    req.extensions_mut().insert(trace.clone());
    let started = Instant::now();
    let method = req.method().clone();
    let measured = !UNTRACED_PATHS.contains(&req.uri().path());
    let mut res = next.run(req).instrument(span.clone()).await;
    let status = res.status().as_u16();
    if measured {
        crate::meters::record(&method, res.extensions().get(), status, started.elapsed());
    }
    span.record("http.response.status_code", i64::from(status));
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
    // The access log: one line per request, whatever its outcome (a server error's cause
    // is logged once, where it is turned into the answer). Probes and scrapes at debug.
    // Outside the request's span: the line carries its trace id already, and inside, each
    // line would also become a span event in the trace (measured: 8% more CPU per read).
    let took_ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
    let route = res.extensions().get::<crate::meters::MatchedRoute>().map(|r| r.0.as_str());
    let route = route.unwrap_or("(no route)");
    if measured {
        tracing::info!(target: ACCESS_LOG, %method, route, status, took_ms,
            trace_id = trace.trace_id(), request_id = id.as_str(), "request");
    } else {
        tracing::debug!(target: ACCESS_LOG, %method, route, status, took_ms, "request");
    }
    if let Ok(v) = HeaderValue::from_str(id.as_str()) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    // W3C Trace Context Level 2's `traceresponse`: the trace this request is part of, so a
    // client can look it up.
    if let Ok(v) = HeaderValue::from_str(&trace.to_string()) {
        res.headers_mut().insert(TRACERESPONSE, v);
    }
    res
}

/// Records the matched route template (`/api/v1/orders/{id}`) on the server span and
/// names the span after it, as the HTTP semantic conventions say (`GET /api/v1/orders/{id}`),
/// and hands it to the request duration metric. A request without credentials to an
/// operation the document marks as secured is a 401 here, before its body or parameters
/// are looked at (RFC 9110 section 15.5.2: authentication comes first).
async fn record_route(
    State(secured): State<Arc<crate::doc::SecuredOperations>>,
    req: Request,
    next: Next,
) -> Response {
    let route = req.extensions().get::<axum::extract::MatchedPath>().map(|r| r.as_str().to_owned());
    if let Some(route) = &route {
        let span = tracing::Span::current();
        span.record("http.route", route.as_str());
        telemetry::set_name(&span, format!("{} {route}", req.method()));
        if req.extensions().get::<kernel::Principal>().is_none()
            && secured.requires_credentials(req.method(), route)
        {
            let denied = kernel::AccessDenied::Unauthenticated;
            let mut res = ApiError::from(denied).into_response();
            res.extensions_mut().insert(crate::meters::MatchedRoute(route.clone()));
            return res;
        }
    }
    let mut res = next.run(req).await;
    // For the request duration metric, recorded where the whole answer is known.
    if let Some(route) = route {
        res.extensions_mut().insert(crate::meters::MatchedRoute(route));
    }
    res
}

/// Authenticates the bearer token, if any, and applies the rate limit of the caller it
/// names (or of the client address). A request with a bad token is refused even where
/// no login is needed: a client that sends credentials expects them to count.
async fn guard(State(edge): State<Arc<PublicEdge>>, mut req: Request, next: Next) -> Response {
    let address = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let auth = match req.headers().get(header::AUTHORIZATION) {
        None => Ok(None),
        Some(value) => match bearer_token(value) {
            Some(token) => edge.auth.verify(token).await.map(Some).map_err(|e| e.to_string()),
            None => Err("expected `Authorization: Bearer <token>`".to_owned()),
        },
    };
    let caller = match &auth {
        Ok(Some(p)) => Caller::User(p.user_id),
        _ => Caller::Address(address),
    };
    if let Err(wait) = edge.limiter.check(caller) {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        return ApiError::new(
            ErrorKind::RateLimited,
            "rate_limited",
            "too many requests, slow down",
        )
        .retry_after(secs)
        .into_response();
    }
    match auth {
        Ok(Some(principal)) => {
            req.extensions_mut().insert(principal);
        }
        Ok(None) => {}
        Err(why) => {
            return ApiError::new(ErrorKind::Unauthenticated, "invalid_token", why).into_response();
        }
    }
    next.run(req).await
}

fn bearer_token(value: &HeaderValue) -> Option<&str> {
    let s = value.to_str().ok()?;
    let (scheme, token) = s.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Makes every error answer the same JSON shape, including those no handler wrote (the
/// router's 404/405, the body limit's 413).
async fn error_shape(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let (parts, _) = res.into_parts();
    let mut shaped = ApiError::for_status(status).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            shaped.headers_mut().insert(name.clone(), value.clone());
        }
    }
    shaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(bearer_token(&v("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&v("bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&v("Basic abc")), None);
        assert_eq!(bearer_token(&v("Bearer ")), None);
        assert_eq!(bearer_token(&v("Bearer")), None);
    }
}
