//! Bad code for the poison tests, registered with the torture workload: an orchestration that
//! panics, one whose activity always panics, and one that calls an activity nobody registered.

use std::fs::File;
use std::sync::Arc;

use durable::Registry;
use durable::prelude::*;

pub const PANICS: &str = "TorturePanics";
pub const CALLS_PANICKY: &str = "TortureCallsPanicky";
pub const CALLS_MISSING: &str = "TortureCallsMissing";

async fn panics(_ctx: OrchestrationContext, _: ()) -> Result<(), Error> {
    panic!("orchestration bug: index out of range");
}

async fn calls_panicky(ctx: OrchestrationContext, _: ()) -> Result<(), Error> {
    Ok(ctx.call_activity("TorturePanicky", ()).await?)
}

async fn calls_missing(ctx: OrchestrationContext, _: ()) -> Result<(), Error> {
    Ok(ctx.call_activity("NoSuchActivity", ()).await?)
}

async fn panicky(log: Arc<File>, ctx: ActivityContext) -> Result<(), Error> {
    super::workload::record(&log, &ctx)?;
    panic!("activity bug: division by zero");
}

pub fn add(r: &mut Registry, log: Arc<File>) {
    r.add_orchestration(PANICS, panics)
        .add_orchestration(CALLS_PANICKY, calls_panicky)
        .add_orchestration(CALLS_MISSING, calls_missing);
    r.add_activity("TorturePanicky", move |ctx: ActivityContext, _: ()| {
        panicky(log.clone(), ctx)
    });
}
