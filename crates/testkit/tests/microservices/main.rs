//! The end-to-end scenarios of `tests/it`, the same files unchanged, on the `microservices`
//! topology: every module in a service of its own behind the gateway, every call between
//! them HTTP/JSON through the remote clients, one SQLite file per module, the embedded bus.

#[path = "../it/bad_input.rs"]
mod bad_input;
#[path = "../it/checkout.rs"]
mod checkout;
#[path = "../it/idempotency.rs"]
mod idempotency;
#[path = "../it/journey.rs"]
mod journey;
#[path = "../it/key_rotation.rs"]
mod key_rotation;
#[path = "../it/metrics.rs"]
mod metrics;
#[path = "../it/openapi.rs"]
mod openapi;
#[path = "../it/paging.rs"]
mod paging;
#[path = "../it/private_files.rs"]
mod private_files;
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

const SETUP: Setup = Setup::Microservices;

pub async fn spawn() -> TestApp {
    TestApp::spawn_in(SETUP, |_| {}).await
}

pub async fn spawn_with(tweak: impl Fn(&mut ShopConfig) + Send + Sync + 'static) -> TestApp {
    TestApp::spawn_in(SETUP, tweak).await
}
