//! A function built on the official `lambda_runtime` crate alone (no code of ours in its
//! request loop), for the host's tests: it answers with what it was sent, after
//! `sleep_ms`; with `"fail": true` it returns an error and with `"exit": true` it dies
//! mid-invocation.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, context) = event.into_parts();
    if let Some(ms) = payload["sleep_ms"].as_u64() {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    if payload["exit"] == true {
        std::process::exit(3);
    }
    if payload["fail"] == true {
        return Err("asked to fail".into());
    }
    Ok(json!({
        "echo": payload,
        "request_id": context.request_id,
        "pid": std::process::id(),
        "deadline": context.deadline,
        "arn": context.invoked_function_arn,
    }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}
