//! Pattern 1, function chaining: F1 → F2 → F3 → F4, each output feeding the next, with failures
//! caught by ordinary error handling.
//!
//! Run it with `cargo run --release --example chaining`.

use std::time::Duration;

use durable::prelude::*;

// Typed handles: a misspelt name or a wrong input type does not compile.
const F1: Activity<String, String> = Activity::new("F1");
const F2: Activity<String, String> = Activity::new("F2");
const F3: Activity<String, String> = Activity::new("F3");
const F4: Activity<String, String> = Activity::new("F4");

pub const CHAINING: Orchestration<String, String> = Orchestration::new("Chaining");

async fn chaining(ctx: OrchestrationContext, input: String) -> Result<String, Error> {
    let x = ctx.call_activity(F1, input).await?;
    let y = ctx.call_activity(F2, x).await?;
    let z = ctx.call_activity(F3, y).await?;
    match ctx.call_activity(F4, z.clone()).await {
        Ok(done) => Ok(done),
        // Compensation goes here; this one just reports how far it got.
        Err(e) => Ok(format!("{z} (F4 failed: {})", e.message())),
    }
}

/// Each activity appends its own name to its input.
async fn append(ctx: ActivityContext, input: String) -> Result<String, Error> {
    Ok(format!("{input},{}", ctx.name))
}

pub fn worker(store: durable::SharedStore) -> Worker {
    Worker::builder(store)
        .orchestration(CHAINING, chaining)
        .activity(F1, append)
        .activity(F2, append)
        .activity(F3, append)
        .activity(F4, append)
        .start()
}

/// Runs one chain to completion and returns its output.
pub async fn run(
    store: durable::SharedStore,
    input: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let worker = worker(store);
    let client = worker.client();
    let id = client.start(CHAINING, input.to_string()).await?;
    let done = client
        .wait_for_completion(&id, Duration::from_secs(30))
        .await?;
    worker.shutdown().await;
    Ok(done.output_as()?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = durable::open_store(&format!("sqlite://{}/chaining.db", dir.path().display()))?;
    let output = run(store, "start").await?;
    println!("Chaining completed with output: {output}");
    Ok(())
}
