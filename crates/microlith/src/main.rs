//! The `microlith` binary: parses the command line and hands over to `runtime`.

mod admin;
mod fault;
mod function;
mod keys;
mod observe;
mod session;
mod up;

use clap::{Parser, Subcommand};

/// Microlith: one Rust codebase for an online shop that runs as a monolith, as
/// microservices or as functions, chosen by a topology.
#[derive(Debug, Parser)]
#[command(name = "microlith", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the shop in a topology: the monolith in this process, or every process of a
    /// distributed topology, supervised.
    Up(up::UpArgs),
    /// Run one instance of one service of a topology (what `up` starts for each instance,
    /// and what an orchestrator runs). Started by `up`, it takes `up`'s resolved
    /// configuration from MICROLITH_RESOLVED_CONFIG and ignores its own shop flags.
    Service(up::ServiceArgs),
    /// Run the public gateway alone, every module remote (started by `up` or an
    /// orchestrator; configured as `service` is).
    Gateway(up::GatewayArgs),
    /// Run one instance of a function of a topology (what the function host starts on
    /// demand; the same binary runs on AWS Lambda).
    Function(function::FunctionArgs),
    /// Inject, list and clear faults in a running shop (admin): errors, latency, hangs or
    /// crashes for a module or one caller's calls to it, each with an expiry.
    Fault(fault::FaultArgs),
    /// The admin account, in the shop's data directory: `reset-password` when the admin's
    /// password is lost.
    Admin(admin::AdminArgs),
    /// The token signing keys, in the shop's data directory: `rotate` makes a new key
    /// sign; the old one verifies its tokens until they expire.
    Keys(keys::KeysArgs),
}

fn main() -> std::process::ExitCode {
    // Whatever this process or a library it uses creates (databases, their WAL files, keys,
    // run files) is its owner's alone.
    #[cfg(unix)]
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let cli = Cli::parse();
    let tokio_runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = tokio_runtime.block_on(async {
        match cli.command {
            Command::Up(args) => up::run(args).await,
            Command::Service(args) => up::run_service(args).await,
            Command::Gateway(args) => up::run_gateway(args).await,
            Command::Function(args) => function::run(args).await,
            Command::Fault(args) => fault::run(args).await,
            Command::Admin(args) => admin::run(args).await,
            Command::Keys(args) => keys::run(args),
        }
    });
    // Not a plain drop: a supervised child reads stdin on a blocking thread that cannot be
    // cancelled, and dropping the runtime would wait for it forever.
    tokio_runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    observe::shutdown();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
