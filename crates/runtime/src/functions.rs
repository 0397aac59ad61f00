//! Serverless placement, both sides. In the process that runs the gateway: the function
//! host with every function of the topology, its Invoke API on loopback (its address in
//! `<data>/run/function-host.json` for the other processes), and an event source per events
//! function that pulls the module's bus events and invokes the function with batches. In
//! a function instance: what its request loop calls (the module's internal routes, or its
//! event handlers), each invocation publishing its outbox before it answers.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use bus::batch::{BatchResponse, EventBatch, ItemFailure};
use bus::{BusClient, Envelope, HandleError, Handler, Outbox, Subscription};
use bytes::Bytes;
use function_host::{FunctionHost, HttpInvoker, InvokeError, Launch};
use futures::future::BoxFuture;
use rpc::InvokeFailure;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{Function, ShopConfig, Trigger};

/// How the host starts an instance: the `microlith` binary with the function's
/// [`crate::plan::Process::command`], the shop's configuration handed over whole
/// ([`crate::ShopConfig::child_env`]), and these extra variables (a log filter, say).
#[derive(Debug, Clone, Default)]
pub struct FunctionLaunch {
    /// The `microlith` binary; without it a topology with functions cannot start.
    pub program: Option<PathBuf>,
    pub env: Vec<(OsString, OsString)>,
}

/// Where the function host's Invoke API listens, for the processes of one data directory.
pub fn host_file(data_dir: &Path) -> PathBuf {
    data_dir.join("run").join("function-host.json")
}

#[derive(Serialize, Deserialize)]
struct HostFile {
    address: SocketAddr,
}

/// Starts the host of the topology's functions and its Invoke API; stops both on `cancel`.
pub(crate) async fn start_host(
    config: &ShopConfig,
    plan: &crate::Plan,
    trust: &crate::Trust,
    cancel: CancellationToken,
) -> anyhow::Result<FunctionHost> {
    let t = &config.topology;
    let host = FunctionHost::new(t.prices);
    let launch = &config.functions;
    let program = launch.program.clone().context(
        "the topology has functions, but this process was not told which binary runs them",
    )?;
    for f in &t.functions {
        let process = plan.process(&f.name).context("every function is in the plan")?;
        let args = process.command.iter().map(OsString::from).collect();
        // Only identity's instances bootstrap the admin account, so only they get its
        // password.
        let crate::ChildEnv { set: mut env, remove: env_remove } = config.child_env(process)?;
        env.extend(launch.env.iter().cloned());
        env.push((crate::SUPERVISED_ENV.into(), "1".into()));
        host.register(
            f.host_config(),
            Launch { program: program.clone(), args, env, env_remove, lifeline: true },
        );
    }
    for f in &t.functions {
        if let Trigger::Schedule { job, every } = &f.trigger {
            tokio::spawn(schedule(
                host.clone(),
                trust.issuer.clone(),
                f.name.clone(),
                job.clone(),
                *every,
                cancel.clone(),
            ));
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen for function invocations")?;
    let address = listener.local_addr()?;
    // Only the shop's own services invoke functions: a credential for the function host.
    let verifier = trust.verifier(crate::trust::FUNCTION_HOST);
    let router = function_host::invoke_router(
        host.clone(),
        Arc::new(move |headers: &http::HeaderMap| {
            let token = headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or_else(|| "no credential".to_owned())?;
            verifier.verify(token).map(drop).map_err(|e| e.to_string())
        }),
    );
    let stopping = host.clone();
    tokio::spawn(async move {
        let limits = rpc::ListenerLimits::for_this_process();
        let served = rpc::serve(listener, router, limits, cancel.cancelled_owned()).await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the Invoke API stopped");
        }
        stopping.shutdown().await;
    });
    crate::shared_file::write(&host_file(&config.data_dir), &HostFile { address })?;
    tracing::info!(%address, functions = ?host.names(), "function host ready");
    Ok(host)
}

/// What a scheduled function is invoked with (EventBridge Scheduler sends its own JSON).
#[derive(Debug, Serialize, Deserialize)]
pub struct ScheduledEvent {
    pub job: String,
    /// When the schedule fired, ms since the Unix epoch.
    pub time: i64,
}

/// An invocation payload with the proof of who sent it: a signed-payload credential
/// ([`rpc::CredentialIssuer::sign_payload`]) over the JSON of `body`, whose audience is the
/// function. Events and scheduled functions have no headers to carry a credential in, so
/// the proof travels in the payload; the function refuses a payload the shop's own event
/// source did not sign. (On AWS Lambda, IAM decides who may invoke a function.)
#[derive(Debug, Serialize, Deserialize)]
pub struct Signed<T> {
    #[serde(flatten)]
    pub body: T,
    #[serde(rename = "microlithSignature")]
    pub signature: String,
}

impl<T: Serialize> Signed<T> {
    pub fn sign(
        body: T,
        issuer: &rpc::CredentialIssuer,
        function: &str,
    ) -> anyhow::Result<Signed<T>> {
        let bytes = serde_json::to_vec(&body)?;
        let signature = issuer.sign_payload(function, &bytes)?;
        Ok(Signed { body, signature })
    }

    /// The body, if the public edge's process (the event source) signed it for `function`.
    fn verified(self, trust: &crate::Trust, function: &str) -> anyhow::Result<T> {
        let bytes = serde_json::to_vec(&self.body)?;
        let signer = trust
            .verifier(function)
            .verify_payload(&self.signature, &bytes)
            .map_err(|e| anyhow::anyhow!("refused an unsigned or forged invocation: {e}"))?;
        anyhow::ensure!(
            trust.is_edge(&signer),
            "refused an invocation signed by {signer}: only the event source invokes {function}"
        );
        Ok(self.body)
    }
}

/// Invokes `function` with its job every `every`, one run at a time (a run that outlasts
/// the period delays the next).
async fn schedule(
    host: FunctionHost,
    issuer: rpc::CredentialIssuer,
    function: String,
    job: String,
    every: Duration,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let event = ScheduledEvent { job: job.clone(), time: kernel::now_ms() };
        let signed = match Signed::sign(event, &issuer, &function) {
            Ok(signed) => signed,
            Err(e) => {
                tracing::error!(
                    function,
                    error = format!("{e:#}"),
                    "cannot sign a scheduled invocation"
                );
                continue;
            }
        };
        let Ok(payload) = serde_json::to_vec(&signed) else { continue };
        match host.invoke(&function, Bytes::from(payload), None).await {
            Ok(done) if done.function_error.is_none() => {}
            Ok(done) => {
                tracing::warn!(function, job = %job, error = %String::from_utf8_lossy(&done.body), "scheduled job failed")
            }
            Err(e) => {
                tracing::warn!(function, job = %job, error = %e, "scheduled job failed")
            }
        }
    }
}

/// Calls functions with HTTP requests ([`rpc::Invoker`]): in the host's own process
/// directly, elsewhere through its Invoke API.
pub enum FunctionInvoker {
    Local(FunctionHost),
    Remote {
        http: reqwest::Client,
        file: PathBuf,
        known: Mutex<Option<HttpInvoker>>,
        issuer: Box<rpc::CredentialIssuer>,
    },
}

impl FunctionInvoker {
    /// Through the Invoke API of the host of the processes of `data_dir`, with credentials
    /// from `issuer`.
    pub fn remote(data_dir: &Path, issuer: rpc::CredentialIssuer) -> FunctionInvoker {
        FunctionInvoker::Remote {
            http: rpc::http_pool(),
            file: host_file(data_dir),
            known: Mutex::new(None),
            issuer: Box::new(issuer),
        }
    }

    async fn call(
        &self,
        function: &str,
        event: Bytes,
        trace: Option<String>,
        timeout: Duration,
    ) -> Result<function_host::Invoked, InvokeError> {
        match self {
            FunctionInvoker::Local(host) => {
                tokio::time::timeout(timeout, host.invoke(function, event, trace))
                    .await
                    .unwrap_or(Err(InvokeError::Timeout))
            }
            FunctionInvoker::Remote { http, file, known, issuer } => {
                let cached = known.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let client = match cached {
                    Some(c) => c,
                    None => {
                        let f: HostFile = crate::shared_file::read(file)
                            .map_err(|e| InvokeError::Unreachable(format!("{e:#}")))?;
                        let issuer = (**issuer).clone();
                        let c = HttpInvoker::new(
                            http.clone(),
                            format!("http://{}", f.address),
                            Arc::new(move || issuer.token_for(crate::trust::FUNCTION_HOST).ok()),
                        );
                        *known.lock().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
                        c
                    }
                };
                let result = client.invoke(function, event, trace.as_deref(), timeout).await;
                if matches!(result, Err(InvokeError::Unreachable(_))) {
                    // The host may have restarted elsewhere: read its file again next time.
                    *known.lock().unwrap_or_else(|p| p.into_inner()) = None;
                }
                result
            }
        }
    }
}

impl rpc::Invoker for FunctionInvoker {
    fn invoke(
        &self,
        function: &str,
        request: http::Request<Bytes>,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<http::Response<Bytes>, InvokeFailure>> {
        let function = function.to_owned();
        Box::pin(async move {
            let event = function_host::request_event(&request)
                .map_err(|e| InvokeFailure::Unavailable(e.to_string()))?;
            let trace = request
                .headers()
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let done = self.call(&function, event, trace, timeout).await.map_err(|e| match e {
                InvokeError::Timeout => InvokeFailure::Timeout,
                other => InvokeFailure::Unavailable(other.to_string()),
            })?;
            if let Some(kind) = done.function_error {
                let why = String::from_utf8_lossy(&done.body).into_owned();
                return Err(InvokeFailure::Unavailable(format!("function error {kind}: {why}")));
            }
            function_host::response_from_event(&done.body)
                .map_err(|e| InvokeFailure::Unavailable(e.to_string()))
        })
    }
}

/// Events per invocation at most, and how long the first waits for company.
const BATCH_MAX: usize = 10;
const BATCH_WINDOW: Duration = Duration::from_millis(5);

/// The subscription of an events function: the module's consumer name and events, each
/// delivery joining a batch that invokes the function.
pub(crate) fn event_source(
    host: FunctionHost,
    issuer: rpc::CredentialIssuer,
    f: &Function,
) -> Subscription {
    let (consumer, events) = f.module.consumer().unwrap_or(("", &[]));
    let (tx, rx) = mpsc::channel(BATCH_MAX * 4);
    tokio::spawn(batches(host, issuer, f.name.clone(), rx));
    Subscription::new(consumer, events.to_vec(), Arc::new(Invoking { tx }))
}

type Delivery = (Envelope, oneshot::Sender<Result<(), HandleError>>);

struct Invoking {
    tx: mpsc::Sender<Delivery>,
}

#[async_trait]
impl Handler for Invoking {
    async fn handle(&self, event: &Envelope) -> Result<(), HandleError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((event.clone(), reply))
            .await
            .map_err(|_| HandleError::Retry("the function host stopped".into()))?;
        answer.await.unwrap_or_else(|_| Err(HandleError::Retry("the function host stopped".into())))
    }
}

/// Gathers deliveries into batches and invokes the function with each, concurrently.
async fn batches(
    host: FunctionHost,
    issuer: rpc::CredentialIssuer,
    function: String,
    mut rx: mpsc::Receiver<Delivery>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let until = tokio::time::Instant::now() + BATCH_WINDOW;
        while batch.len() < BATCH_MAX {
            tokio::select! {
                next = rx.recv() => match next {
                    Some(d) => batch.push(d),
                    None => break,
                },
                () = tokio::time::sleep_until(until) => break,
            }
        }
        tokio::spawn(invoke_batch(host.clone(), issuer.clone(), function.clone(), batch));
    }
}

async fn invoke_batch(
    host: FunctionHost,
    issuer: rpc::CredentialIssuer,
    function: String,
    batch: Vec<Delivery>,
) {
    let (events, replies): (Vec<Envelope>, Vec<_>) = batch.into_iter().unzip();
    let signed = Signed::sign(EventBatch { records: events.clone() }, &issuer, &function);
    let payload = match signed.and_then(|s| Ok(serde_json::to_vec(&s)?)) {
        Ok(p) => Bytes::from(p),
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(HandleError::Retry(format!("cannot encode: {e}"))));
            }
            return;
        }
    };
    let trace = events.first().and_then(|e| e.trace.traceparent.clone());
    let outcome = host.invoke(&function, payload, trace).await;
    let failures: Result<Vec<ItemFailure>, String> = match outcome {
        Ok(done) if done.function_error.is_none() => {
            serde_json::from_slice::<BatchResponse>(&done.body)
                .map(|r| r.failures)
                .map_err(|e| format!("the function's answer does not decode: {e}"))
        }
        Ok(done) => Err(format!("function error: {}", String::from_utf8_lossy(&done.body))),
        Err(e) => Err(e.to_string()),
    };
    for (event, reply) in events.iter().zip(replies) {
        let result = match &failures {
            Ok(list) => match list.iter().find(|f| f.id == event.id.to_string()) {
                Some(f) => Err(f.clone().into_error()),
                None => Ok(()),
            },
            // The whole batch failed (crash, timeout, throttle): every event goes again,
            // and the inbox makes the ones already done no-ops.
            Err(why) => Err(HandleError::Retry(why.clone())),
        };
        let _ = reply.send(result);
    }
}

/// What a function instance's request loop runs.
#[derive(Clone)]
pub struct FunctionWork {
    pub name: String,
    pub trigger: Trigger,
    trust: crate::Trust,
    router: Option<axum::Router>,
    subscriptions: Arc<Vec<Subscription>>,
    outboxes: Arc<Vec<Outbox>>,
    bus: Option<BusClient>,
    jobs: Arc<Vec<Arc<dyn bus::Job>>>,
}

impl std::fmt::Debug for FunctionWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionWork").field("name", &self.name).finish_non_exhaustive()
    }
}

impl FunctionWork {
    pub(crate) fn new(
        f: &Function,
        trust: crate::Trust,
        router: Option<axum::Router>,
        subscriptions: Vec<Subscription>,
        outboxes: Vec<Outbox>,
        bus: Option<BusClient>,
        jobs: Vec<Arc<dyn bus::Job>>,
    ) -> FunctionWork {
        if let Some(bus) = &bus {
            for outbox in &outboxes {
                outbox.published_by(bus);
            }
        }
        FunctionWork {
            name: f.name.clone(),
            trigger: f.trigger.clone(),
            trust,
            router,
            subscriptions: Arc::new(subscriptions),
            outboxes: Arc::new(outboxes),
            bus,
            jobs: Arc::new(jobs),
        }
    }

    /// Runs the scheduled job `event` names, publishes the outbox, and says what it did.
    /// Refuses an event the shop's scheduler did not sign.
    pub async fn run_job(
        &self,
        event: Signed<ScheduledEvent>,
    ) -> anyhow::Result<serde_json::Value> {
        let event = event.verified(&self.trust, &self.name)?;
        let job = self
            .jobs
            .iter()
            .find(|j| j.name() == event.job)
            .with_context(|| format!("{} has no job {:?}", self.name, event.job))?;
        // As of the time the schedule fired, not of when the instance got to it.
        let done = job.run(event.time).await?;
        self.publish().await;
        Ok(done)
    }

    /// The module's internal routes (behind the service credential), publishing the
    /// outbox after each call and before the answer goes back.
    pub fn http_router(&self) -> Option<axum::Router> {
        let work = self.clone();
        self.router.clone().map(|r| {
            r.layer(axum::middleware::from_fn(move |req, next: axum::middleware::Next| {
                let work = work.clone();
                async move {
                    let res = next.run(req).await;
                    work.publish().await;
                    res
                }
            }))
        })
    }

    /// Handles a batch with the module's handlers (each idempotent through its inbox),
    /// publishes the outbox, and names the events that failed. Refuses, whole, a batch the
    /// shop's event source did not sign.
    pub async fn handle_batch(&self, batch: Signed<EventBatch>) -> anyhow::Result<BatchResponse> {
        let batch = batch.verified(&self.trust, &self.name)?;
        let mut failures = Vec::new();
        for event in &batch.records {
            let sub = self
                .subscriptions
                .iter()
                .find(|s| s.event_types.contains(&event.event_type.as_str()));
            // The function's own `process` span: the message's creation context is its
            // parent and its link, as on a service.
            let system = self.bus.as_ref().map_or("microlith", BusClient::messaging_system);
            let span = bus::process_span(system, &self.name, event);
            let result = match sub {
                Some(s) => tracing::Instrument::instrument(s.handler.handle(event), span).await,
                None => Err(HandleError::Reject(format!(
                    "{} does not handle {}",
                    self.name, event.event_type
                ))),
            };
            if let Err(e) = result {
                tracing::warn!(function = %self.name, event = %event.id, error = %e, "event not handled");
                failures.push(ItemFailure::new(event, &e));
            }
        }
        self.publish().await;
        Ok(BatchResponse { failures })
    }

    /// Publishes what the invocation wrote to the outbox. A failure leaves the events in
    /// the outbox, published by the next invocation.
    async fn publish(&self) {
        let Some(bus) = &self.bus else { return };
        for outbox in self.outboxes.iter() {
            if let Err(e) = bus::drain(outbox, bus).await {
                tracing::warn!(function = %self.name, error = format!("{e:#}"), "cannot publish the outbox yet");
            }
        }
    }
}
