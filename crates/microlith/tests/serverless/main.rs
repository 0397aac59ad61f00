//! The end-to-end scenarios of `testkit/tests/it`, the same files unchanged, on the
//! `serverless` topology: every module a function (HTTP and events), started on demand by the function host in the gateway's process; instances are processes of this crate's `microlith` binary.

#[path = "../../../testkit/tests/it/bad_input.rs"]
mod bad_input;
#[path = "../../../testkit/tests/it/checkout.rs"]
mod checkout;
#[path = "../../../testkit/tests/it/idempotency.rs"]
mod idempotency;
#[path = "../../../testkit/tests/it/journey.rs"]
mod journey;
#[path = "../../../testkit/tests/it/openapi.rs"]
mod openapi;
#[path = "../../../testkit/tests/it/paging.rs"]
mod paging;
#[path = "../../../testkit/tests/it/private_files.rs"]
mod private_files;
#[path = "../../../testkit/tests/it/rate_limit.rs"]
mod rate_limit;
#[path = "../../../testkit/tests/it/resilience.rs"]
mod resilience;
#[path = "../../../testkit/tests/it/tokens.rs"]
mod tokens;
#[path = "../../../testkit/tests/it/topology.rs"]
mod topology;
#[path = "../../../testkit/tests/it/traces.rs"]
mod traces;
#[path = "../../../testkit/tests/it/unicode.rs"]
mod unicode;

// Serverless only: function instances killed mid-invocation, and scheduled jobs.
mod crash;
mod forged;
mod jobs;
mod throttle;

#[path = "../common/functions.rs"]
mod functions;

pub use functions::{spawn, spawn_with};

const SETUP: testkit::Setup = testkit::Setup::Serverless;
