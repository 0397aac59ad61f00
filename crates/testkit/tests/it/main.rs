//! End-to-end tests of the shop through real HTTP: each test starts the real app on port 0
//! with a fresh data directory (see `testkit::TestApp`). The scenario files that start the
//! shop through [`spawn`] run unchanged on the other topologies too (`tests/microservices`).

mod auth_keys;
mod bad_input;
mod checkout;
mod contracts;
mod idempotency;
mod journey;
mod key_rotation;
mod metrics;
mod openapi;
mod paging;
mod private_files;
mod rate_limit;
mod resilience;
mod restart;
mod schemathesis;
mod slow_clients;
mod spans;
mod tidy;
mod tokens;
mod topology;
mod traces;
mod unicode;

use runtime::ShopConfig;
use testkit::{Setup, TestApp};

/// The placement this test binary runs the scenarios in.
const SETUP: Setup = Setup::Monolith;

pub async fn spawn() -> TestApp {
    TestApp::spawn_in(SETUP, |_| {}).await
}

pub async fn spawn_with(tweak: impl Fn(&mut ShopConfig) + Send + Sync + 'static) -> TestApp {
    TestApp::spawn_in(SETUP, tweak).await
}
