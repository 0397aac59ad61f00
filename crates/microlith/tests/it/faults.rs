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
        .output()
        .expect("microlith fault runs")
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
