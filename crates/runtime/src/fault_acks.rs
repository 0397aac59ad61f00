//! Which local processes hold the faults now in force. Each process, once it has loaded
//! the faults file, writes the ids it holds to `<data>/run/faults-applied/<pid>.json`;
//! the fault API waits for those acknowledgements before it answers, so its answer means
//! "in effect in every live process of the shop", or names the processes that are late.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use resilience::Fault;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// How long the fault API waits for every process to apply a change: the processes poll
/// the faults file every 100 ms, so this is many polls even on a loaded machine.
const WAIT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(10);

#[derive(Debug, Serialize, Deserialize)]
struct Applied {
    /// The process's instance id (`cart-1`, `gateway`, a function's name).
    process: String,
    pid: u32,
    /// When the process started (`/proc/<pid>/stat`'s `starttime`), so that a later process
    /// given the same pid is not taken for it.
    #[serde(default)]
    started: Option<u64>,
    fault_ids: BTreeSet<uuid::Uuid>,
}

pub(crate) fn applied_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("run").join("faults-applied")
}

fn own_file(dir: &Path) -> PathBuf {
    dir.join(format!("{}.json", std::process::id()))
}

fn ids(faults: &[Fault]) -> BTreeSet<uuid::Uuid> {
    faults.iter().map(|f| f.id).collect()
}

/// Records that this process, `process`, now holds `faults`.
pub(crate) fn acknowledge(dir: &Path, process: &str, faults: &[Fault]) {
    let pid = std::process::id();
    let applied = Applied {
        process: process.to_owned(),
        pid,
        started: start_time(pid),
        fault_ids: ids(faults),
    };
    if let Err(e) = crate::shared_file::write(&own_file(dir), &applied) {
        tracing::warn!(error = %format!("{e:#}"), "cannot acknowledge the faults it applied");
    }
}

/// Removes this process's acknowledgement once `cancel` fires (the process is stopping).
pub(crate) fn withdraw_when(dir: PathBuf, cancel: CancellationToken) {
    tokio::spawn(async move {
        cancel.cancelled().await;
        let _ = std::fs::remove_file(own_file(&dir));
    });
}

/// Waits until every other live process holds exactly `faults`, for [`WAIT`] at most;
/// returns the processes that did not apply them in that time (empty: all did).
pub(crate) async fn wait_until_applied(dir: &Path, faults: &[Fault]) -> Vec<String> {
    let want = ids(faults);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let late = late(dir, &want);
        if late.is_empty() || tokio::time::Instant::now() >= deadline {
            return late;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The live processes whose acknowledgement is not `want`. An acknowledgement of a process
/// that is gone (it crashed) is removed.
fn late(dir: &Path, want: &BTreeSet<uuid::Uuid>) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut late = Vec::new();
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Ok(applied) = crate::shared_file::read::<Applied>(&path) else { continue };
        if applied.pid == std::process::id() {
            continue;
        }
        if !alive(applied.pid, applied.started) {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if applied.fault_ids != *want {
            late.push(applied.process);
        }
    }
    late.sort();
    late
}

/// Whether the process `pid`, started at `started` when known, still runs.
fn alive(pid: u32, started: Option<u64>) -> bool {
    if let (Some(then), Some(now)) = (started, start_time(pid)) {
        return then == now;
    }
    let Ok(pid) = i32::try_from(pid) else { return false };
    // Signal 0 checks the process exists; EPERM means it does, owned by someone else.
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

/// The process's start time in clock ticks after boot: field 22 of `/proc/<pid>/stat`
/// (proc(5)), counted after the command name, which may hold spaces and parentheses.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name come field 3 (state) onwards: starttime is the 20th of those.
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault() -> Fault {
        let req: resilience::FaultRequest = serde_json::from_value(
            serde_json::json!({"target": "cart", "kind": "error", "duration_s": 60}),
        )
        .unwrap();
        req.validate().unwrap().0
    }

    fn write(dir: &Path, process: &str, pid: u32, faults: &[Fault]) {
        let started = start_time(pid);
        let applied = Applied { process: process.into(), pid, started, fault_ids: ids(faults) };
        crate::shared_file::write(&dir.join(format!("{pid}.json")), &applied).unwrap();
    }

    /// A live process that has not applied the change is named; one that has is not; a
    /// dead process's acknowledgement is dropped; this process's own is skipped.
    #[tokio::test]
    async fn the_answer_names_the_processes_that_are_late() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let f = fault();
        let mut other = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let gone_pid = gone.id();
        gone.wait().unwrap();
        write(dir, "cart-1", other.id(), &[]);
        write(dir, "orders-1", gone_pid, &[]);
        acknowledge(dir, "gateway", &[]);

        // A pid now used by another process than the one that wrote it counts as gone.
        let reused = Applied {
            process: "payments-1".into(),
            pid: other.id(),
            started: Some(1),
            fault_ids: BTreeSet::new(),
        };
        crate::shared_file::write(&dir.join("reused.json"), &reused).unwrap();

        let started = tokio::time::Instant::now();
        assert_eq!(wait_until_applied(dir, std::slice::from_ref(&f)).await, ["cart-1"]);
        assert!(started.elapsed() >= WAIT, "it waited for cart-1");
        assert!(!dir.join(format!("{gone_pid}.json")).exists(), "the dead one's is removed");
        assert!(!dir.join("reused.json").exists(), "the one with a reused pid too");

        write(dir, "cart-1", other.id(), std::slice::from_ref(&f));
        let started = tokio::time::Instant::now();
        assert!(wait_until_applied(dir, &[f]).await.is_empty());
        assert!(started.elapsed() < WAIT, "no wait once every process has it");
        other.kill().unwrap();
        other.wait().unwrap();
    }
}
