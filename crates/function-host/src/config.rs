//! What a function is: its limits, how to start an instance, and what Lambda would charge.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The processor a function is billed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    #[default]
    X86_64,
    Arm64,
}

/// What invokes a function, as OpenTelemetry's `faas.trigger` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaasTrigger {
    /// A request (API Gateway, a function URL, a direct invocation).
    Http,
    /// A batch of messages from a queue or topic.
    Pubsub,
    /// A schedule.
    Timer,
    #[default]
    Other,
}

impl FaasTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            FaasTrigger::Http => "http",
            FaasTrigger::Pubsub => "pubsub",
            FaasTrigger::Timer => "timer",
            FaasTrigger::Other => "other",
        }
    }
}

/// One function's limits.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionConfig {
    pub name: String,
    /// Instances at most, each running one invocation at a time.
    pub max_concurrency: u32,
    /// Invocations waiting for an instance at most; beyond that, throttled.
    pub max_queue: u32,
    /// An instance with no invocation for this long is stopped.
    pub idle_timeout: Duration,
    /// The longest one invocation may run (the deadline its instance is given).
    pub timeout: Duration,
    /// The memory the function is billed for (Lambda's memory size).
    pub memory_mb: u32,
    pub arch: Arch,
    /// What invokes it (recorded on its invocation spans).
    pub trigger: FaasTrigger,
}

impl FunctionConfig {
    /// Lambda's defaults where it has them (128 MB, x86_64), ours otherwise.
    pub fn new(name: impl Into<String>) -> FunctionConfig {
        FunctionConfig {
            name: name.into(),
            max_concurrency: 10,
            max_queue: 100,
            idle_timeout: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            memory_mb: 128,
            arch: Arch::X86_64,
            trigger: FaasTrigger::Other,
        }
    }
}

/// How to start one instance: a program, its arguments and extra environment. The host
/// adds Lambda's variables (`AWS_LAMBDA_RUNTIME_API`, `AWS_LAMBDA_FUNCTION_NAME`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    /// Variables of the host's environment the instance must not inherit (secrets it does
    /// not need).
    pub env_remove: Vec<OsString>,
    /// Give the instance a pipe on stdin that closes when the host goes, for programs that
    /// stop when their stdin closes (the `microlith` binary, supervised).
    pub lifeline: bool,
}

impl Launch {
    pub fn program(program: impl Into<PathBuf>) -> Launch {
        Launch {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            lifeline: false,
        }
    }
}

/// List prices the cost estimate uses, in US dollars.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Prices {
    pub per_request: f64,
    pub per_gb_second_x86_64: f64,
    pub per_gb_second_arm64: f64,
}

impl Default for Prices {
    /// AWS Lambda, us-east-1, on-demand: $0.20 per million requests; $0.0000166667 per
    /// GB-second on x86_64 and $0.0000133334 on arm64 (first pricing tier).
    fn default() -> Prices {
        Prices {
            per_request: 0.20 / 1_000_000.0,
            per_gb_second_x86_64: 0.000_016_666_7,
            per_gb_second_arm64: 0.000_013_333_4,
        }
    }
}

impl Prices {
    pub fn per_gb_second(&self, arch: Arch) -> f64 {
        match arch {
            Arch::X86_64 => self.per_gb_second_x86_64,
            Arch::Arm64 => self.per_gb_second_arm64,
        }
    }
}
