//! A worker process for the kill -9 test: a fan-out of N activities on a SQLite file. Every
//! activity execution is appended to a side file, so the test can count re-executions.
//!
//! Usage: crash_worker DB SIDE_FILE N

use std::io::Write;
use std::time::Duration;

use durable::prelude::*;
use durable::{IfExists, StartRequest, WorkerOptions};
use futures::future::join_all;

const RECORD: Activity<u64, u64> = Activity::new("Record");

async fn fan_out(ctx: OrchestrationContext, n: u64) -> Result<u64, Error> {
    let results = join_all((1..=n).map(|x| ctx.call_activity(RECORD, x))).await;
    let mut sum = 0;
    for r in results {
        sum += r?;
    }
    Ok(sum)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (db, side, n) = (args[1].clone(), args[2].clone(), args[3].parse::<u64>()?);
    let store = durable::open_store(&format!("sqlite://{db}"))?;
    let options = WorkerOptions {
        activity_concurrency: 4,
        lock_duration: Duration::from_secs(2),
        idle_poll: Duration::from_millis(100),
        ..Default::default()
    };
    let worker = Worker::builder(store)
        .options(options)
        .orchestration("FanOut", fan_out)
        .activity(RECORD, move |_, x: u64| {
            let side = side.clone();
            async move {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&side)?;
                // One write per line, so concurrent appends never interleave.
                f.write_all(format!("{x}\n").as_bytes())?;
                f.sync_data()?;
                tokio::time::sleep(Duration::from_millis(15)).await;
                Ok::<_, Error>(x * x)
            }
        })
        .start();
    let client = worker.client();
    let request = StartRequest::new("FanOut")
        .instance_id("crash")
        .input(&n)
        .if_exists(IfExists::Fail);
    match client.start_with(request).await {
        Ok(_) | Err(durable::ClientError::AlreadyExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let done = client
        .wait_for_completion("crash", Duration::from_secs(120))
        .await?;
    println!("{}", done.output.unwrap_or_default());
    worker.shutdown().await;
    Ok(())
}
