//! What the benches share: `microlith up` as a user runs it (the release binary, real
//! processes).

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_microlith");
pub const ADMIN_EMAIL: &str = "bench@test.example";
pub const ADMIN_PASSWORD: &str = "bench-admin-password";

pub struct Running {
    pub child: Child,
    pub base: String,
    /// Instance → pid, from the banner (`shop-1` for the monolith).
    pub pids: BTreeMap<String, u32>,
    _dir: tempfile::TempDir,
}

impl Running {
    /// The shop's data directory.
    #[allow(dead_code, reason = "not every bench looks inside")]
    pub fn data_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("data")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..150 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
    }
}

/// `microlith up --topology <topology>` on a fresh data directory and a free port, with
/// rate limits out of the way; `extra` flags go last.
#[allow(dead_code, reason = "each bench uses its share of this module")]
pub fn up(topology: &str, extra: &[&str]) -> Running {
    up_with_env(topology, extra, &[])
}

/// [`up`] with environment variables `env` set.
pub fn up_with_env(topology: &str, extra: &[&str], env: &[(&str, &str)]) -> Running {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(BIN)
        .args(["up", "--topology", topology, "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--rate-limit-user", "1000000", "--rate-limit-user-burst", "1000000"])
        .args(["--rate-limit-address", "1000000", "--rate-limit-address-burst", "1000000"])
        .args(extra)
        .env("MICROLITH_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("MICROLITH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("microlith starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let (mut base, mut pids) = (None, BTreeMap::new());
    for line in lines.by_ref() {
        let line = line.expect("line");
        let words: Vec<&str> = line.split_whitespace().collect();
        if line.contains("shop:") {
            base = line
                .split("http://")
                .nth(1)
                .map(|r| format!("http://{}", r.split_whitespace().next().unwrap_or_default()));
        }
        if let Some(at) = words.iter().position(|w| *w == "pid")
            && let Some(pid) = words.get(at + 1).and_then(|p| p.parse().ok())
        {
            pids.insert(words[0].to_owned(), pid);
        }
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    // The supervisor's banner lists every process that serves the shop (the monolith's one
    // included): `child` is the supervisor, whose own memory and CPU are not the shop's.
    assert!(!pids.is_empty(), "the banner lists the shop's processes with their pids");
    Running { child, base: base.expect("the banner names the URL"), pids, _dir: dir }
}
