//! `microlith fault`: inject, list and clear faults in a running shop through its admin
//! API (`/api/v1/system/faults`).

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::session::send_as_admin;

#[derive(Debug, Args)]
#[command(after_help = "\
Targets:
  MODULE         every call into the module, from anywhere, and its event handlers:
                 identity, catalog, inventory, cart, orders, payments, notifications
  CALLER->MODULE only that caller's calls, e.g. gateway->catalog, orders->cart

Authentication: MICROLITH_TOKEN (an admin's access token); else the session saved by an
earlier command (in the user's config directory, per shop address); else
MICROLITH_ADMIN_EMAIL and MICROLITH_ADMIN_PASSWORD (this command logs in and saves the
session). The gateway checks tokens with keys it holds, so a saved session keeps working
while identity is faulted; `--data-dir` needs no login at all.

Examples:
  microlith fault add payments hang --duration 60
  microlith fault add catalog error --rate 0.5 --duration 30
  microlith fault add 'orders->cart' latency --latency-ms 300 --duration 120
  microlith fault add cart crash --duration 10
  microlith fault list
  microlith fault clear            # every fault
  microlith fault clear 01a1fd…    # one
  microlith fault list --data-dir ./data    # without the API (shop stopped or not)
  microlith fault clear --data-dir ./data   # every fault, without the API

A start of the shop clears the faults a previous run left in force, unless `up --keep-faults`.")]
pub struct FaultArgs {
    /// The shop's public address.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "MICROLITH_URL", global = true)]
    url: String,

    #[command(subcommand)]
    command: FaultCommand,
}

#[derive(Debug, Subcommand)]
enum FaultCommand {
    /// Inject a fault until it expires.
    Add {
        /// A module, or an edge `caller->module`.
        target: String,
        kind: Kind,
        /// Share of calls affected, above 0 and at most 1.
        #[arg(long, default_value_t = 1.0)]
        rate: f64,
        /// For `latency`: the delay added to each affected call.
        #[arg(long, value_name = "MS")]
        latency_ms: Option<u64>,
        /// How long the fault lasts, in seconds (1 to 3600).
        #[arg(long, value_name = "SECONDS")]
        duration: u64,
    },
    /// The faults in force.
    List {
        /// Read this data directory's faults file instead of asking the API: no login, and
        /// it works with the shop stopped.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<std::path::PathBuf>,
    },
    /// Clear one fault, or all of them.
    Clear {
        id: Option<String>,
        /// Clear every fault in this data directory's faults file instead of through the
        /// API: no login, and it works with the shop stopped (a running shop follows the
        /// file too).
        #[arg(long, value_name = "DIR", conflicts_with = "id")]
        data_dir: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Kind {
    /// Calls fail as if the target were unavailable.
    Error,
    /// Calls are delayed by --latency-ms.
    Latency,
    /// Calls do not answer until the fault expires or the caller gives up.
    Hang,
    /// The process hosting the module aborts (again after each restart, until expiry).
    Crash,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Error => "error",
            Kind::Latency => "latency",
            Kind::Hang => "hang",
            Kind::Crash => "crash",
        }
    }
}

pub async fn run(args: FaultArgs) -> anyhow::Result<()> {
    crate::observe::logs_only(false);
    if let FaultCommand::Clear { data_dir: Some(dir), .. } = &args.command {
        anyhow::ensure!(dir.is_dir(), "no shop data in {}", dir.display());
        let cleared = runtime::clear_faults_in(dir)?;
        println!("cleared {cleared} fault(s) in {}", dir.display());
        return Ok(());
    }
    if let FaultCommand::List { data_dir: Some(dir) } = &args.command {
        anyhow::ensure!(dir.is_dir(), "no shop data in {}", dir.display());
        print_list(&runtime::faults_in(dir));
        return Ok(());
    }
    let http = reqwest::Client::new();
    let base = args.url.trim_end_matches('/').to_owned();
    let faults = format!("{base}/api/v1/system/faults");
    match args.command {
        FaultCommand::Add { target, kind, rate, latency_ms, duration } => {
            let mut body = json!({"target": target, "kind": kind.as_str(), "rate": rate,
                "duration_s": duration});
            if let Some(ms) = latency_ms {
                body["latency_ms"] = json!(ms);
            }
            let fault =
                send_as_admin(&http, &base, |t| http.post(&faults).bearer_auth(t).json(&body))
                    .await?;
            println!("injected {}", line(&fault));
            late(&fault);
        }
        FaultCommand::List { .. } => {
            let list = send_as_admin(&http, &base, |t| http.get(&faults).bearer_auth(t)).await?;
            print_list(list.as_array().map_or(&[][..], Vec::as_slice));
        }
        FaultCommand::Clear { id, .. } => {
            let url = match &id {
                Some(id) => format!("{faults}/{id}"),
                None => faults,
            };
            let answer = send_as_admin(&http, &base, |t| http.delete(&url).bearer_auth(t)).await?;
            match id {
                Some(id) => println!("cleared {id}"),
                None => println!("cleared every fault"),
            }
            late(&answer);
        }
    }
    Ok(())
}

/// Names the processes the answer says had not applied the change yet.
fn late(answer: &Value) {
    let late: Vec<&str> = answer["not_yet_in"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !late.is_empty() {
        eprintln!("warning: not yet in effect in {} (they apply it shortly)", late.join(", "));
    }
}

fn print_list<T: serde::Serialize>(faults: &[T]) {
    if faults.is_empty() {
        println!("no faults in force");
    }
    for f in faults {
        println!("{}", line(&serde_json::to_value(f).unwrap_or_default()));
    }
}

fn line(f: &Value) -> String {
    let s = |k: &str| f[k].as_str().unwrap_or("?").to_owned();
    let latency = f["latency_ms"].as_u64().map(|ms| format!(" +{ms} ms")).unwrap_or_default();
    format!(
        "{}  {} {}{} rate {}  until {}",
        s("id"),
        s("target"),
        s("kind"),
        latency,
        f["rate"].as_f64().unwrap_or(1.0),
        s("expires_at")
    )
}
