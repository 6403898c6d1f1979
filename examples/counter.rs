//! Pattern 4, stateful singleton: an eternal orchestration fed by external events. Each
//! operation continues the orchestration as new with the updated value, so its history never
//! grows; events that arrive meanwhile are carried over.
//!
//! Run it with `cargo run --release --example counter`.

use std::time::Duration;

use durable::prelude::*;

pub const COUNTER: Orchestration<i64, i64> = Orchestration::new("Counter");

async fn counter(ctx: OrchestrationContext, value: i64) -> Result<i64, Error> {
    let operation: String = ctx.wait_for_event("operation").await?;
    let value = match operation.as_str() {
        "incr" => value + 1,
        "decr" => value - 1,
        "end" => return Ok(value),
        other => durable::bail!("unknown operation '{other}'"),
    };
    ctx.set_custom_status(value);
    ctx.continue_as_new(value).await
}

pub fn worker(store: durable::SharedStore) -> Worker {
    Worker::builder(store)
        .orchestration(COUNTER, counter)
        .start()
}

/// Starts a counter at 0, sends it `operations` and returns its final value.
pub async fn run(
    store: durable::SharedStore,
    operations: &[&str],
) -> Result<i64, Box<dyn std::error::Error>> {
    let worker = worker(store);
    let client = worker.client();
    let id = client.start(COUNTER, 0).await?;
    for op in operations {
        client.raise_event(&id, "operation", op).await?;
    }
    let done = client
        .wait_for_completion(&id, Duration::from_secs(30))
        .await?;
    worker.shutdown().await;
    Ok(done.output_as()?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = durable::open_store(&format!("sqlite://{}/counter.db", dir.path().display()))?;
    let value = run(store, &["incr", "incr", "incr", "decr", "end"]).await?;
    println!("Counter ended with value: {value}");
    Ok(())
}
