//! The torture workload, registered in `durable serve` by the hidden `--torture-log FILE`.
//!
//! `TortureMix` runs a chain of three activities, a fan-out of ten, a durable timer, waits for
//! the event `Go` raised by the harness and calls the sub-orchestration `TortureChild` (two more
//! activities). Every output is a function of the input and the event's data, so the harness
//! computes it without the engine ([`expected`]). Each activity execution appends
//! `INSTANCE TASK_ID` to the log before it returns, which is how re-executions are counted.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use durable::Registry;
use durable::prelude::*;
use futures::future::join_all;
use serde::{Deserialize, Serialize};

pub const MIX: &str = "TortureMix";
pub const CHILD: &str = "TortureChild";
pub const EVENT: &str = "Go";
/// Activity executions of one `TortureMix` with its child: 3 + 10 + 2.
pub const ACTIVITIES_PER_INSTANCE: usize = 15;

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MixInput {
    pub n: u64,
    pub timer_ms: u64,
    /// How long each activity works (sleeps), so kills land in running activities.
    #[serde(default)]
    pub activity_ms: u64,
}

/// An activity's input: the value it works on and how long it takes.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Step {
    pub x: u64,
    pub ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MixOutput {
    pub chain: u64,
    pub fanout: u64,
    pub event: u64,
    pub child: u64,
}

/// The output `TortureMix` must produce for input `n` and event data `event`.
pub fn expected(n: u64, event: u64) -> MixOutput {
    MixOutput {
        chain: n + 3,
        fanout: (0..10).map(|j| (n + j) * (n + j)).sum(),
        event,
        child: n + 5,
    }
}

async fn mix(ctx: OrchestrationContext, input: MixInput) -> Result<MixOutput, Error> {
    let ms = input.activity_ms;
    let mut chain = input.n;
    for _ in 0..3 {
        chain = ctx
            .call_activity("TortureAdd", Step { x: chain, ms })
            .await?;
    }
    let squares = join_all(
        (0..10).map(|j| ctx.call_activity::<_, u64>("TortureSquare", Step { x: input.n + j, ms })),
    );
    let mut fanout = 0;
    for square in squares.await {
        fanout += square?;
    }
    ctx.sleep(Duration::from_millis(input.timer_ms)).await;
    let event: u64 = ctx.wait_for_event(EVENT).await?;
    let child: u64 = ctx
        .call_sub_orchestration(CHILD, Step { x: chain, ms })
        .await?;
    Ok(MixOutput {
        chain,
        fanout,
        event,
        child,
    })
}

async fn child(ctx: OrchestrationContext, step: Step) -> Result<u64, Error> {
    let x: u64 = ctx.call_activity("TortureAdd", step).await?;
    Ok(ctx
        .call_activity("TortureAdd", Step { x, ms: step.ms })
        .await?)
}

/// Runs one activity: logs the execution, works `ms`, returns `f(x)`.
async fn work(
    log: Arc<File>,
    ctx: ActivityContext,
    step: Step,
    f: fn(u64) -> u64,
) -> Result<u64, Error> {
    record(&log, &ctx)?;
    tokio::time::sleep(Duration::from_millis(step.ms)).await;
    Ok(f(step.x))
}

/// Appends one line per execution; a single `write` on an append-mode file, so lines from
/// concurrent activities never interleave and a kill -9 cannot leave half a line.
pub(super) fn record(log: &File, ctx: &ActivityContext) -> Result<(), Error> {
    let line = format!("{} {}\n", ctx.instance_id, ctx.task_id);
    (&*log)
        .write_all(line.as_bytes())
        .map_err(|e| Error::new("TortureLog", format!("cannot write the execution log: {e}")))
}

/// The workload's orchestrations and activities (and the poison ones), logging executions to
/// `log`.
pub fn registry(log: &Path) -> std::io::Result<Registry> {
    let file = Arc::new(File::options().create(true).append(true).open(log)?);
    let mut r = Registry::new();
    r.add_orchestration(MIX, mix)
        .add_orchestration(CHILD, child);
    super::poison::add(&mut r, file.clone());
    let f = file.clone();
    r.add_activity("TortureAdd", move |ctx: ActivityContext, step: Step| {
        work(f.clone(), ctx, step, |x| x + 1)
    });
    r.add_activity("TortureSquare", move |ctx: ActivityContext, step: Step| {
        work(file.clone(), ctx, step, |x| x * x)
    });
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_output_is_computed_by_hand() {
        let out = expected(2, 9);
        assert_eq!(out.chain, 5);
        // 2² + 3² + … + 11²
        assert_eq!(out.fanout, 4 + 9 + 16 + 25 + 36 + 49 + 64 + 81 + 100 + 121);
        assert_eq!(out.child, 7);
        assert_eq!(out.event, 9);
    }
}
