//! Pattern 2, fan-out/fan-in: F1 returns a batch, F2 runs for every item in parallel, F3 receives
//! the sum. A crash midway never re-runs F2 calls whose results were recorded.
//!
//! Run it with `cargo run --release --example fan_out_fan_in`.

use std::time::Duration;

use durable::prelude::*;
use futures::future::join_all;

const F1: Activity<u64, Vec<u64>> = Activity::new("F1");
const F2: Activity<u64, u64> = Activity::new("F2");
const F3: Activity<u64, u64> = Activity::new("F3");

pub const FAN_OUT_FAN_IN: Orchestration<u64, u64> = Orchestration::new("FanOutFanIn");

async fn fan_out_fan_in(ctx: OrchestrationContext, n: u64) -> Result<u64, Error> {
    let batch = ctx.call_activity(F1, n).await?;
    let squares = join_all(batch.into_iter().map(|x| ctx.call_activity(F2, x))).await;
    let mut sum = 0;
    for square in squares {
        sum += square?;
    }
    Ok(ctx.call_activity(F3, sum).await?)
}

pub fn worker(store: durable::SharedStore) -> Worker {
    Worker::builder(store)
        .orchestration(FAN_OUT_FAN_IN, fan_out_fan_in)
        .activity(F1, |_, n: u64| async move {
            Ok::<_, Error>((1..=n).collect::<Vec<u64>>())
        })
        .activity(F2, |_, x: u64| async move { Ok::<_, Error>(x * x) })
        .activity(F3, |_, sum: u64| async move { Ok::<_, Error>(sum) })
        .start()
}

pub async fn run(store: durable::SharedStore, n: u64) -> Result<u64, Box<dyn std::error::Error>> {
    let worker = worker(store);
    let client = worker.client();
    let id = client.start(FAN_OUT_FAN_IN, n).await?;
    let done = client
        .wait_for_completion(&id, Duration::from_secs(60))
        .await?;
    worker.shutdown().await;
    Ok(done.output_as()?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = durable::open_store(&format!("sqlite://{}/fan_out.db", dir.path().display()))?;
    let sum = run(store, 10).await?;
    println!("FanOutFanIn of 10 completed with output: {sum}");
    Ok(())
}
