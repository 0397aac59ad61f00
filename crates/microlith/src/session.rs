//! The admin commands' saved sessions: an access token per shop address, kept in the
//! user's config directory (`$XDG_CONFIG_HOME/microlith/sessions.json`, mode 0600), so a
//! command logs in once and the next ones need neither identity nor a password. That is
//! what keeps the fault commands usable while identity itself is faulted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A saved token this close to its expiry is not used: a command may take that long.
const EXPIRY_MARGIN_S: u64 = 30;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Sessions {
    /// By the shop's base URL.
    sessions: BTreeMap<String, Session>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Session {
    access_token: String,
    /// Unix seconds.
    expires_at: u64,
}

/// Where sessions are saved; `None` when the user has no config directory.
fn path() -> Option<PathBuf> {
    Some(dirs::config_dir()?.join("microlith").join("sessions.json"))
}

fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn load() -> Sessions {
    path()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn save(sessions: &Sessions) -> anyhow::Result<()> {
    let path = path().context("no config directory to save the session in")?;
    runtime::replace_private(&path, &serde_json::to_string_pretty(sessions)?)
        .with_context(|| format!("cannot save the session to {}", path.display()))
}

/// The saved token for the shop at `base`, unless it expires within the margin.
fn saved(base: &str) -> Option<String> {
    let sessions = load();
    let s = sessions.sessions.get(base)?;
    (s.expires_at > now_s() + EXPIRY_MARGIN_S).then(|| s.access_token.clone())
}

/// Changes the saved sessions with `change`, under a lock: two commands at once must not
/// lose each other's session.
fn update(change: impl FnOnce(&mut Sessions)) -> anyhow::Result<()> {
    let path = path().context("no config directory to save the session in")?;
    let dir = path.parent().context("the sessions file has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let lock_path = path.with_extension("lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    lock.lock().with_context(|| format!("cannot lock {}", lock_path.display()))?;
    let mut sessions = load();
    change(&mut sessions);
    save(&sessions)
    // The lock goes with the file handle.
}

/// Forgets the session saved for `base` (its token was refused).
fn forget(base: &str) {
    if let Err(e) = update(|s| {
        s.sessions.remove(base);
    }) {
        eprintln!("warning: {e:#}");
    }
}

/// An admin's access token for the shop at `base`: `MICROLITH_TOKEN` if set, else the
/// saved session, else a login with `MICROLITH_ADMIN_EMAIL` and `MICROLITH_ADMIN_PASSWORD`
/// (then saved). `fresh` skips the saved session (it was just refused).
async fn token(http: &reqwest::Client, base: &str, fresh: bool) -> anyhow::Result<String> {
    if let Ok(t) = std::env::var("MICROLITH_TOKEN") {
        return Ok(t);
    }
    if !fresh && let Some(t) = saved(base) {
        return Ok(t);
    }
    let (Ok(email), Ok(password)) =
        (std::env::var("MICROLITH_ADMIN_EMAIL"), std::env::var("MICROLITH_ADMIN_PASSWORD"))
    else {
        bail!(
            "not logged in to {base}: set MICROLITH_ADMIN_EMAIL and MICROLITH_ADMIN_PASSWORD \
             (the session is then saved), or MICROLITH_TOKEN"
        );
    };
    let body = json!({"email": email, "password": password});
    let answer = send(http.post(format!("{base}/api/v1/auth/login")).json(&body))
        .await
        .context("cannot log in")?;
    let access_token =
        answer["access_token"].as_str().context("the login answer has no access_token")?;
    let expires_in = answer["expires_in"].as_u64().unwrap_or(0);
    let session =
        Session { access_token: access_token.to_owned(), expires_at: now_s() + expires_in };
    if let Err(e) = update(|s| {
        s.sessions.insert(base.to_owned(), session);
    }) {
        eprintln!("warning: {e:#}");
    }
    Ok(access_token.to_owned())
}

/// Sends the request `build` makes with an admin's token for `base`; when a saved token is
/// refused (401), logs in again and retries once.
///
/// # Errors
/// No token can be had, the shop cannot be reached, or it answers an error (its message).
pub async fn send_as_admin(
    http: &reqwest::Client,
    base: &str,
    build: impl Fn(&str) -> reqwest::RequestBuilder,
) -> anyhow::Result<Value> {
    let token_now = token(http, base, false).await?;
    let res = build(&token_now).send().await.context("cannot reach the shop")?;
    if res.status() == reqwest::StatusCode::UNAUTHORIZED
        && std::env::var("MICROLITH_TOKEN").is_err()
    {
        forget(base);
        let token_now = token(http, base, true).await?;
        return answer(build(&token_now).send().await.context("cannot reach the shop")?).await;
    }
    answer(res).await
}

/// The JSON answer, or the API's error message.
pub async fn send(req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    answer(req.send().await.context("cannot reach the shop")?).await
}

async fn answer(res: reqwest::Response) -> anyhow::Result<Value> {
    let status = res.status();
    let body: Value = if status == reqwest::StatusCode::NO_CONTENT {
        Value::Null
    } else {
        res.json().await.unwrap_or(Value::Null)
    };
    if !status.is_success() {
        let message = body["error"]["message"].as_str().unwrap_or("no details");
        bail!("the shop answered {status}: {message}");
    }
    Ok(body)
}
