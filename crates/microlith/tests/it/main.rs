//! The `microlith` binary as a user runs it: `microlith up` on port 0, stopped with SIGTERM,
//! started again on the same data directory.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

mod admin;
mod cluster;
mod crash;
mod faults;
mod metrics;
mod otlp;
mod readme;

const BIN: &str = env!("CARGO_BIN_EXE_microlith");

/// Tests that run a whole multi-process shop (or kill one at random) take this first: on
/// 2 cores, two of them at once starve each other's timeouts. Lighter tests run alongside.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn heavy() -> tokio::sync::MutexGuard<'static, ()> {
    HEAVY.lock().await
}

struct Running {
    child: Child,
    base: String,
    banner: Vec<String>,
}

impl Running {
    /// The pids the banner lists: the processes that serve the shop (the supervisor
    /// itself, `child`, is not among them).
    fn served_by(&self) -> Vec<i32> {
        self.banner
            .iter()
            .filter_map(|l| l.split(" pid ").nth(1)?.split_whitespace().next()?.parse().ok())
            .collect()
    }

    /// SIGKILL to every process of the shop, the serving ones first, then the supervisor
    /// (before its backoff lets it restart them): no shutdown code runs anywhere.
    fn kill_hard(&mut self) {
        for pid in self.served_by() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // SIGTERM first, so a supervisor stops its children; SIGKILL if it lingers.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..150 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn up(data_dir: &Path, admin_password: Option<&str>) -> Running {
    up_with(data_dir, admin_password, &[])
}

fn up_with(data_dir: &Path, admin_password: Option<&str>, extra: &[&str]) -> Running {
    up_logging(data_dir, admin_password, extra, "warn")
}

/// `up_with`, logging what `rust_log` lets through (to [`stderr_path`]).
fn up_logging(
    data_dir: &Path,
    admin_password: Option<&str>,
    extra: &[&str],
    rust_log: &str,
) -> Running {
    let mut cmd = Command::new(BIN);
    cmd.args(["up"]);
    up_command(cmd, data_dir, admin_password, extra, rust_log)
}

/// `microlith up ARGS` in the working directory `cwd`, on a free port and `data_dir`.
fn up_in(cwd: &Path, data_dir: &Path, admin_password: &str, args: &[String]) -> Running {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(cwd).args(args);
    up_command(cmd, data_dir, Some(admin_password), &[], "warn")
}

/// Starts `cmd` (`microlith up` and its first arguments) on a free port and `data_dir`,
/// and waits for its banner.
fn up_command(
    mut cmd: Command,
    data_dir: &Path,
    admin_password: Option<&str>,
    extra: &[&str],
    rust_log: &str,
) -> Running {
    cmd.args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("MICROLITH_ADMIN_EMAIL", "boss@test.example")
        .env_remove("MICROLITH_ADMIN_PASSWORD")
        .env("RUST_LOG", rust_log)
        .stdout(Stdio::piped())
        .stderr(stderr_log(data_dir));
    if let Some(p) = admin_password {
        cmd.env("MICROLITH_ADMIN_PASSWORD", p);
    }
    let mut child = cmd.spawn().expect("microlith starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = Vec::new();
    let mut base = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains("shop:")
            && let Some(rest) = line.split("http://").nth(1)
        {
            base = Some(format!("http://{}", rest.split_whitespace().next().unwrap()));
        }
        let done = line.starts_with("Press Ctrl-C");
        banner.push(line);
        if done {
            break;
        }
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let Some(base) = base else {
        let log = std::fs::read_to_string(stderr_path(data_dir)).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!("no banner; stdout: {banner:#?}\nlast of stderr:\n{}", tail.join("\n"));
    };
    Running { child, base, banner }
}

/// Where a started shop's stderr goes: beside its data directory, so a failed start can
/// say why.
fn stderr_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.with_extension("stderr.log")
}

fn stderr_log(data_dir: &Path) -> Stdio {
    if let Some(dir) = data_dir.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::File::options().create(true).append(true).open(stderr_path(data_dir)) {
        Ok(f) => Stdio::from(f),
        Err(_) => Stdio::null(),
    }
}

/// An access token for `email`, logged in to the shop at `base`.
async fn access_token(base: &str, email: &str, password: &str) -> String {
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "login as {email}");
    let body: Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

fn stop(mut r: Running) {
    let pid = r.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    for _ in 0..100 {
        if let Some(exit) = r.child.try_wait().unwrap() {
            assert!(exit.success(), "graceful stop exits 0, got {exit}");
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("microlith did not stop within 10 s of SIGTERM");
}

#[tokio::test]
async fn up_serves_stops_and_keeps_everything_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let http = reqwest::Client::new();

    let first = up_logging(&data, None, &[], "info");
    let banner = first.banner.join("\n");
    assert!(banner.contains("topology: monolith"), "{banner}");
    let seeding = |log: &str| log.lines().filter(|l| l.contains("seeded the demo catalog")).count();
    let log = std::fs::read_to_string(stderr_path(&data)).unwrap();
    assert_eq!(seeding(&log), 1, "seeding is one line: {log}");
    assert!(log.contains("products=24"), "{log}");
    assert!(!log.contains("product created"), "each product at debug only: {log}");
    let shown = std::fs::canonicalize(&data).unwrap();
    assert!(
        banner.contains(&shown.display().to_string()),
        "the banner says where data lives: {banner}"
    );
    // No password given: one is generated and printed once.
    let password = banner
        .lines()
        .find_map(|l| l.split("password: ").nth(1))
        .expect("a generated admin password is printed")
        .trim()
        .to_owned();
    assert!(password.len() >= 16);

    let res = http.get(format!("{}/healthz", first.base)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let login = |email: &str, password: &str| {
        http.post(format!("{}/api/v1/auth/login", first.base))
            .json(&json!({"email": email, "password": password}))
    };
    let admin: Value =
        login("boss@test.example", &password).send().await.unwrap().json().await.unwrap();
    let admin_token = admin["access_token"].as_str().unwrap().to_owned();
    let me: Value = http
        .get(format!("{}/api/v1/me", first.base))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["roles"], json!(["admin", "customer"]));
    let created: Value = http
        .post(format!("{}/api/v1/products", first.base))
        .bearer_auth(&admin_token)
        .json(&json!({"name": "Survivor", "category": "merch", "price": {"amount": 100, "currency": "USD"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stop(first);

    // Second start on the same data directory: no reseeding, no new password, same keys.
    let second = up_logging(&data, None, &[], "info");
    let banner = second.banner.join("\n");
    assert!(!banner.contains("password: "), "a password is printed only once: {banner}");
    let log = std::fs::read_to_string(stderr_path(&data)).unwrap();
    assert_eq!(seeding(&log), 1, "seeded by the first start only: {log}");
    assert!(banner.contains("existing account"), "{banner}");
    let res = http
        .get(format!("{}/api/v1/products/{}", second.base, created["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = http
        .get(format!("{}/api/v1/me", second.base))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "a token from before the restart still verifies");
    let page: Value = http
        .get(format!("{}/api/v1/products?limit=100", second.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 25);
    stop(second);

    // The key file is private to its owner.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let key = data.join("keys").join("token-signing-ed25519.pem");
        assert_eq!(std::fs::metadata(key).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

#[test]
fn help_explains_every_flag_and_bad_arguments_fail_clearly() {
    let out = Command::new(BIN).args(["up", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--topology",
        "--data-dir",
        "--listen",
        "--no-seed",
        "--rate-limit-user",
        "--body-limit",
        "--cors-origin",
        "--token-ttl",
        "MICROLITH_ADMIN_EMAIL",
        "MICROLITH_ADMIN_PASSWORD",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }

    assert!(help.contains("microservices"), "--help does not explain the topologies");
    assert!(help.contains("serverless") && help.contains("hybrid"), "{help}");
    let dir = tempfile::tempdir().unwrap();
    let no_events = dir.path().join("no-events.toml");
    std::fs::write(
        &no_events,
        "name = \"t\"\n[[service]]\nname = \"a\"\nmodules = [\"identity\", \"catalog\", \"inventory\", \"cart\", \"orders\", \"payments\"]\n[[function]]\nmodule = \"notifications\"\n",
    )
    .unwrap();
    let no_events = no_events.to_str().unwrap();
    for (topology, expected) in [
        (no_events, "trigger = \"events\""),
        ("mainframe", "unknown topology"),
        ("missing.toml", "cannot read the topology file"),
    ] {
        let out = Command::new(BIN)
            .args(["up", "--topology", topology, "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(expected), "{topology}: {err}");
    }

    let out = Command::new(BIN)
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("MICROLITH_ADMIN_PASSWORD", "short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("MICROLITH_ADMIN_PASSWORD"), "{err}");
}

/// Log lines that go to a file (not a terminal) carry no colour codes.
#[tokio::test]
async fn logs_in_a_file_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let shop = up_logging(&data, None, &[], "info");
    stop(shop);
    let log = std::fs::read_to_string(stderr_path(&data)).unwrap();
    assert!(log.contains("INFO"), "something was logged: {log}");
    assert!(!log.contains('\u{1b}'), "{log}");
    let seeding = log.lines().find(|l| l.contains("seeded the demo catalog")).unwrap_or_default();
    assert!(seeding.starts_with("[shop-1] "), "a child's line names its process: {log}");
}

/// Every request is one access-log line at info (method, route, status, duration, trace
/// id); a server error is logged once more, with its cause, naming the module that failed
/// rather than the one that called it.
#[tokio::test]
async fn each_request_is_one_access_line_and_each_error_one_cause() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let shop = up_logging(&data, Some("access-log-admin-pw"), &[], "info");
    let http = reqwest::Client::new();
    let res = http.get(format!("{}/api/v1/products?limit=1", shop.base)).send().await.unwrap();
    let trace =
        res.headers()["traceresponse"].to_str().unwrap().split('-').nth(1).unwrap().to_owned();
    let admin = access_token(&shop.base, "boss@test.example", "access-log-admin-pw").await;
    let fault = http
        .post(format!("{}/api/v1/system/faults", shop.base))
        .bearer_auth(&admin)
        .json(&json!({"target": "catalog", "kind": "error", "duration_s": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(fault.status(), 201);
    let cart =
        http.get(format!("{}/api/v1/cart", shop.base)).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(cart.status(), 503);
    let request_id = cart.headers()["x-request-id"].to_str().unwrap().to_owned();
    stop(shop);

    let log = std::fs::read_to_string(stderr_path(&data)).unwrap();
    let access: Vec<&str> = log.lines().filter(|l| l.contains("microlith::access")).collect();
    let read = access
        .iter()
        .find(|l| l.contains(&trace))
        .unwrap_or_else(|| panic!("no access line with trace {trace}: {access:#?}"));
    for field in ["method=GET", "route=\"/api/v1/products\"", "status=200", "took_ms="] {
        assert!(read.contains(field), "{field} in {read}");
    }
    let failed: Vec<&str> = log.lines().filter(|l| l.contains(&request_id)).collect();
    let errors: Vec<&&str> =
        failed.iter().filter(|l| l.contains("Z ERROR ") || l.contains("Z  WARN ")).collect();
    assert_eq!(errors.len(), 1, "the failure is logged once: {failed:#?}");
    assert!(errors[0].contains("catalog is unavailable (called by cart)"), "{}", errors[0]);
    let access = failed.iter().filter(|l| l.contains("microlith::access")).count();
    assert_eq!(access, 1, "{failed:#?}");
}

/// Each role's `--help` lists its own flags: the public edge's (rate limits, body limit,
/// CORS, seeding) are not a function instance's.
#[test]
fn a_function_is_not_offered_the_edges_flags() {
    let help = |role: &str| {
        let out = Command::new(BIN).args([role, "--help"]).output().unwrap();
        assert!(out.status.success(), "{role} --help");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let edge_flags = ["--rate-limit-user", "--body-limit", "--cors-origin", "--no-seed"];
    let function = help("function");
    for flag in edge_flags {
        assert!(!function.contains(flag), "function --help offers {flag}:\n{function}");
        for role in ["up", "service", "gateway"] {
            assert!(help(role).contains(flag), "{role} --help lacks {flag}");
        }
    }
    assert!(function.contains("--data-dir") && function.contains("--topology"), "{function}");
}

/// A role started by hand with local discovery and no `up` beside it fails at once, saying
/// what to add, rather than waiting for instances nobody will list.
#[test]
fn a_role_run_by_hand_without_a_registry_fails_at_once_saying_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    // A free port: the default one may be taken by a shop running on this machine.
    for role in [&["gateway", "--listen", "127.0.0.1:0"][..], &["service", "cart"][..]] {
        let started = std::time::Instant::now();
        let out = Command::new(BIN)
            .args(role)
            .args(["--topology", "microservices", "--data-dir"])
            .arg(dir.path())
            .env_remove(runtime::SUPERVISED_ENV)
            .env_remove("MICROLITH_LISTEN")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{role:?}");
        assert!(started.elapsed() < Duration::from_secs(10), "{role:?} failed fast");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("microlith up") && stderr.contains("--discovery nats://"),
            "{stderr}"
        );
    }
}
