//! The end-to-end scenarios of `tests/it`, the same files unchanged, on the `microservices`
//! topology on PostgreSQL and NATS JetStream: a fresh database per test with one schema per
//! module (the same SQL as on SQLite), and a fresh namespace of streams. Needs the servers at
//! `MICROLITH_TEST_PG` and `MICROLITH_TEST_NATS` (default the local ones); without them the
//! binary ends early with a notice, except under `CI`, where that fails.

#[path = "../it/bad_input.rs"]
mod bad_input;
#[path = "../it/checkout.rs"]
mod checkout;
#[path = "../it/idempotency.rs"]
mod idempotency;
#[path = "../it/journey.rs"]
mod journey;
#[path = "../it/openapi.rs"]
mod openapi;
#[path = "../it/paging.rs"]
mod paging;
#[path = "../it/rate_limit.rs"]
mod rate_limit;
#[path = "../it/resilience.rs"]
mod resilience;
#[path = "../it/tokens.rs"]
mod tokens;
#[path = "../it/topology.rs"]
mod topology;
#[path = "../it/traces.rs"]
mod traces;
#[path = "../it/unicode.rs"]
mod unicode;

use runtime::ShopConfig;
use testkit::{Setup, TestApp};

const SETUP: Setup = Setup::MicroservicesPgNats;

pub async fn spawn() -> TestApp {
    TestApp::spawn_in(SETUP, |_| {}).await
}

pub async fn spawn_with(tweak: impl Fn(&mut ShopConfig) + Send + Sync + 'static) -> TestApp {
    TestApp::spawn_in(SETUP, tweak).await
}
