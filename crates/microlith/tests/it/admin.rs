//! The admin account in every placement: `up` makes it before it starts any process, shows
//! a generated password once, and takes a new one from `MICROLITH_ADMIN_PASSWORD` at any
//! start; a start that cannot listen creates nothing.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

const EMAIL: &str = "boss@test.example";

/// The status of a login as `EMAIL` with `password`.
async fn login(base: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": EMAIL, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn serverless_shows_the_admin_password_and_a_later_start_resets_it() {
    let _heavy = crate::heavy().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = crate::up_with(&data, None, &["--topology", "serverless"]);
    let banner = first.banner.join("\n");
    let generated = banner
        .lines()
        .find_map(|l| l.split("password: ").nth(1))
        .unwrap_or_else(|| panic!("no generated password shown: {banner}"))
        .trim()
        .to_owned();
    // The banner names the functions too, not only the processes started at once.
    let preset = include_str!("../../../runtime/topologies/serverless.toml");
    let functions = preset.matches("[[function]]").count();
    assert!(banner.contains(&format!("{functions} functions")), "{banner}");
    assert_eq!(banner.matches("started on demand").count(), functions, "{banner}");
    assert_eq!(login(&first.base, &generated).await, 200);
    crate::stop(first);

    let second = crate::up_with(&data, Some("a-new-admin-password"), &["--topology", "serverless"]);
    let banner = second.banner.join("\n");
    assert!(!banner.contains("password: "), "shown only once: {banner}");
    assert_eq!(login(&second.base, "a-new-admin-password").await, 200);
    assert_eq!(login(&second.base, &generated).await, 401, "the old one no longer works");
    crate::stop(second);
}

/// With the public port taken, `up` of a distributed topology fails at once, naming the
/// address, and writes no account: the next start still shows the admin's password.
#[tokio::test]
async fn a_taken_port_fails_before_any_account_exists() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(crate::BIN)
        .args(["up", "--topology", "microservices", "--listen", &addr, "--data-dir"])
        .arg(&data)
        .env("MICROLITH_ADMIN_EMAIL", EMAIL)
        .env_remove("MICROLITH_ADMIN_PASSWORD")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "up did not give up on a taken port");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(stderr.contains(&format!("cannot listen on {addr}")), "{stderr}");
    assert!(!data.join("identity.db").exists(), "no account was written");
}

/// `microlith admin reset-password` on a stopped shop's data directory: with
/// `MICROLITH_ADMIN_PASSWORD`, or generating one it prints once; the old one stops working.
#[tokio::test]
async fn a_lost_admin_password_is_reset_with_the_shop_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let reset = |password: Option<&str>| {
        let mut cmd = Command::new(crate::BIN);
        cmd.args(["admin", "reset-password", "--data-dir"])
            .arg(&data)
            .env("MICROLITH_ADMIN_EMAIL", EMAIL)
            .env_remove("MICROLITH_ADMIN_PASSWORD");
        if let Some(p) = password {
            cmd.env("MICROLITH_ADMIN_PASSWORD", p);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success(), stdout, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, _, stderr) = reset(Some("never-used-password"));
    assert!(!ok && stderr.contains("no shop data"), "{stderr}");

    crate::stop(crate::up(&data, Some("the-first-password")));
    let (ok, stdout, stderr) = reset(None);
    assert!(ok, "{stderr}");
    let generated = stdout
        .lines()
        .find_map(|l| l.split("password: ").nth(1))
        .unwrap_or_else(|| panic!("no generated password: {stdout}"))
        .trim()
        .to_owned();
    let shop = crate::up(&data, None);
    assert_eq!(login(&shop.base, &generated).await, 200);
    assert_eq!(login(&shop.base, "the-first-password").await, 401);
    crate::stop(shop);

    let (ok, stdout, stderr) = reset(Some("the-third-password"));
    assert!(ok && !stdout.contains("password: "), "{stdout}{stderr}");
    let shop = crate::up(&data, None);
    assert_eq!(login(&shop.base, "the-third-password").await, 200);
    assert_eq!(login(&shop.base, &generated).await, 401);
    crate::stop(shop);
}

/// `microlith keys rotate` on the data directory of a running shop: its next token is
/// signed with the new key, and tokens of the old one keep working.
#[tokio::test]
async fn keys_rotate_on_a_running_shop_signs_the_next_token_with_the_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let shop = crate::up(&data, Some("the-first-password"));
    let token = async || -> String {
        let res = reqwest::Client::new()
            .post(format!("{}/api/v1/auth/login", shop.base))
            .json(&json!({"email": EMAIL, "password": "the-first-password"}))
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = res.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    };
    let me = async |token: &str| {
        let res = reqwest::Client::new()
            .get(format!("{}/api/v1/me", shop.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        res.status().as_u16()
    };
    let kid = |token: &str| jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let before = token().await;

    let out = Command::new(crate::BIN).args(["keys", "rotate", "--data-dir"]).arg(&data).output();
    let out = out.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let new = stdout
        .lines()
        .find_map(|l| l.strip_prefix("signing key:"))
        .unwrap_or_else(|| panic!("no new kid: {stdout}"))
        .trim()
        .to_owned();
    assert!(stdout.contains(&kid(&before)), "the retired key is named: {stdout}");

    let after = token().await;
    assert_eq!(kid(&after), new);
    assert_eq!(me(&after).await, 200);
    assert_eq!(me(&before).await, 200);
    crate::stop(shop);
}
