//! Bad code for the poison tests, registered with the torture workload: an orchestration that
//! panics, one whose activity always panics, one whose activity kills its own process with
//! SIGKILL (every delivery crashes the worker), and one that calls an activity nobody
//! registered.

use std::fs::File;
use std::sync::Arc;

use durable::Registry;
use durable::prelude::*;

pub const PANICS: &str = "TorturePanics";
pub const CALLS_PANICKY: &str = "TortureCallsPanicky";
pub const CALLS_MISSING: &str = "TortureCallsMissing";
pub const CALLS_KILLER: &str = "TortureCallsKiller";

async fn panics(_ctx: OrchestrationContext, _: ()) -> Result<(), Error> {
    panic!("orchestration bug: index out of range");
}

async fn calls_panicky(ctx: OrchestrationContext, _: ()) -> Result<(), Error> {
    Ok(ctx.call_activity("TorturePanicky", ()).await?)
}

async fn calls_missing(ctx: OrchestrationContext, _: ()) -> Result<(), Error> {
    Ok(ctx.call_activity("NoSuchActivity", ()).await?)
}

async fn calls_killer(ctx: OrchestrationContext, _: ()) -> Result<(), Error> {
    Ok(ctx.call_activity("TortureKiller", ()).await?)
}

/// Logs the execution, then SIGKILLs this process: the lease is left to expire, as after a
/// crash, and the activity is delivered again.
async fn killer(log: Arc<File>, ctx: ActivityContext) -> Result<(), Error> {
    super::workload::record(&log, &ctx)?;
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &std::process::id().to_string()])
        .status();
    std::future::pending().await
}

async fn panicky(log: Arc<File>, ctx: ActivityContext) -> Result<(), Error> {
    super::workload::record(&log, &ctx)?;
    panic!("activity bug: division by zero");
}

pub fn add(r: &mut Registry, log: Arc<File>) {
    r.add_orchestration(PANICS, panics)
        .add_orchestration(CALLS_PANICKY, calls_panicky)
        .add_orchestration(CALLS_MISSING, calls_missing)
        .add_orchestration(CALLS_KILLER, calls_killer);
    let l = log.clone();
    r.add_activity("TortureKiller", move |ctx: ActivityContext, _: ()| {
        killer(l.clone(), ctx)
    });
    r.add_activity("TorturePanicky", move |ctx: ActivityContext, _: ()| {
        panicky(log.clone(), ctx)
    });
}
