//! Pattern 5, human interaction: request an approval, then race the approval event against a
//! durable timer (72 hours by default) and escalate when the timer wins. The timer survives
//! restarts; the losing one is cancelled.
//!
//! Run it with `cargo run --release --example approval`.

use std::time::Duration;

use durable::prelude::*;
use futures::future::{Either, select};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// How long to wait for a decision.
    pub timeout_seconds: u64,
}

const REQUEST_APPROVAL: Activity<(), ()> = Activity::new("RequestApproval");
const PROCESS_APPROVAL: Activity<(), ()> = Activity::new("ProcessApproval");
const ESCALATE: Activity<(), ()> = Activity::new("Escalate");

pub const APPROVAL: Orchestration<ApprovalRequest, String> = Orchestration::new("Approval");

async fn approval(ctx: OrchestrationContext, request: ApprovalRequest) -> Result<String, Error> {
    ctx.call_activity(REQUEST_APPROVAL, ()).await?;
    let deadline = ctx.sleep(Duration::from_secs(request.timeout_seconds));
    let decision = ctx.wait_for_event::<bool>("ApprovalEvent");
    match select(decision, deadline).await {
        Either::Left((approved, _timer)) => {
            // Returning drops the timer future, which cancels the durable timer.
            if approved? {
                ctx.call_activity(PROCESS_APPROVAL, ()).await?;
                Ok("approved".into())
            } else {
                Ok("rejected".into())
            }
        }
        Either::Right(((), _event)) => {
            ctx.call_activity(ESCALATE, ()).await?;
            Ok("escalated".into())
        }
    }
}

async fn noop(ctx: ActivityContext, _: ()) -> Result<(), Error> {
    println!(
        "  activity {} ran for instance {}",
        ctx.name, ctx.instance_id
    );
    Ok(())
}

pub fn worker(store: durable::SharedStore) -> Worker {
    Worker::builder(store)
        .orchestration(APPROVAL, approval)
        .activity(REQUEST_APPROVAL, noop)
        .activity(PROCESS_APPROVAL, noop)
        .activity(ESCALATE, noop)
        .start()
}

/// Runs one approval; `decision` is raised as the event (or nothing, to let the timer win).
pub async fn run(
    store: durable::SharedStore,
    timeout_seconds: u64,
    decision: Option<bool>,
) -> Result<String, Box<dyn std::error::Error>> {
    let worker = worker(store);
    let client = worker.client();
    let id = client
        .start(APPROVAL, ApprovalRequest { timeout_seconds })
        .await?;
    if let Some(approved) = decision {
        client.raise_event(&id, "ApprovalEvent", approved).await?;
    }
    let done = client
        .wait_for_completion(&id, Duration::from_secs(timeout_seconds.min(60) + 30))
        .await?;
    worker.shutdown().await;
    Ok(done.output_as()?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = durable::open_store(&format!("sqlite://{}/approval.db", dir.path().display()))?;
    let approved = run(store.clone(), 72 * 3600, Some(true)).await?;
    println!("Approval with a decision within 72 hours: {approved}");
    let escalated = run(store, 2, None).await?;
    println!("Approval with nobody answering within 2 seconds: {escalated}");
    Ok(())
}
