//! End-to-end tests of the shop through real HTTP: each test starts the real app on port 0
//! with a fresh data directory (see `testkit::TestApp`).

mod bad_input;
mod checkout;
mod contracts;
mod idempotency;
mod journey;
mod openapi;
mod rate_limit;
mod restart;
mod tidy;
mod tokens;
