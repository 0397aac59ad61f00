//! What the `serverless` and `hybrid` test binaries share: the shop placed as their
//! `SETUP`, its function instances this crate's `microlith` binary.

use runtime::ShopConfig;
use testkit::TestApp;

use crate::SETUP;

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
