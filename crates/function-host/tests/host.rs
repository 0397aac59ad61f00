//! The host against a function built only on the official `lambda_runtime` crate.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use function_host::{FunctionConfig, FunctionHost, HttpInvoker, InvokeError, Launch, Prices};
use serde_json::{Value, json};

fn host(name: &str, tweak: impl FnOnce(&mut FunctionConfig)) -> FunctionHost {
    let host = FunctionHost::new(Prices::default());
    let mut config = FunctionConfig::new(name);
    config.idle_timeout = Duration::from_secs(60);
    tweak(&mut config);
    host.register(config, Launch::program(env!("CARGO_BIN_EXE_echo-function")));
    host
}

async fn call(
    host: &FunctionHost,
    name: &str,
    payload: Value,
) -> Result<(Value, function_host::Report), InvokeError> {
    let done = host.invoke(name, Bytes::from(payload.to_string()), None).await?;
    assert_eq!(done.function_error, None, "{:?}", String::from_utf8_lossy(&done.body));
    Ok((serde_json::from_slice(&done.body).expect("json answer"), done.report))
}

#[tokio::test]
async fn the_first_invocation_is_cold_and_later_ones_are_warm_on_the_same_instance() {
    let host = host("echo", |_| {});
    let (first, cold) = call(&host, "echo", json!({"n": 1})).await.unwrap();
    assert_eq!(first["echo"], json!({"n": 1}));
    assert_eq!(first["request_id"], cold.request_id.as_str());
    assert_eq!(first["arn"], "arn:aws:lambda:local:000000000000:function:echo");
    let deadline = first["deadline"].as_u64().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    assert!(deadline > now.as_millis() as u64, "the deadline is in the future");
    assert!(cold.cold);
    let init = cold.init_ms.expect("a cold start has an init phase");
    assert!(init > 0.0);
    assert!(cold.billed_ms as f64 >= init, "{cold:?}");
    assert!(cold.max_memory_mb > 0);
    for n in 2..5 {
        let (answer, warm) = call(&host, "echo", json!({"n": n})).await.unwrap();
        assert!(!warm.cold, "{warm:?}");
        assert_eq!(warm.init_ms, None);
        assert_eq!(answer["pid"], first["pid"], "the warm instance is reused");
    }
    let stats = &host.stats()[0];
    assert_eq!((stats.invocations, stats.cold_starts, stats.instances), (4, 1, 1));
    assert!(stats.cost_usd > 0.0);
    host.shutdown().await;
    assert!(host.stats().is_empty());
}

#[tokio::test]
async fn idle_instances_stop_and_the_next_call_is_cold_again() {
    let host = host("idle", |c| c.idle_timeout = Duration::from_millis(300));
    let (_, first) = call(&host, "idle", json!({})).await.unwrap();
    assert!(first.cold);
    let started = Instant::now();
    while host.stats()[0].instances > 0 {
        assert!(started.elapsed() < Duration::from_secs(5), "never scaled to zero");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(started.elapsed() >= Duration::from_millis(250), "not before the idle timeout");
    let (_, again) = call(&host, "idle", json!({})).await.unwrap();
    assert!(again.cold, "{again:?}");
    assert_eq!(host.stats()[0].instances_started, 2);
    host.shutdown().await;
}

#[tokio::test]
async fn concurrency_is_capped_and_beyond_the_queue_callers_are_throttled() {
    let host = host("busy", |c| {
        c.max_concurrency = 2;
        c.max_queue = 3;
    });
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let host = host.clone();
        calls.spawn(async move { call(&host, "busy", json!({"sleep_ms": 300})).await });
    }
    let (mut ok, mut throttled, mut pids) = (0, 0, HashSet::new());
    while let Some(done) = calls.join_next().await {
        match done.unwrap() {
            Ok((answer, _)) => {
                ok += 1;
                pids.insert(answer["pid"].as_u64().unwrap());
            }
            Err(InvokeError::Throttled) => throttled += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((ok, throttled), (5, 7), "2 running + 3 queued, the rest refused");
    assert!(pids.len() <= 2, "never more than max_concurrency instances: {pids:?}");
    let stats = &host.stats()[0];
    assert!(stats.instances_started <= 2, "{stats:?}");
    assert_eq!(stats.throttled, 7);
    host.shutdown().await;
}

#[tokio::test]
async fn an_instance_that_dies_fails_its_invocation_and_is_replaced() {
    let host = host("crashy", |_| {});
    let (before, _) = call(&host, "crashy", json!({})).await.unwrap();
    let err = call(&host, "crashy", json!({"exit": true})).await.unwrap_err();
    assert!(matches!(err, InvokeError::Crashed(_)), "{err}");
    let (after, report) = call(&host, "crashy", json!({})).await.unwrap();
    assert!(report.cold, "a new instance");
    assert_ne!(after["pid"], before["pid"]);

    // Killed from outside while it works.
    let slow = {
        let host = host.clone();
        tokio::spawn(async move { call(&host, "crashy", json!({"sleep_ms": 2000})).await })
    };
    until_busy(&host, "crashy").await;
    for pid in host.pids("crashy") {
        std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    }
    let err = slow.await.unwrap().unwrap_err();
    assert!(matches!(err, InvokeError::Crashed(_)), "{err}");
    assert_eq!(host.stats()[0].crashes, 2);
    host.shutdown().await;
}

#[tokio::test]
async fn errors_and_timeouts_are_reported() {
    let host = host("strict", |c| c.timeout = Duration::from_millis(500));
    let done =
        host.invoke("strict", Bytes::from(json!({"fail": true}).to_string()), None).await.unwrap();
    assert!(done.function_error.is_some());
    let failure: Value = serde_json::from_slice(&done.body).unwrap();
    assert!(failure["errorMessage"].as_str().unwrap().contains("asked to fail"), "{failure}");
    let started = Instant::now();
    let err = call(&host, "strict", json!({"sleep_ms": 5000})).await.unwrap_err();
    assert_eq!(err, InvokeError::Timeout);
    assert!(started.elapsed() < Duration::from_secs(2));
    // The instance still runs the late invocation: the host stops it.
    let stopped = Instant::now();
    while !host.pids("strict").is_empty() {
        assert!(stopped.elapsed() < Duration::from_secs(5), "the timed-out instance is stopped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = &host.stats()[0];
    assert_eq!((stats.function_errors, stats.timeouts), (1, 1));
    assert!(matches!(host.invoke("nope", Bytes::new(), None).await, Err(InvokeError::NotFound)));
    host.shutdown().await;
}

/// A runtime that reports `/init/error` (as `lambda_runtime` does when its setup fails) and
/// then lingers, written in bash so that nothing of ours is in it.
const FAILING_INIT: &str = r#"
api=${AWS_LAMBDA_RUNTIME_API#http://}; hostport=${api%%/*}; base=/${api#*/}
host=${hostport%:*}; port=${hostport#*:}
body='{"errorType":"Runtime.InitError","errorMessage":"no database"}'
exec 3<>"/dev/tcp/$host/$port"
printf 'POST %s/2018-06-01/runtime/init/error HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' "$base" "$host" "${#body}" "$body" >&3
cat <&3 >/dev/null
sleep 30
"#;

#[tokio::test]
async fn an_instance_that_cannot_initialize_fails_the_waiting_invocation_at_once() {
    let host = FunctionHost::new(Prices::default());
    let mut config = FunctionConfig::new("broken");
    config.timeout = Duration::from_secs(30);
    let launch = Launch {
        program: "bash".into(),
        args: vec!["-c".into(), FAILING_INIT.into()],
        env: Vec::new(),
        env_remove: Vec::new(),
        lifeline: false,
    };
    host.register(config, launch);
    let started = Instant::now();
    let err = host.invoke("broken", Bytes::from_static(b"{}"), None).await.unwrap_err();
    assert!(matches!(&err, InvokeError::Crashed(why) if why.contains("no database")), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "not after the 30 s timeout");
    assert!(host.pids("broken").is_empty(), "no instance is left retrying");
    host.shutdown().await;
}

const GOOD: &str = "the-shop's-credential";

/// Admits only `Bearer GOOD`.
fn authorize() -> function_host::Authorize {
    std::sync::Arc::new(|headers: &reqwest::header::HeaderMap| {
        match headers.get("authorization").and_then(|v| v.to_str().ok()) {
            Some(v) if v == format!("Bearer {GOOD}") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
}

/// `host`'s Invoke API on a port of its own, admitting the `GOOD` credential.
async fn serve_invoke_api(
    host: &function_host::FunctionHost,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = function_host::invoke_router(host.clone(), authorize());
    (addr, tokio::spawn(axum::serve(listener, router).into_future()))
}

fn bearer(token: &'static str) -> function_host::Bearer {
    std::sync::Arc::new(move || Some(token.to_owned()))
}

#[tokio::test]
async fn the_invoke_api_admits_only_a_valid_credential() {
    let host = host("guarded", |_| {});
    let (addr, server) = serve_invoke_api(&host).await;
    let url = format!("http://{addr}/2015-03-31/functions/guarded/invocations");
    let http = reqwest::Client::new();
    for (token, invocation_type) in [
        (None, "RequestResponse"),
        (Some("forged"), "RequestResponse"),
        (None, "Event"),
        (None, "DryRun"),
        (Some("forged"), "DryRun"),
    ] {
        let mut req = http.post(&url).header("x-amz-invocation-type", invocation_type).body("{}");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 403, "{token:?} {invocation_type}");
        assert_eq!(res.headers()["x-amzn-errortype"], "UnrecognizedClientException");
    }
    assert_eq!(host.stats()[0].invocations, 0, "nothing ran");
    assert!(host.pids("guarded").is_empty(), "not even a cold start");
    let res = http
        .post(&url)
        .bearer_auth(GOOD)
        .header("x-amz-invocation-type", "DryRun")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204, "the credential is what was missing");
    // Over Lambda's 6 MB payload limit: its error, in its shape.
    let res = http.post(&url).bearer_auth(GOOD).body(vec![b'x'; 6 * 1024 * 1024 + 1]).send();
    let res = res.await.unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(res.headers()["x-amzn-errortype"], "RequestTooLargeException");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["Type"], "User", "{body}");
    assert!(body["message"].as_str().unwrap().contains("6291456 bytes"), "{body}");
    let t = Duration::from_secs(10);
    let stranger = HttpInvoker::new(http.clone(), format!("http://{addr}"), bearer("forged"));
    let err = stranger.invoke("guarded", Bytes::from_static(b"{}"), None, t).await.unwrap_err();
    assert!(matches!(err, InvokeError::Unreachable(ref why) if why.contains("refused")), "{err}");
    server.abort();
    host.shutdown().await;
}

/// A runtime that tells the test where its Runtime API is, then waits: the test plays both
/// a stranger and the instance.
const TELLS_ITS_API: &str = r#"printf '%s' "$AWS_LAMBDA_RUNTIME_API" > "$API_FILE"; sleep 30"#;

#[tokio::test]
async fn a_strangers_long_poll_on_an_instances_runtime_api_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api");
    let host = FunctionHost::new(Prices::default());
    let mut config = FunctionConfig::new("private");
    config.timeout = Duration::from_secs(20);
    let launch = Launch {
        program: "bash".into(),
        args: vec!["-c".into(), TELLS_ITS_API.into()],
        env: vec![("API_FILE".into(), file.clone().into())],
        env_remove: Vec::new(),
        lifeline: false,
    };
    host.register(config, launch);
    let invocation = {
        let host = host.clone();
        tokio::spawn(async move {
            host.invoke("private", Bytes::from_static(b"{\"password\":\"hunter2\"}"), None).await
        })
    };
    let started = Instant::now();
    let api = loop {
        match std::fs::read_to_string(&file) {
            Ok(api) if !api.is_empty() => break api,
            _ => {
                assert!(started.elapsed() < Duration::from_secs(10), "the instance started");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let url = reqwest::Url::parse(&api).unwrap();
    assert!(url.path().len() > 32, "a secret base path: {api}");
    let port = url.port().unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    // The stranger knows the port (it can list sockets), not the path.
    let stranger = format!("http://127.0.0.1:{port}/2018-06-01/runtime");
    let res = http.get(format!("{stranger}/invocation/next")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(!res.text().await.unwrap().contains("hunter2"));
    let res = http.post(format!("{stranger}/init/error")).body("{}").send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(host.pids("private").len(), 1, "the instance was not failed by a stranger");
    // The instance itself, with its path, gets the invocation.
    let own = format!("{}/2018-06-01/runtime/invocation/next", api.trim_end_matches('/'));
    let res = http.get(own).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("hunter2"));
    invocation.abort();
    host.shutdown().await;
}

#[tokio::test]
async fn other_processes_invoke_through_the_invoke_api() {
    let host = host("remote", |c| {
        c.max_concurrency = 1;
        c.max_queue = 0;
    });
    let (addr, server) = serve_invoke_api(&host).await;
    let client = HttpInvoker::new(reqwest::Client::new(), format!("http://{addr}"), bearer(GOOD));
    let t = Duration::from_secs(10);
    let done = client.invoke("remote", Bytes::from_static(b"{\"a\":1}"), None, t).await.unwrap();
    let answer: Value = serde_json::from_slice(&done.body).unwrap();
    assert_eq!(answer["echo"], json!({"a": 1}));
    assert!(done.report.cold);
    assert_eq!(
        client.invoke("missing", Bytes::new(), None, t).await.unwrap_err(),
        InvokeError::NotFound
    );
    let busy = {
        let client = client.clone();
        tokio::spawn(async move {
            client.invoke("remote", Bytes::from_static(b"{\"sleep_ms\":3000}"), None, t).await
        })
    };
    until_busy(&host, "remote").await;
    let err = client.invoke("remote", Bytes::from_static(b"{}"), None, t).await.unwrap_err();
    assert_eq!(err, InvokeError::Throttled);
    assert!(busy.await.unwrap().is_ok());
    let err =
        client.invoke("remote", Bytes::from_static(b"{\"exit\":true}"), None, t).await.unwrap_err();
    assert!(matches!(err, InvokeError::Crashed(_)), "{err}");
    server.abort();
    host.shutdown().await;
}

/// Waits (at most 10 s) until `function` runs an invocation: state, not a guess of time.
async fn until_busy(host: &FunctionHost, function: &str) {
    let started = Instant::now();
    while !host.stats().iter().any(|s| s.name == function && s.busy >= 1) {
        assert!(started.elapsed() < Duration::from_secs(10), "{function} never got busy");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What SDKs read from the Invoke API is what Lambda sends: `X-Amz-Function-Error:
/// Unhandled` for a function error (its type in the body), and a function named in any of
/// the forms Lambda accepts.
#[tokio::test]
async fn the_invoke_api_speaks_lambdas_headers_and_names() {
    let host = host("named", |_| {});
    let (addr, server) = serve_invoke_api(&host).await;
    let http = reqwest::Client::new();
    let url = |name: &str| format!("http://{addr}/2015-03-31/functions/{name}/invocations");
    let res = http
        .post(url("named"))
        .bearer_auth(GOOD)
        .body(json!({"fail": true}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-amz-function-error"], "Unhandled");
    let failure: Value = res.json().await.unwrap();
    assert!(failure["errorType"].is_string(), "{failure}");
    for name in [
        "named:%24LATEST",
        "123456789012:function:named",
        "arn:aws:lambda:us-east-1:123456789012:function:named:%24LATEST",
    ] {
        let res = http.post(url(name)).bearer_auth(GOOD).body("{}").send().await.unwrap();
        assert_eq!(res.status(), 200, "{name}");
        assert!(res.headers().get("x-amz-function-error").is_none(), "{name}");
    }
    let res = http.post(url("named:7")).bearer_auth(GOOD).body("{}").send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["x-amzn-errortype"], "ResourceNotFoundException");
    server.abort();
    host.shutdown().await;
}
