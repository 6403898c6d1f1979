//! Engine behaviour, in the `apply(history, new events) -> actions` style.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::{Either, join_all, select};

use crate::action::{ActionKind, TurnOutput};
use crate::error::Error;
use crate::event::{EventKind, HistoryEvent};
use crate::registry::{Activity, Registry};
use crate::replay::{OrchestrationContext, Replayer, RetryPolicy};
use crate::status::OrchestrationStatus;
use crate::turn::{PlanLimits, plan_turn, prepare_turn};
use crate::work::{Lease, OrchestrationItem};

use super::sim::{ActivityFn, Sim, t};

fn append_name() -> ActivityFn {
    Box::new(|name, input| {
        let s: String = serde_json::from_str(input.unwrap_or("\"\"")).unwrap();
        Ok(Some(serde_json::to_string(&format!("{s},{name}")).unwrap()))
    })
}

const F1: Activity<String, String> = Activity::new("F1");

async fn chaining(ctx: OrchestrationContext, input: String) -> Result<String, Error> {
    let x = ctx.call_activity(F1, input).await?;
    let y: String = ctx.call_activity("F2", x).await?;
    let z: String = ctx.call_activity("F3", y).await?;
    Ok(ctx.call_activity("F4", z).await?)
}

#[test]
fn chaining_runs_one_activity_per_turn() {
    let mut reg = Registry::new();
    reg.add_orchestration("Chaining", chaining);
    let mut sim = Sim::start(reg, "Chaining", Some("\"start\""), append_name());
    sim.run();
    assert_eq!(sim.instance.status, OrchestrationStatus::Completed);
    assert_eq!(sim.output(), "start,F1,F2,F3,F4");
    let scheduled: Vec<_> = sim
        .history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TaskScheduled { name, .. } => Some((e.event_id, name.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(scheduled, [(1, "F1"), (2, "F2"), (3, "F3"), (4, "F4")]);
    assert_eq!(sim.outputs.len(), 5, "one turn to start and one per result");
}

async fn fan_out(ctx: OrchestrationContext, n: u64) -> Result<u64, Error> {
    let items: Vec<u64> = (1..=n).collect();
    let squares = join_all(
        items
            .iter()
            .map(|x| ctx.call_activity::<_, u64>("Square", *x)),
    )
    .await;
    let mut sum = 0;
    for s in squares {
        sum += s?;
    }
    Ok(sum)
}

fn square() -> ActivityFn {
    Box::new(|_, input| {
        let x: u64 = serde_json::from_str(input.unwrap()).unwrap();
        Ok(Some((x * x).to_string()))
    })
}

#[test]
fn fan_out_schedules_all_in_one_turn_and_joins_in_any_order() {
    let mut reg = Registry::new();
    reg.add_orchestration("FanOut", fan_out);
    // 50 is above the size where join_all switches to FuturesOrdered, which relies on wakers.
    let mut sim = Sim::start(reg, "FanOut", Some("50"), square());
    sim.turn();
    assert_eq!(sim.activities.len(), 50);
    // Complete in reverse order, one turn each.
    while !sim.activities.is_empty() {
        let last = sim.activities.len() - 1;
        sim.complete_activity(last);
        sim.turn();
    }
    assert_eq!(sim.instance.status, OrchestrationStatus::Completed);
    assert_eq!(sim.output(), (1..=50u64).map(|x| x * x).sum::<u64>());
    sim.check_replay();
}

async fn approval(ctx: OrchestrationContext, timeout_secs: u64) -> Result<String, Error> {
    let timer = ctx.sleep(Duration::from_secs(timeout_secs));
    let event = ctx.wait_for_event::<bool>("Approval");
    match select(Box::pin(event), timer).await {
        Either::Left((approved, _timer)) => {
            Ok(if approved? { "approved" } else { "rejected" }.into())
        }
        Either::Right(((), _)) => Ok("escalated".into()),
    }
}

#[test]
fn event_beats_timer_and_the_timer_is_cancelled() {
    let mut reg = Registry::new();
    reg.add_orchestration("Approval", approval);
    let mut sim = Sim::start(reg, "Approval", Some("259200"), append_name());
    sim.turn();
    assert!(
        sim.inbox
            .iter()
            .any(|m| matches!(m.event.kind, EventKind::TimerFired { .. }))
    );
    sim.raise("approval", "true");
    sim.turn();
    assert_eq!(sim.output(), "approved");
    assert_eq!(sim.outputs.last().unwrap().cancelled_timers, vec![1]);
    sim.check_replay();
}

#[test]
fn timer_beats_event() {
    let mut reg = Registry::new();
    reg.add_orchestration("Approval", approval);
    let mut sim = Sim::start(reg, "Approval", Some("60"), append_name());
    sim.run();
    assert_eq!(sim.output(), "escalated");
    let created = sim
        .history
        .iter()
        .find(|e| matches!(e.kind, EventKind::TimerCreated { .. }))
        .unwrap();
    let fired = sim
        .history
        .iter()
        .find(|e| matches!(e.kind, EventKind::TimerFired { .. }))
        .unwrap();
    assert_eq!(
        fired.timestamp,
        created.timestamp + chrono::Duration::seconds(60),
        "the timer fires at its due time"
    );
}

async fn wait_three(ctx: OrchestrationContext, _: ()) -> Result<Vec<String>, Error> {
    let a: String = ctx.wait_for_event("A").await?;
    let b: String = ctx.wait_for_event("B").await?;
    let c: String = ctx.wait_for_event("C").await?;
    Ok(vec![a, b, c])
}

#[test]
fn events_raised_before_waiting_are_buffered() {
    let mut reg = Registry::new();
    reg.add_orchestration("Wait", wait_three);
    let mut sim = Sim::start(reg, "Wait", None, append_name());
    // Raised before the first turn, in an order different from the waits.
    sim.raise("C", "\"c\"");
    sim.raise("a", "\"a\"");
    sim.raise("B", "\"b\"");
    sim.turn();
    assert_eq!(sim.instance.status, OrchestrationStatus::Completed);
    assert_eq!(sim.output(), serde_json::json!(["a", "b", "c"]));
    sim.check_replay();
}

async fn counter(ctx: OrchestrationContext, value: i64) -> Result<i64, Error> {
    let op: String = ctx.wait_for_event("operation").await?;
    let value = match op.as_str() {
        "incr" => value + 1,
        "decr" => value - 1,
        _ => return Ok(value),
    };
    ctx.set_custom_status(value);
    ctx.continue_as_new(value).await
}

#[test]
fn continue_as_new_carries_unconsumed_events_over() {
    let mut reg = Registry::new();
    reg.add_orchestration("Counter", counter);
    let mut sim = Sim::start(reg, "Counter", Some("0"), append_name());
    for op in ["incr", "incr", "incr", "decr", "end"] {
        sim.raise("operation", &format!("\"{op}\""));
    }
    let first_exec = sim.instance.execution_id.clone();
    sim.turn();
    assert_eq!(sim.instance.status, OrchestrationStatus::ContinuedAsNew);
    assert_ne!(sim.instance.execution_id, first_exec);
    assert!(
        sim.history.is_empty(),
        "a new execution starts with a fresh history"
    );
    for _ in 0..10 {
        if sim.finished() {
            break;
        }
        sim.turn();
    }
    assert_eq!(sim.instance.status, OrchestrationStatus::Completed);
    assert_eq!(sim.output(), 2);
    assert_eq!(sim.instance.custom_status.as_deref(), Some("2"));
    assert_eq!(sim.instance.input.as_deref(), Some("2"));
}

async fn compensate(ctx: OrchestrationContext, _: ()) -> Result<String, Error> {
    match ctx.call_activity::<_, String>("Boom", ()).await {
        Ok(_) => Ok("no error".into()),
        Err(e) => {
            ctx.call_activity::<_, String>("Undo", e.message().to_string())
                .await?;
            Ok(format!("handled: {e}"))
        }
    }
}

fn boom() -> ActivityFn {
    Box::new(|name, input| match name {
        "Boom" => Err("Kah-BOOOOM!!!".into()),
        _ => Ok(input.map(str::to_string)),
    })
}

#[test]
fn activity_failure_is_an_err_the_code_can_handle() {
    let mut reg = Registry::new();
    reg.add_orchestration("Compensate", compensate);
    let mut sim = Sim::start(reg, "Compensate", None, boom());
    sim.run();
    assert_eq!(sim.instance.status, OrchestrationStatus::Completed);
    assert_eq!(
        sim.output(),
        "handled: Activity task #1 failed: Kah-BOOOOM!!!"
    );
}

async fn unhandled(ctx: OrchestrationContext, _: ()) -> Result<String, Error> {
    Ok(ctx.call_activity("Boom", ()).await?)
}

#[test]
fn unhandled_failure_fails_the_instance_with_details() {
    let mut reg = Registry::new();
    reg.add_orchestration("Unhandled", unhandled);
    let mut sim = Sim::start(reg, "Unhandled", None, boom());
    sim.run();
    assert_eq!(sim.instance.status, OrchestrationStatus::Failed);
    let f = sim.instance.failure.clone().unwrap();
    assert_eq!(f.error_type, "TaskFailedError");
    assert_eq!(f.error_message, "Activity task #1 failed: Kah-BOOOOM!!!");
    assert_eq!(f.inner_failure.unwrap().error_message, "Kah-BOOOOM!!!");
    assert!(sim.instance.output.is_none());
}

async fn panics(_ctx: OrchestrationContext, _: ()) -> Result<(), Error> {
    panic!("bad code");
}

#[test]
fn a_panic_fails_the_instance() {
    let mut reg = Registry::new();
    reg.add_orchestration("Panics", panics);
    let mut sim = Sim::start(reg, "Panics", None, boom());
    sim.turn();
    assert_eq!(sim.instance.status, OrchestrationStatus::Failed);
    let f = sim.instance.failure.unwrap();
    assert_eq!(f.error_type, "Panic");
    assert!(f.error_message.contains("bad code"), "{}", f.error_message);
}

async fn uuids(ctx: OrchestrationContext, _: ()) -> Result<Vec<String>, Error> {
    let a = ctx.new_uuid();
    let replaying_before = ctx.is_replaying();
    let _: String = ctx.call_activity("Echo", "x").await?;
    let b = ctx.new_uuid();
    let c = ctx.new_uuid();
    Ok(vec![
        a.to_string(),
        b.to_string(),
        c.to_string(),
        replaying_before.to_string(),
    ])
}

#[test]
fn new_uuid_is_deterministic_and_distinct() {
    let mut reg = Registry::new();
    reg.add_orchestration("Uuids", uuids);
    let mut sim = Sim::start(reg.clone(), "Uuids", None, append_name());
    sim.run();
    let out: Vec<String> = serde_json::from_value(sim.output()).unwrap();
    assert_ne!(out[0], out[1]);
    assert_ne!(out[1], out[2]);
    // A cold replay of the history gives the same ids.
    let handler = reg.orchestration("Uuids").unwrap().clone();
    let mut r = Replayer::new(handler, "inst-1", &sim.instance.execution_id, "Uuids");
    let second_turn = sim
        .history
        .iter()
        .rposition(|e| matches!(e.kind, EventKind::OrchestratorStarted))
        .unwrap();
    let (past, last_turn) = sim.history.split_at(second_turn);
    r.replay(past);
    let turn = r.run_turn(&last_turn[..2]);
    match turn.completion() {
        Some(ActionKind::CompleteOrchestration {
            result: Some(r), ..
        }) => {
            let again: Vec<String> = serde_json::from_str(r).unwrap();
            assert_eq!(again[..3], out[..3]);
            assert_eq!(again[3], "true", "the first step ran during replay");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(out[3], "false", "the first step ran live");
}

async fn flaky(ctx: OrchestrationContext, _: ()) -> Result<String, Error> {
    let policy = RetryPolicy::new(5, Duration::from_secs(2)).with_backoff_coefficient(2.0);
    Ok(ctx.call_activity_with_retry("Flaky", (), policy).await?)
}

#[test]
fn retry_uses_durable_timers_between_attempts() {
    let attempts = std::rc::Rc::new(std::cell::Cell::new(0));
    let seen = attempts.clone();
    let run: ActivityFn = Box::new(move |_, _| {
        seen.set(seen.get() + 1);
        if seen.get() < 3 {
            Err("not yet".into())
        } else {
            Ok(Some("\"ok\"".into()))
        }
    });
    let mut reg = Registry::new();
    reg.add_orchestration("Flaky", flaky);
    let mut sim = Sim::start(reg, "Flaky", None, run);
    sim.run();
    assert_eq!(sim.output(), "ok");
    assert_eq!(attempts.get(), 3);
    let timers: Vec<_> = sim
        .history
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::TimerCreated { fire_at } => Some(fire_at),
            _ => None,
        })
        .collect();
    assert_eq!(timers.len(), 2);
    let gap = |i: usize| {
        let created = sim
            .history
            .iter()
            .filter(|e| matches!(e.kind, EventKind::TimerCreated { .. }))
            .nth(i)
            .unwrap();
        (timers[i] - created.timestamp).num_seconds()
    };
    assert_eq!((gap(0), gap(1)), (2, 4), "backoff doubles");
}

async fn waits(ctx: OrchestrationContext, _: ()) -> Result<String, Error> {
    let v: String = ctx.wait_for_event("Go").await?;
    Ok(v)
}

#[test]
fn terminate_and_suspend() {
    let mut reg = Registry::new();
    reg.add_orchestration("Waits", waits);
    // Suspended: the event is held until resume.
    let mut sim = Sim::start(reg.clone(), "Waits", None, append_name());
    sim.turn();
    let ev = |k| HistoryEvent::unnumbered(t(1), k);
    sim.push(None, ev(EventKind::ExecutionSuspended { input: None }));
    sim.turn();
    assert_eq!(sim.instance.status, OrchestrationStatus::Suspended);
    sim.raise("Go", "\"x\"");
    sim.turn();
    assert_eq!(sim.instance.status, OrchestrationStatus::Suspended);
    sim.push(None, ev(EventKind::ExecutionResumed { input: None }));
    sim.turn();
    assert_eq!(sim.instance.status, OrchestrationStatus::Completed);
    assert_eq!(sim.output(), "x");
    sim.check_replay();

    // Terminated while suspended.
    let mut sim = Sim::start(reg, "Waits", None, append_name());
    sim.turn();
    sim.push(None, ev(EventKind::ExecutionSuspended { input: None }));
    sim.push(
        None,
        ev(EventKind::ExecutionTerminated {
            input: Some("\"bye\"".into()),
            recurse: false,
        }),
    );
    sim.turn();
    assert_eq!(sim.instance.status, OrchestrationStatus::Terminated);
    assert_eq!(sim.instance.output.as_deref(), Some("\"bye\""));
}

async fn sub_parent(ctx: OrchestrationContext, _: ()) -> Result<u32, Error> {
    ctx.send_event("other", "Hello", 1);
    let r: Result<u32, _> = ctx.call_sub_orchestration("Child", 5).await;
    Ok(r.unwrap_or(0))
}

#[test]
fn sub_orchestration_and_send_event_plan_messages() {
    let mut reg = Registry::new();
    reg.add_orchestration("Parent", sub_parent);
    let sim = Sim::start(reg, "Parent", None, append_name());
    let mut sim = sim;
    let item = OrchestrationItem {
        lease: Lease {
            instance_id: "inst-1".into(),
            epoch: 1,
        },
        instance: sim.instance.clone(),
        history_len: 0,
        messages: sim.inbox.clone(),
    };
    let prepared = prepare_turn(&item, t(1));
    let handler = sim.registry.orchestration("Parent").unwrap().clone();
    let mut r = Replayer::new(handler, "inst-1", &sim.instance.execution_id, "Parent");
    let out = r.run_turn(&prepared.new_events);
    let commit = plan_turn(&item, &prepared, out, t(1), PlanLimits::default()).unwrap();
    assert_eq!(commit.children.len(), 1);
    let child = &commit.children[0].instance;
    assert_eq!(child.instance_id, "inst-1:0002");
    let parent = child.parent.as_ref().unwrap();
    assert_eq!(parent.task_scheduled_id, 2);
    assert_eq!(parent.orchestration_instance.instance_id, "inst-1");
    let sent = commit
        .messages
        .iter()
        .find(|m| m.instance_id == "other")
        .unwrap();
    assert!(matches!(&sent.event.kind, EventKind::EventRaised { name, .. } if name == "Hello"));
    assert_eq!(commit.instance.status, OrchestrationStatus::Running);
    sim.inbox.clear();
}

/// The first turn of a fan-out of 100: the claimed item, its prepared events and the output.
fn fan_out_first_turn() -> (OrchestrationItem, crate::turn::PreparedTurn, TurnOutput) {
    let mut reg = Registry::new();
    reg.add_orchestration("FanOut", fan_out);
    let sim = Sim::start(reg, "FanOut", Some("100"), square());
    let item = OrchestrationItem {
        lease: Lease {
            instance_id: "inst-1".into(),
            epoch: 1,
        },
        instance: sim.instance.clone(),
        history_len: 0,
        messages: sim.inbox.clone(),
    };
    let prepared = prepare_turn(&item, t(1));
    let handler = sim.registry.orchestration("FanOut").unwrap().clone();
    let mut r = Replayer::new(handler, "inst-1", &sim.instance.execution_id, "FanOut");
    let out = r.run_turn(&prepared.new_events);
    (item, prepared, out)
}

#[test]
fn history_limit_fails_the_instance() {
    let (item, prepared, out) = fan_out_first_turn();
    let commit = plan_turn(
        &item,
        &prepared,
        out,
        t(1),
        PlanLimits {
            max_history_events: 50,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(commit.instance.status, OrchestrationStatus::Failed);
    assert!(commit.activities.is_empty());
    assert!(
        commit
            .instance
            .failure
            .unwrap()
            .error_message
            .contains("limit of 50 events")
    );
}

#[test]
fn pending_tasks_limit_fails_the_instance() {
    let (item, prepared, out) = fan_out_first_turn();
    assert_eq!(
        out.open_tasks,
        Some(100),
        "the fan-out's activities are pending"
    );
    let limits = |max_pending_tasks| PlanLimits {
        max_pending_tasks,
        ..Default::default()
    };
    let fits = plan_turn(&item, &prepared, out.clone(), t(1), limits(100)).unwrap();
    assert_eq!(fits.activities.len(), 100);
    let commit = plan_turn(&item, &prepared, out, t(1), limits(99)).unwrap();
    assert_eq!(commit.instance.status, OrchestrationStatus::Failed);
    assert!(commit.activities.is_empty());
    let failure = commit.instance.failure.unwrap();
    assert_eq!(failure.error_type, "PendingTasksLimitExceeded");
    assert!(
        failure.error_message.contains("max_pending_tasks"),
        "{}",
        failure.error_message
    );
    assert!(
        failure.error_message.contains("continue_as_new"),
        "{}",
        failure.error_message
    );
}

#[test]
fn pending_tasks_are_counted_from_history() {
    use crate::turn::pending_tasks;
    let scheduled = |id| HistoryEvent {
        event_id: id,
        timestamp: t(1),
        kind: EventKind::TaskScheduled {
            name: "F".into(),
            version: None,
            input: None,
            parent_trace_context: None,
            tags: Default::default(),
        },
    };
    let done = HistoryEvent::unnumbered(
        t(2),
        EventKind::TaskCompleted {
            task_scheduled_id: 1,
            result: None,
        },
    );
    assert_eq!(pending_tasks(&[scheduled(1), scheduled(2)]), 2);
    assert_eq!(pending_tasks(&[scheduled(1), scheduled(2), done]), 1);
}

#[test]
fn bad_input_fails_with_a_clear_error() {
    let mut reg = Registry::new();
    reg.add_orchestration("FanOut", fan_out);
    let mut sim = Sim::start(reg, "FanOut", Some("\"ten\""), square());
    sim.turn();
    assert_eq!(sim.instance.status, OrchestrationStatus::Failed);
    let f = sim.instance.failure.unwrap();
    assert_eq!(f.error_type, "InvalidInput");
}

#[test]
fn responses_with_duplicate_ids_or_actions_after_completion_are_rejected() {
    use crate::action::Action;
    let mut reg = Registry::new();
    reg.add_orchestration("Chaining", chaining);
    let sim = Sim::start(reg, "Chaining", Some("\"s\""), append_name());
    let item = OrchestrationItem {
        lease: Lease {
            instance_id: "inst-1".into(),
            epoch: 1,
        },
        instance: sim.instance.clone(),
        history_len: 0,
        messages: sim.inbox.clone(),
    };
    let prepared = prepare_turn(&item, t(1));
    let timer = |id| Action {
        id,
        kind: ActionKind::CreateTimer { fire_at: t(5) },
    };
    let dup = TurnOutput {
        actions: vec![timer(1), timer(1)],
        ..Default::default()
    };
    assert!(plan_turn(&item, &prepared, dup, t(1), PlanLimits::default()).is_err());
    let done = Action {
        id: 1,
        kind: ActionKind::CompleteOrchestration {
            orchestration_status: OrchestrationStatus::Completed,
            result: None,
            details: None,
            new_version: None,
            carryover_events: vec![],
            failure_details: None,
            tags: BTreeMap::new(),
        },
    };
    let after = TurnOutput {
        actions: vec![done, timer(2)],
        ..Default::default()
    };
    assert!(plan_turn(&item, &prepared, after, t(1), PlanLimits::default()).is_err());
}

#[test]
fn a_first_turn_without_its_start_consumes_nothing() {
    let mut reg = Registry::new();
    reg.add_orchestration("Chaining", chaining);
    let sim = Sim::start(reg, "Chaining", Some("\"s\""), append_name());
    let event = sim.inbox.iter().map(|m| m.event.clone()).next().unwrap();
    assert!(matches!(event.kind, EventKind::ExecutionStarted { .. }));
    let raised = crate::work::InboxMessage {
        id: 99,
        execution_id: None,
        event: HistoryEvent::unnumbered(
            t(1),
            EventKind::EventRaised {
                name: "E".into(),
                input: None,
            },
        ),
        delivery_count: 1,
    };
    let item = OrchestrationItem {
        lease: Lease {
            instance_id: "inst-1".into(),
            epoch: 1,
        },
        instance: sim.instance.clone(),
        history_len: 0,
        messages: vec![raised],
    };
    let prepared = prepare_turn(&item, t(2));
    assert!(prepared.new_events.is_empty());
    assert!(
        prepared.consumed.is_empty(),
        "the event waits for the start"
    );
}
