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
#[path = "../../../testkit/tests/it/tokens.rs"]
mod tokens;

use runtime::ShopConfig;
use testkit::{Setup, TestApp};

const SETUP: Setup = Setup::Serverless;

fn with_functions(config: &mut ShopConfig) {
    config.functions.program = Some(env!("CARGO_BIN_EXE_microlith").into());
}

pub async fn spawn() -> TestApp {
    TestApp::spawn_in(SETUP, with_functions).await
}

pub async fn spawn_with(tweak: impl Fn(&mut ShopConfig) + Send + Sync + 'static) -> TestApp {
    TestApp::spawn_in(SETUP, move |c| {
        with_functions(c);
        tweak(c);
    })
    .await
}
