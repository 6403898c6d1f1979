//! The non-determinism corpus: one baseline orchestration, run until it waits on its last
//! activity, then "deployed" as each of these code changes. Every change must be detected on the
//! first replay, with an error that names what history recorded and what the code now does.

use std::time::Duration;

use futures::future::join_all;

use super::sim::{ActivityFn, Sim};
use crate::error::Error;
use crate::registry::Registry;
use crate::replay::OrchestrationContext;
use crate::status::OrchestrationStatus;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    None,
    RenamedActivity,
    ReorderedCalls,
    AddedActivity,
    RemovedActivity,
    AddedTimer,
    RemovedTimer,
    AddedEventWait,
    RemovedEventWait,
    AddedSubOrchestration,
    RemovedSubOrchestration,
    RenamedSubOrchestration,
    WiderFanOut,
    NarrowerFanOut,
    ActivityInsteadOfSubOrchestration,
    EventSentElsewhere,
}

async fn flow(ctx: OrchestrationContext, change: Change) -> Result<String, Error> {
    use Change::*;
    if change == AddedActivity {
        let _: String = ctx.call_activity("Extra", "x").await?;
    }
    if change == AddedEventWait {
        let _: String = ctx.wait_for_event("Early").await?;
    }
    if change == ReorderedCalls {
        ctx.sleep(Duration::from_secs(5)).await;
    }
    if change != RemovedActivity {
        let name = if change == RenamedActivity { "A2" } else { "A" };
        let _: String = ctx.call_activity(name, "x").await?;
    }
    let width = match change {
        WiderFanOut => 3,
        NarrowerFanOut => 1,
        _ => 2,
    };
    join_all((1..=width).map(|i: u64| ctx.call_activity::<_, u64>("B", i))).await;
    if change == AddedTimer {
        ctx.sleep(Duration::from_secs(1)).await;
    }
    if change != RemovedTimer && change != ReorderedCalls {
        ctx.sleep(Duration::from_secs(5)).await;
    }
    if change != RemovedEventWait {
        let _: String = ctx.wait_for_event("Go").await?;
    }
    if change == AddedSubOrchestration {
        let _: String = ctx.call_sub_orchestration("Extra", "e").await?;
    }
    match change {
        RemovedSubOrchestration => {}
        RenamedSubOrchestration => {
            let _: String = ctx.call_sub_orchestration("Child2", "c").await?;
        }
        ActivityInsteadOfSubOrchestration => {
            let _: String = ctx.call_activity("Child", "c").await?;
        }
        _ => {
            let _: String = ctx.call_sub_orchestration("Child", "c").await?;
        }
    }
    let target = if change == EventSentElsewhere {
        "elsewhere"
    } else {
        "other"
    };
    ctx.send_event(target, "Ping", 1);
    let d: String = ctx.call_activity("D", "y").await?;
    Ok(d)
}

fn activities() -> ActivityFn {
    Box::new(|_, input| Ok(input.map(str::to_string)))
}

fn registry(change: Change) -> Registry {
    let mut r = Registry::new();
    r.add_orchestration("Wf", move |ctx: OrchestrationContext, _: ()| {
        flow(ctx, change)
    });
    r
}

/// Runs the baseline until it waits on activity D, then deploys `change`, lets D complete and
/// returns the instance's failure message (or `None` if it completed).
fn deploy(change: Change) -> Option<String> {
    let mut sim = Sim::start(registry(Change::None), "Wf", None, activities());
    sim.turn(); // A
    sim.complete_activity(0);
    sim.turn(); // B, B
    sim.complete_activity(0);
    sim.complete_activity(0);
    sim.turn(); // timer
    assert!(sim.fire_next_timer());
    sim.turn(); // waits for Go
    sim.raise("Go", "\"go\"");
    sim.turn(); // Child
    sim.complete_child("\"c\"");
    sim.turn(); // send event, D
    assert_eq!(sim.activities.len(), 1, "the baseline waits on D");
    assert_eq!(sim.instance.status, OrchestrationStatus::Running);

    sim.registry = registry(change);
    sim.replayer = None; // the new code replays the history cold
    sim.complete_activity(0);
    sim.turn();
    match sim.instance.status {
        OrchestrationStatus::Completed => None,
        OrchestrationStatus::Failed => {
            let f = sim.instance.failure.clone().unwrap();
            assert_eq!(f.error_type, "NonDeterminismError", "{}", f.error_message);
            Some(f.error_message)
        }
        other => panic!("{change:?}: unexpected status {other}"),
    }
}

#[test]
fn the_unchanged_code_replays_cleanly() {
    assert_eq!(deploy(Change::None), None);
}

#[test]
fn every_change_is_detected_on_the_first_replay_naming_both_sides() {
    use Change::*;
    // (change, what history recorded, what the code did instead; "" when it made no call)
    let corpus = [
        (RenamedActivity, "activity 'A'", "activity 'A2'"),
        (ReorderedCalls, "activity 'A'", "timer"),
        (AddedActivity, "activity 'A'", "activity 'Extra'"),
        (RemovedActivity, "activity 'A'", "activity 'B'"),
        (AddedTimer, "timer", "timer"),
        (RemovedTimer, "timer", ""),
        (AddedEventWait, "activity 'A'", "made no call at this point"),
        (RemovedEventWait, "sub-orchestration 'Child'", ""),
        (
            AddedSubOrchestration,
            "sub-orchestration 'Child'",
            "sub-orchestration 'Extra'",
        ),
        (
            RemovedSubOrchestration,
            "sub-orchestration 'Child'",
            "send event 'Ping'",
        ),
        (
            RenamedSubOrchestration,
            "sub-orchestration 'Child'",
            "sub-orchestration 'Child2'",
        ),
        (WiderFanOut, "timer", "activity 'B'"),
        (
            NarrowerFanOut,
            "activity 'B' as call #3",
            "its last call was activity 'B', #2",
        ),
        (
            ActivityInsteadOfSubOrchestration,
            "sub-orchestration 'Child'",
            "activity 'Child'",
        ),
        (
            EventSentElsewhere,
            "send event 'Ping' to 'other'",
            "send event 'Ping' to 'elsewhere'",
        ),
    ];
    assert!(corpus.len() >= 12);
    for (change, recorded, actual) in corpus {
        let message = deploy(change).unwrap_or_else(|| panic!("{change:?} was not detected"));
        assert!(
            message.contains(recorded),
            "{change:?}: '{recorded}' missing from: {message}"
        );
        assert!(
            message.contains(actual),
            "{change:?}: '{actual}' missing from: {message}"
        );
        assert!(
            message.contains("'Wf'"),
            "{change:?}: names the orchestration: {message}"
        );
    }
}
