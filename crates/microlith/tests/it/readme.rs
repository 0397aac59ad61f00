//! The README's commands, run as written against fresh shops, so the documentation cannot
//! drift from the binary: every `sh` block line by line (a start command starts a shop of
//! its own and stops it; the rest runs in order, as one bash script with `set -euo
//! pipefail`, against a monolith), and every `toml` block as the topology or policy file it
//! shows.
//!
//! What the script may not run as written is replaced, and only this:
//! - `cargo run --release -p microlith --` is this build's binary, and `microlith` is on
//!   the PATH (what `cargo install --path crates/microlith` does);
//! - the shop listens on a free port (`B`, `MICROLITH_URL`), and its data directory is
//!   `./data` in a fresh working directory;
//! - the admin password placeholders (`<printed password>`, `…`) are the one the shop was
//!   started with.

use std::path::Path;
use std::process::Command;

use super::{BIN, up_logging};

const README: &str = include_str!("../../../../README.md");
const ADMIN_PASSWORD: &str = "readme-admin-password";
const START: &str = "cargo run --release -p microlith --";
/// Commands the README shows that no test here runs: they build or test the workspace.
/// Commands not run here, by how they start: the test command, an install, and the
/// schemathesis run (a test of its own, `testkit`'s `schemathesis.rs`).
const NOT_RUN: [&str; 3] = [
    "cargo test --workspace",
    "cargo install --path crates/microlith",
    "MICROLITH_TOKEN=$ADMIN schemathesis ",
];

/// The fenced blocks of `lang`, in order.
fn blocks(lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in README.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(tag)) if tag.trim() == lang => current = Some(String::new()),
            (Some(block), Some("")) => {
                out.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            _ => {}
        }
    }
    out
}

/// The commands of the `sh` blocks, continuation lines joined, with their comments.
fn commands() -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for block in blocks("sh") {
        for line in block.lines() {
            if let Some(head) = line.strip_suffix('\\') {
                pending.push_str(head);
                continue;
            }
            pending.push_str(line);
            out.push(std::mem::take(&mut pending));
        }
    }
    out
}

fn is_start(command: &str) -> bool {
    command.trim_start().starts_with(START)
}

/// Every line of the API walk-through, the traces and the faults, in order, against one
/// fresh monolith, with `set -euo pipefail`: a command that fails or a `jq` that finds no
/// JSON stops it.
#[tokio::test]
async fn the_readme_walkthrough_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let shop = up_logging(&data, Some(ADMIN_PASSWORD), &[], "warn");
    let script: Vec<String> = commands()
        .into_iter()
        .filter(|c| !is_start(c) && !NOT_RUN.iter().any(|n| c.trim().starts_with(n)))
        .map(|c| {
            if c.trim() == "B=http://127.0.0.1:8080" {
                return format!("B={}", shop.base);
            }
            c.replace("<printed password>", ADMIN_PASSWORD)
                .replace(
                    "MICROLITH_ADMIN_PASSWORD=…",
                    &format!("MICROLITH_ADMIN_PASSWORD={ADMIN_PASSWORD}"),
                )
                .replace("admin@microlith.local", "boss@test.example")
        })
        .collect();
    let placeholders = ["<", "…"];
    for line in &script {
        let code = line.split(" #").next().unwrap_or_default();
        let code = if code.trim_start().starts_with('#') { "" } else { code };
        assert!(
            !placeholders.iter().any(|p| code.contains(p) && !code.contains("<<")),
            "a placeholder left in a command: {line}"
        );
    }
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script.join("\n")])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("MICROLITH_URL", &shop.base)
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env_remove("MICROLITH_TOKEN")
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the README's commands failed:\n{stdout}\n{stderr}");
    // What the walk-through says it shows.
    for shown in [
        r#""status": "confirmed""#,
        r#""cancel_reason": "payment_declined""#,
        r#""code":"invalid_input""#,
        "injected ",
        "no faults in force",
    ] {
        assert!(stdout.contains(shown), "the README promises {shown}:\n{stdout}");
    }
    drop(shop);
}

/// Every start command of the README starts a shop that serves, and stops cleanly; the
/// topology it names, from a README block where it is one.
#[tokio::test]
async fn the_readme_start_commands_start_their_shops() {
    let _heavy = super::heavy().await;
    let starts: Vec<String> = commands().into_iter().filter(|c| is_start(c)).collect();
    assert!(starts.len() >= 5, "{starts:?}");
    let topology_file = blocks("toml")
        .into_iter()
        .find(|b| b.contains("[[service]]"))
        .expect("the README shows a topology of its own");
    for start in starts {
        let mut args: Vec<String> =
            start.trim()[START.len()..].split_whitespace().map(str::to_owned).collect();
        assert_eq!(args.first().map(String::as_str), Some("up"), "{start}");
        // A database and a NATS namespace of its own, as a fresh shop has.
        let mut scratch = None;
        if args.iter().any(|a| a.starts_with("postgres://") || a.starts_with("nats://")) {
            let Some((pg, nats)) = testkit::scratch_pg_and_nats().await else { continue };
            for a in &mut args {
                if a.starts_with("postgres://") {
                    a.clone_from(&pg.url);
                } else if a.starts_with("nats://") {
                    a.clone_from(&nats.url);
                }
            }
            args.extend(["--namespace".to_owned(), nats.name.clone()]);
            scratch = Some((pg, nats));
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("my-topology.toml"), &topology_file).unwrap();
        let data = dir.path().join("data");
        let running = super::up_in(dir.path(), &data, ADMIN_PASSWORD, &args);
        let res = reqwest::get(format!("{}/api/v1/products?limit=1", running.base)).await.unwrap();
        assert_eq!(res.status(), 200, "{start}");
        super::stop(running);
        drop(scratch);
    }
}

/// Every `toml` block reads as the file it shows: a topology, or a topology's policy.
#[test]
fn the_readme_toml_blocks_parse() {
    let tomls = blocks("toml");
    assert!(tomls.len() >= 2, "{tomls:?}");
    for block in tomls {
        let file = if block.contains("name =") {
            block.clone()
        } else {
            // A policy section, as part of a topology.
            format!("{}\n{block}", include_str!("../../../runtime/topologies/monolith.toml"))
        };
        runtime::Topology::from_toml(&file).unwrap_or_else(|e| panic!("{e:#}\n{block}"));
    }
}
