//! `microlith function NAME`: one instance of a function, as the function host (or AWS
//! Lambda) starts it. Its request loop is the official one, `lambda_runtime::run`: over the
//! module's internal routes for an HTTP function (API Gateway HTTP API events, decoded by
//! `function_host::request_from_event`, which answers 400 where `lambda_http` panicked),
//! over the module's event handlers for an events function.

use anyhow::Context as _;
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use clap::Args;
use lambda_runtime::{LambdaEvent, service_fn};
use runtime::{ProcessRole, Shop, Trigger};

use runtime::lifecycle::{child_shutdown, follow_registry};

use crate::up::ShopArgs;

#[derive(Debug, Args)]
#[command(after_help = "\
Started by the function host of `microlith up --topology serverless|hybrid`, which sets
AWS_LAMBDA_RUNTIME_API (the Lambda Runtime API endpoint of this instance) and the other
AWS_LAMBDA_* variables; the same binary runs on AWS Lambda with the same variables.")]
pub struct FunctionArgs {
    /// The function to run (a `[[function]]` name of the topology, e.g. `cart` or
    /// `orders-events`).
    name: String,

    #[command(flatten)]
    shop: ShopArgs,
}

/// How long a request loop that failed waits to learn that its host is gone.
const HOST_GONE: std::time::Duration = std::time::Duration::from_secs(1);

/// The init phase: the shop's part for this function, ready for invocations.
async fn init(
    args: &FunctionArgs,
    watching: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<Shop> {
    let mut config = args.shop.resolve(None, ProcessRole::Function { name: args.name.clone() })?;
    crate::observe::process(&config)?;
    config.seed = false;
    config.registry = runtime::Registry::new();
    follow_registry(&config, watching).await?;
    Shop::start(config).await
}

/// Tells the host why this instance cannot start (`/init/error`, as Lambda's runtimes do),
/// so that the invocation waiting for it fails at once rather than at its timeout.
async fn report_init_error(e: &anyhow::Error) {
    let Some(api) = std::env::var_os("AWS_LAMBDA_RUNTIME_API") else { return };
    // The host gives a URL with a secret base path; AWS Lambda gives `host:port`.
    let api = api.to_string_lossy();
    let base = if api.starts_with("http://") { api.to_string() } else { format!("http://{api}") };
    let url = format!("{}/2018-06-01/runtime/init/error", base.trim_end_matches('/'));
    let body =
        serde_json::json!({"errorType": "Runtime.InitError", "errorMessage": format!("{e:#}")});
    let sent = reqwest::Client::new()
        .post(url)
        .header("Lambda-Runtime-Function-Error-Type", "Runtime.InitError")
        .json(&body)
        .timeout(std::time::Duration::from_secs(2))
        .send()
        .await;
    if let Err(e) = sent {
        tracing::warn!(error = %e, "cannot report the init error to the function host");
    }
}

pub async fn run(args: FunctionArgs) -> anyhow::Result<()> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        anyhow::bail!(
            "AWS_LAMBDA_RUNTIME_API is not set: a function runs under a function host (microlith up) or on AWS Lambda"
        );
    }
    let watching = tokio_util::sync::CancellationToken::new();
    let shop = match init(&args, &watching).await {
        Ok(shop) => shop,
        Err(e) => {
            report_init_error(&e).await;
            return Err(e);
        }
    };
    let work = shop.function.clone().context("this process is not a function")?;
    let run = async {
        match work.trigger {
            Trigger::Http => {
                let router = work.http_router().context("an HTTP function has routes")?;
                lambda_runtime::run(service_fn(
                    move |event: LambdaEvent<ApiGatewayV2httpRequest>| {
                        serve_http(router.clone(), event)
                    },
                ))
                .await
            }
            Trigger::Events => {
                let work = work.clone();
                lambda_runtime::run(service_fn(
                    move |event: LambdaEvent<runtime::Signed<bus::batch::EventBatch>>| {
                        let work = work.clone();
                        async move {
                            work.handle_batch(event.payload)
                                .await
                                .map_err(|e| lambda_runtime::Error::from(format!("{e:#}")))
                        }
                    },
                ))
                .await
            }
            Trigger::Schedule { .. } => {
                let work = work.clone();
                lambda_runtime::run(service_fn(
                    move |event: LambdaEvent<runtime::Signed<runtime::ScheduledEvent>>| {
                        let work = work.clone();
                        async move {
                            work.run_job(event.payload)
                                .await
                                .map_err(|e| lambda_runtime::Error::from(format!("{e:#}")))
                        }
                    },
                ))
                .await
            }
        }
        .map_err(|e| anyhow::anyhow!("the function's request loop stopped: {e}"))
    };
    let result = tokio::select! {
        r = run => match r {
            // A host that goes away drops this instance's Runtime API endpoint just before
            // its lifeline: that ends the request loop, and is no failure of the function.
            Err(e) => match tokio::time::timeout(HOST_GONE, child_shutdown()).await {
                Ok(()) => Ok(()),
                Err(_) => Err(e),
            },
            Ok(()) => Ok(()),
        },
        () = child_shutdown() => Ok(()),
    };
    watching.cancel();
    shop.close().await;
    result
}

/// One API Gateway HTTP API invocation: its request through the module's routes, its
/// answer as a response event. An event that carries no valid request is a 400, not a
/// failed invocation.
///
/// The host passes the invocation span's context in `Lambda-Runtime-Trace-Id` (where AWS
/// puts its X-Ray id): the request's work continues it, so the function's spans sit under
/// the invocation rather than beside it. An X-Ray id is not a W3C `traceparent` and
/// leaves the request's own header in force.
async fn serve_http(
    router: axum::Router,
    event: LambdaEvent<ApiGatewayV2httpRequest>,
) -> Result<ApiGatewayV2httpResponse, lambda_runtime::Error> {
    use tower::ServiceExt as _;
    let mut req = match function_host::request_from_event(event.payload) {
        Ok(req) => req,
        Err(e) => {
            let error =
                rpc::ApiError::new(kernel::ErrorKind::Validation, "invalid_request", e.to_string());
            let res = axum::response::IntoResponse::into_response(error);
            return Ok(function_host::response_event(collect(res).await?));
        }
    };
    let invocation = event
        .context
        .xray_trace_id
        .as_deref()
        .filter(|id| kernel::TraceParent::parse(id).is_some())
        .and_then(|id| axum::http::HeaderValue::from_str(id).ok());
    if let Some(value) = invocation {
        req.headers_mut().insert("traceparent", value);
    }
    let res = router.oneshot(req.map(axum::body::Body::from)).await?;
    Ok(function_host::response_event(collect(res).await?))
}

/// A response with its whole body in hand (a function answers at most Lambda's 6 MB).
async fn collect(
    res: axum::response::Response,
) -> Result<http::Response<bytes::Bytes>, lambda_runtime::Error> {
    let (parts, body) = res.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await?;
    Ok(http::Response::from_parts(parts, body))
}
