//! `microlith fault` against a running shop, and a `crash` fault on real processes.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::{BIN, up_with};

const PASSWORD: &str = "fault-cli-admin-password";

/// `microlith fault <args>` against `base`, as the admin.
fn fault(base: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("fault")
        .args(args)
        .env("MICROLITH_URL", base)
        .env("MICROLITH_ADMIN_EMAIL", "boss@test.example")
        .env("MICROLITH_ADMIN_PASSWORD", PASSWORD)
        .env_remove("MICROLITH_TOKEN")
        .env("XDG_CONFIG_HOME", config_home())
        .output()
        .expect("microlith fault runs")
}

/// The config directory the CLI saves its sessions in, one per test run: sessions are
/// keyed by address, and a port used again by another test's shop gets a refused token,
/// which the CLI answers by logging in again.
fn config_home() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("microlith-it-config-{}", std::process::id()))
}

/// The access token the CLI saved for `base`.
fn saved_token(base: &str) -> String {
    let file = config_home().join("microlith").join("sessions.json");
    let sessions: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    sessions["sessions"][base]["access_token"].as_str().unwrap().to_owned()
}

/// `microlith fault <command> --data-dir <data>`: on the faults file, without logging in.
fn offline(data: &std::path::Path, command: &str) -> Output {
    Command::new(BIN)
        .args(["fault", command, "--data-dir"])
        .arg(data)
        .env_remove("MICROLITH_ADMIN_PASSWORD")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test]
async fn the_fault_command_adds_lists_and_clears() {
    let dir = tempfile::tempdir().unwrap();
    let running = up_with(&dir.path().join("data"), Some(PASSWORD), &[]);
    let base = running.base.clone();
    let product_url = {
        let page: serde_json::Value =
            reqwest::get(format!("{base}/api/v1/products")).await.unwrap().json().await.unwrap();
        format!("{base}/api/v1/products/{}", page["items"][0]["id"].as_str().unwrap())
    };

    let added = fault(
        &base,
        &["add", "gateway->catalog", "latency", "--latency-ms", "300", "--duration", "60"],
    );
    assert!(added.status.success(), "{added:?}");
    assert!(stdout(&added).starts_with("injected "), "{}", stdout(&added));
    let started = Instant::now();
    assert_eq!(reqwest::get(&product_url).await.unwrap().status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300), "the latency is injected");

    let listed = fault(&base, &["list"]);
    assert!(stdout(&listed).contains("gateway->catalog latency +300 ms"), "{}", stdout(&listed));

    let refused = fault(&base, &["add", "billing", "error", "--duration", "5"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no module named"), "{refused:?}");

    assert!(fault(&base, &["clear"]).status.success());
    assert!(stdout(&fault(&base, &["list"])).contains("no faults in force"));
    // Cleared: a read suffers no injected fault any more (counted, not timed).
    let injected = injected_total(&base).await;
    assert!(injected >= 1.0, "the read above was delayed: {injected}");
    assert_eq!(reqwest::get(&product_url).await.unwrap().status(), 200);
    assert_eq!(injected_total(&base).await, injected, "cleared");
    drop(running);
}

/// `microlith_faults_injected_total`, summed over its labels, from the shop's `/metrics`.
async fn injected_total(base: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("microlith_faults_injected_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Faults are a run's experiment: a start clears those a previous run left in force,
/// saying so, unless `--keep-faults`; `fault clear --data-dir` clears them with the shop
/// stopped, without logging in.
#[tokio::test]
async fn faults_do_not_outlive_their_run_unless_kept() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let add_and_stop = |extra: &'static [&'static str]| {
        let running = up_with(&data, Some(PASSWORD), extra);
        let added = fault(&running.base, &["add", "cart", "error", "--duration", "600"]);
        assert!(added.status.success(), "{added:?}");
        super::stop(running);
    };
    let listed = |extra: &'static [&'static str]| {
        let running = up_with(&data, Some(PASSWORD), extra);
        let list = stdout(&fault(&running.base, &["list"]));
        super::stop(running);
        list
    };

    add_and_stop(&[]);
    assert!(listed(&["--keep-faults"]).contains("cart error"), "kept when asked");
    let log = std::fs::read_to_string(super::stderr_path(&data)).unwrap();
    assert!(log.contains("keeping the faults of the last run"), "{log}");

    let cleared = offline(&data, "clear");
    assert!(cleared.status.success(), "{cleared:?}");
    assert!(stdout(&cleared).contains("cleared 1 fault(s)"), "{}", stdout(&cleared));
    assert!(listed(&[]).contains("no faults in force"));

    add_and_stop(&[]);
    assert!(listed(&[]).contains("no faults in force"), "a plain start clears them");
    let log = std::fs::read_to_string(super::stderr_path(&data)).unwrap();
    assert!(log.contains("cleared the faults the last run left in force"), "{log}");
}

/// A fault in identity does not lock the operator out: the CLI reuses the session its
/// last login saved (0600), the gateway checks the token with keys it holds rather than
/// asking identity, and a start with the fault kept does not need identity's keys either.
#[tokio::test]
async fn an_identity_fault_does_not_lock_the_admin_out() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let running = up_with(&data, Some(PASSWORD), &[]);
    let base = running.base.clone();
    let added = fault(&base, &["add", "identity", "error", "--duration", "600"]);
    assert!(added.status.success(), "{added:?}");
    let file = config_home().join("microlith").join("sessions.json");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the saved session is private");

    let http = reqwest::Client::new();
    let login = async |base: &str| {
        let body = serde_json::json!({"email": "boss@test.example", "password": PASSWORD});
        http.post(format!("{base}/api/v1/auth/login")).json(&body).send().await.unwrap().status()
    };
    assert_eq!(login(&base).await, 503, "identity is faulted: logins fail");
    let listed = fault(&base, &["list"]);
    assert!(stdout(&listed).contains("identity error"), "{listed:?}");
    super::stop(running);
    let listed = offline(&data, "list");
    assert!(stdout(&listed).contains("identity error"), "stopped, from the file: {listed:?}");

    // Started again with the fault kept: the gateway does not need identity's keys.
    let token = saved_token(&base);
    let running = up_with(&data, Some(PASSWORD), &["--keep-faults"]);
    let faults = format!("{}/api/v1/system/faults", running.base);
    let listed = http.get(&faults).bearer_auth(&token).send().await.unwrap();
    assert_eq!(listed.status(), 200);
    let listed: serde_json::Value = listed.json().await.unwrap();
    assert_eq!(listed[0]["target"], "identity", "{listed}");
    let cleared = http.delete(&faults).bearer_auth(&token).send().await.unwrap();
    assert_eq!(cleared.status(), 204);
    assert_eq!(login(&running.base).await, 200, "cleared: logins work again");
    drop(running);
}

/// The monolith runs supervised: a crash fault takes the whole shop down (its blast
/// radius is every route) until the fault expires, and then the supervisor's next restart
/// serves again within its backoff.
#[tokio::test]
async fn a_crashed_monolith_is_restarted_and_serves_again() {
    let dir = tempfile::tempdir().unwrap();
    let running = up_with(&dir.path().join("data"), Some(PASSWORD), &[]);
    let products = format!("{}/api/v1/products", running.base);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    let serves = async || http.get(&products).send().await.is_ok_and(|r| r.status() == 200);
    assert!(serves().await);

    // Taken before the fault is made, so the fault expires no earlier than this says.
    let injected = Instant::now();
    let expires = injected + Duration::from_secs(3);
    let added = fault(&running.base, &["add", "cart", "crash", "--duration", "3"]);
    assert!(added.status.success(), "{added:?}");
    // A fault in cart, and product reads fail too: one process, one blast radius.
    let mut down_at = None;
    while injected.elapsed() < Duration::from_secs(2) {
        if !serves().await {
            down_at = Some(injected.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let down_at = down_at.expect("the crash takes every route down");
    let mut back = None;
    while injected.elapsed() < Duration::from_secs(30) {
        if serves().await {
            back = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let back = back.expect("the supervisor restarts the monolith after the fault expires");
    assert!(back >= expires, "served again only once the fault expired");
    // An upper bound: the fault expired up to one CLI call after `expires`.
    let after_expiry = back - expires;
    eprintln!(
        "monolith crash: down {down_at:?} after the fault, serving again {after_expiry:?} \
         after it expired ({:?} in all)",
        back - injected
    );
    // The backoff doubles from 200 ms while the fault keeps crashing each restart; 3 s of
    // crashes leave it at a few seconds at most.
    assert!(after_expiry < Duration::from_secs(10), "{after_expiry:?}");
    drop(running);
}
