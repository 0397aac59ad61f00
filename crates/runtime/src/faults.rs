//! Fault injection, admin only and off by default: `POST /api/v1/system/faults` adds a
//! fault, `GET` lists those in force, `DELETE` clears one or all. Every fault expires.
//!
//! The faults live in `<data>/run/faults.json`, which every local process of the topology
//! watches into its [`FaultBoard`]; so a fault posted to the gateway reaches the process
//! that hosts its module, and a restarted process finds it again (a `crash` fault keeps
//! crashing its process until it expires). The API answers once every process has applied
//! the change ([`crate::fault_acks`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use kernel::ErrorKind;
use resilience::{Fault, FaultBoard, FaultKind, FaultRequest, FaultTarget};
use rpc::{ApiError, ApiResult, Ctx, Json, Path as UrlPath};
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Module;

/// How old a `crash` fault is before a process acts on it: time for the fault API's answer
/// to leave the process that serves it, when that is the one to crash (the monolith).
const CRASH_GRACE: time::Duration = time::Duration::milliseconds(300);

/// At most this many faults at once.
const MAX_FAULTS: usize = 64;

pub fn faults_file(data_dir: &Path) -> PathBuf {
    data_dir.join("run").join("faults.json")
}

/// Clears the faults of the shop in `data_dir` by writing its faults file, with the shop
/// stopped or running (its processes watch the file); returns how many were in force.
///
/// # Errors
/// The file cannot be written.
pub fn clear_faults_in(data_dir: &Path) -> anyhow::Result<usize> {
    let in_force = faults_in(data_dir).len();
    let file = faults_file(data_dir);
    if file.exists() {
        crate::shared_file::write(&file, &Vec::<Fault>::new())?;
    }
    Ok(in_force)
}

/// Faults are a run's experiment: those a last run left in force are cleared, unless
/// `keep`; either way the log says so. The last run's acknowledgements go in any case: they
/// name processes that are gone (whose pids may be another program's by now).
pub(crate) fn faults_of_the_last_run(data_dir: &Path, keep: bool) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(crate::fault_acks::applied_dir(data_dir));
    let left = faults_in(data_dir);
    if left.is_empty() {
        return Ok(());
    }
    if keep {
        tracing::warn!(faults = left.len(), "keeping the faults of the last run (--keep-faults)");
    } else {
        clear_faults_in(data_dir)?;
        tracing::warn!(
            faults = left.len(),
            "cleared the faults the last run left in force (--keep-faults keeps them)"
        );
    }
    Ok(())
}

/// The faults in force in the shop in `data_dir`, as its faults file says (empty without
/// one, or with one that does not read).
pub fn faults_in(data_dir: &Path) -> Vec<Fault> {
    let board = FaultBoard::default();
    board.replace(
        crate::shared_file::read::<Vec<Fault>>(&faults_file(data_dir)).unwrap_or_default(),
    );
    board.active()
}

/// Fills `board` from the data directory's faults file now and on every change, until
/// `cancel`, acknowledging each change as `process` ([`crate::fault_acks`]).
pub(crate) fn watch(
    board: FaultBoard,
    data_dir: &Path,
    process: String,
    cancel: CancellationToken,
) {
    let acks = crate::fault_acks::applied_dir(data_dir);
    crate::fault_acks::withdraw_when(acks.clone(), cancel.clone());
    let file = faults_file(data_dir);
    // Loaded now, not at the watcher's first turn: a process restarted under a `crash`
    // fault must abort before it serves anything.
    if let Ok(faults) = crate::shared_file::read::<Vec<Fault>>(&file) {
        board.replace(faults);
    }
    crate::shared_file::watch(
        file,
        Duration::from_millis(100),
        cancel,
        move |faults: Vec<Fault>| {
            board.replace(faults.clone());
            crate::fault_acks::acknowledge(&acks, &process, &faults);
        },
    );
}

/// Aborts this process once a `crash` fault targets one of its modules: [`CRASH_GRACE`]
/// after it was made, and again after every restart until it expires (checked before this
/// returns, so a restart under the fault never serves).
pub(crate) fn crash_when_told(board: FaultBoard, local: Vec<Module>, cancel: CancellationToken) {
    let crash_if_told = move || {
        let now = time::OffsetDateTime::now_utc();
        let fatal = board.active().into_iter().find(|f| {
            f.kind == FaultKind::Crash
                && f.created_at + CRASH_GRACE <= now
                && FaultTarget::parse(&f.target)
                    .is_ok_and(|t| local.iter().any(|m| m.as_str() == t.module()))
        });
        if let Some(f) = fatal {
            tracing::error!(fault = %f.id, target = f.target, expires_at = %f.expires_at,
                "injected fault: crashing this process");
            std::process::abort();
        }
    };
    crash_if_told();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            crash_if_told();
        }
    });
}

#[derive(Clone)]
struct Faults {
    board: FaultBoard,
    file: PathBuf,
    /// Where the processes acknowledge the faults they hold.
    acks: PathBuf,
    /// One change at a time: read, change, write.
    lock: Arc<tokio::sync::Mutex<()>>,
}

pub(crate) fn router(board: FaultBoard, data_dir: &Path) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(add_fault, list_faults, clear_faults))
        .routes(routes!(clear_fault))
        .with_state(Faults {
            board,
            file: faults_file(data_dir),
            acks: crate::fault_acks::applied_dir(data_dir),
            lock: Arc::default(),
        })
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::Validation, "invalid_fault", message)
}

/// Whether `target` names a module, or an edge that exists: the gateway calls every
/// module; a module calls those its contract code calls.
fn check_target(target: &FaultTarget) -> Result<(), String> {
    let module = |name: &str| Module::ALL.into_iter().find(|m| m.as_str() == name);
    let Some(callee) = module(target.module()) else {
        return Err(format!("no module named {:?}", target.module()));
    };
    if let FaultTarget::Edge { caller, .. } = target
        && caller != "gateway"
    {
        let Some(from) = module(caller) else {
            return Err(format!("no caller named {caller:?} (a module, or `gateway`)"));
        };
        if !from.calls().contains(&callee) {
            return Err(format!("{caller} never calls {callee}: no such edge"));
        }
    }
    Ok(())
}

impl Faults {
    /// Writes `faults` as the faults in force and waits until every process of the shop
    /// holds them; returns the processes that did not within the wait.
    async fn save(&self, faults: &[Fault]) -> Result<Vec<String>, ApiError> {
        crate::shared_file::write(&self.file, faults).map_err(|e| {
            tracing::error!(error = %e, path = %self.file.display(), "cannot write the faults file");
            ApiError::new(ErrorKind::Internal, "internal", "cannot store the faults")
        })?;
        self.board.replace(faults.to_vec());
        let late = crate::fault_acks::wait_until_applied(&self.acks, faults).await;
        if !late.is_empty() {
            tracing::warn!(?late, "processes have not applied the faults change yet");
        }
        Ok(late)
    }
}

/// A fault as injected, and where it is not in effect yet.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct InjectedFault {
    #[serde(flatten)]
    fault: Fault,
    /// The processes of the shop that had not applied the fault when this answer was sent
    /// (they will within their next poll of the faults file); empty when it is in effect
    /// everywhere.
    not_yet_in: Vec<String>,
}

/// A change of the faults that some processes had not applied yet when it was answered.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct PendingChange {
    /// The processes that had not applied the change yet.
    not_yet_in: Vec<String>,
}

/// 204 when every process applied the change, else 202 naming those that had not.
fn changed(late: Vec<String>) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    if late.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (StatusCode::ACCEPTED, Json(PendingChange { not_yet_in: late })).into_response()
    }
}

/// Injects a fault: a module (every call into it, and its event handlers) or an edge
/// (`caller->module`) gets errors, latency, hangs, or a crash of its process, until it
/// expires. It answers once every process of the shop holds the fault (or, after a short
/// wait, names in `not_yet_in` those that do not yet).
#[utoipa::path(post, path = "/api/v1/system/faults", tag = "system",
    security(("bearer" = [])),
    request_body = FaultRequest,
    responses(
        (status = 201, body = InjectedFault),
        (status = 400, body = rpc::ErrorBody),
        (status = 401, body = rpc::ErrorBody),
        (status = 403, body = rpc::ErrorBody),
        (status = 409, body = rpc::ErrorBody),
    ))]
async fn add_fault(
    State(state): State<Faults>,
    Ctx(ctx): Ctx,
    Json(req): Json<FaultRequest>,
) -> ApiResult<(StatusCode, Json<InjectedFault>)> {
    let admin = ctx.admin().map_err(ApiError::from)?;
    let (fault, target) = req.validate().map_err(invalid)?;
    check_target(&target).map_err(invalid)?;
    let _one = state.lock.lock().await;
    let mut faults = state.board.active();
    if faults.len() >= MAX_FAULTS {
        return Err(ApiError::new(
            ErrorKind::Conflict,
            "too_many_faults",
            format!("at most {MAX_FAULTS} faults at once; clear some first"),
        ));
    }
    faults.push(fault.clone());
    let not_yet_in = state.save(&faults).await?;
    tracing::warn!(fault = %fault.id, target = fault.target, kind = fault.kind.as_str(),
        rate = fault.rate, latency_ms = fault.latency_ms, expires_at = %fault.expires_at,
        by = %admin.user_id, "fault injected");
    Ok((StatusCode::CREATED, Json(InjectedFault { fault, not_yet_in })))
}

/// The faults in force.
#[utoipa::path(get, path = "/api/v1/system/faults", tag = "system",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<Fault>),
        (status = 401, body = rpc::ErrorBody),
        (status = 403, body = rpc::ErrorBody),
    ))]
async fn list_faults(State(state): State<Faults>, Ctx(ctx): Ctx) -> ApiResult<Json<Vec<Fault>>> {
    ctx.admin().map_err(ApiError::from)?;
    Ok(Json(state.board.active()))
}

/// Clears every fault: 204 once no process of the shop holds any, else 202 naming those
/// that had not applied the change yet.
#[utoipa::path(delete, path = "/api/v1/system/faults", tag = "system",
    security(("bearer" = [])),
    responses(
        (status = 204),
        (status = 202, body = PendingChange),
        (status = 401, body = rpc::ErrorBody),
        (status = 403, body = rpc::ErrorBody),
    ))]
async fn clear_faults(
    State(state): State<Faults>,
    Ctx(ctx): Ctx,
) -> ApiResult<axum::response::Response> {
    let admin = ctx.admin().map_err(ApiError::from)?;
    let _one = state.lock.lock().await;
    let late = state.save(&[]).await?;
    tracing::warn!(by = %admin.user_id, "every fault cleared");
    Ok(changed(late))
}

/// Clears one fault: 204 once no process of the shop holds it, else 202 naming those that
/// had not applied the change yet.
#[utoipa::path(delete, path = "/api/v1/system/faults/{id}", tag = "system",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses(
        (status = 204),
        (status = 202, body = PendingChange),
        (status = 400, body = rpc::ErrorBody),
        (status = 401, body = rpc::ErrorBody),
        (status = 403, body = rpc::ErrorBody),
        (status = 404, body = rpc::ErrorBody),
    ))]
async fn clear_fault(
    State(state): State<Faults>,
    Ctx(ctx): Ctx,
    UrlPath(id): UrlPath<uuid::Uuid>,
) -> ApiResult<axum::response::Response> {
    let admin = ctx.admin().map_err(ApiError::from)?;
    let _one = state.lock.lock().await;
    let mut faults = state.board.active();
    let before = faults.len();
    faults.retain(|f| f.id != id);
    if faults.len() == before {
        return Err(ApiError::new(ErrorKind::NotFound, "fault_not_found", "no such fault"));
    }
    let late = state.save(&faults).await?;
    tracing::warn!(fault = %id, by = %admin.user_id, "fault cleared");
    Ok(changed(late))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the test subscriber writes, kept for the test to read.
    #[derive(Clone, Default)]
    struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn every_fault_injected_or_cleared_is_logged_with_who_did_it() {
        use tower::ServiceExt as _;
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber =
            tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
        let _logging = tracing::subscriber::set_default(subscriber);
        let dir = tempfile::tempdir().unwrap();
        let (app, _) = router(FaultBoard::new(), dir.path()).split_for_parts();
        let admin =
            kernel::Principal { user_id: kernel::UserId::new(), roles: vec![kernel::Role::Admin] };
        let send = async |req: axum::http::request::Builder, body: &str| {
            let req = req.extension(admin.clone()).header("content-type", "application/json");
            let req = req.body(axum::body::Body::from(body.to_owned())).unwrap();
            app.clone().oneshot(req).await.unwrap().status()
        };
        let add = axum::http::Request::post("/api/v1/system/faults");
        let body = r#"{"target": "payments", "kind": "error", "duration_s": 60}"#;
        assert_eq!(send(add, body).await, StatusCode::CREATED);
        assert_eq!(
            send(axum::http::Request::delete("/api/v1/system/faults"), "").await,
            StatusCode::NO_CONTENT
        );

        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let by = format!("by={}", admin.user_id);
        let line = |what: &str| text.lines().find(|l| l.contains(what)).map(str::to_owned);
        let injected = line("fault injected").expect("the injection is logged");
        assert!(
            injected.contains("WARN") && injected.contains(&by) && injected.contains("payments"),
            "{injected}"
        );
        let cleared = line("every fault cleared").expect("the clearing is logged");
        assert!(cleared.contains("WARN") && cleared.contains(&by), "{cleared}");
    }

    #[test]
    fn edges_must_exist() {
        let t = |s: &str| check_target(&FaultTarget::parse(s).unwrap());
        assert!(t("payments").is_ok());
        assert!(t("gateway->payments").is_ok());
        assert!(t("orders->cart").is_ok());
        assert!(t("inventory->catalog").is_ok());
        assert!(t("billing").unwrap_err().contains("no module"));
        assert!(t("payments->cart").unwrap_err().contains("never calls"));
        assert!(t("robot->cart").unwrap_err().contains("no caller"));
    }
}
