//! The machine is deterministic and its snapshots are complete: a machine restored from the
//! snapshot of another and fed the same ops ends in the same state.

use chrono::{DateTime, Duration, Utc};
use durable_core::event::{EventKind, HistoryEvent};
use durable_core::instance::NewInstance;
use durable_core::status::RuntimeStatus;
use durable_core::work::{
    ActivityResult, HistoryWrite, InstanceUpdate, NameFilter, NewActivity, NewMessage, TurnCommit,
};

use super::{Machine, Op, Output};

fn t(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_750_000_000_000 + ms).unwrap()
}

/// A deterministic workload: instances started, turns that schedule activities and timers,
/// activities completed, events sent.
fn workload(m: &mut Machine, from: usize, to: usize, log: &mut Vec<(DateTime<Utc>, Op)>) {
    for step in from..to {
        let now = t(step as i64 * 10);
        let mut run = |m: &mut Machine, op: Op| {
            log.push((now, op.clone()));
            m.apply(now, op)
        };
        match step % 4 {
            0 => {
                let mut n = NewInstance::new("Orch", format!("i{}", step / 4));
                n.execution_id = format!("e{step}");
                run(m, Op::Create(n)).unwrap();
            }
            1 => {
                let fetched = run(
                    m,
                    Op::FetchOrchestrations {
                        max: 3,
                        until: now + Duration::seconds(30),
                        filter: NameFilter::All,
                    },
                );
                let Ok((Output::Orchestrations(items), _)) = fetched else {
                    panic!()
                };
                for item in items {
                    let activity = NewActivity {
                        instance_id: item.lease.instance_id.clone(),
                        execution_id: item.instance.execution_id.clone(),
                        task_id: item.history_len as i32 + 1,
                        name: "Act".into(),
                        version: None,
                        input: None,
                        tags: Default::default(),
                        trace_context: None,
                    };
                    let timer = NewMessage {
                        instance_id: item.lease.instance_id.clone(),
                        execution_id: Some(item.instance.execution_id.clone()),
                        event: HistoryEvent::unnumbered(
                            now,
                            EventKind::TimerFired {
                                fire_at: now,
                                timer_id: 9,
                            },
                        ),
                        visible_at: Some(now + Duration::milliseconds(25)),
                    };
                    let commit = TurnCommit {
                        lease: item.lease.clone(),
                        consumed: item.messages.iter().map(|m| m.id).collect(),
                        history: HistoryWrite::Append {
                            from: item.history_len,
                            events: vec![],
                        },
                        instance: InstanceUpdate {
                            status: RuntimeStatus::Running,
                            execution_id: item.instance.execution_id.clone(),
                            version: None,
                            input: None,
                            output: None,
                            custom_status: Some(step.to_string()),
                            failure: None,
                            completed_at: None,
                        },
                        activities: vec![activity],
                        messages: vec![timer],
                        children: vec![],
                        cancelled_timers: vec![],
                        terminate_children: None,
                    };
                    run(
                        m,
                        Op::Commit {
                            commit,
                            history_len: item.history_len + 2,
                            claim: 1,
                            filter: NameFilter::All,
                            until: now + Duration::seconds(30),
                        },
                    )
                    .unwrap();
                }
            }
            2 => {
                let fetched = run(
                    m,
                    Op::FetchActivities {
                        max: 2,
                        until: now + Duration::seconds(30),
                        filter: NameFilter::All,
                    },
                );
                let Ok((Output::Activities(items), _)) = fetched else {
                    panic!()
                };
                for a in items {
                    let result = ActivityResult::Completed(Some(step.to_string()));
                    run(
                        m,
                        Op::CompleteActivity {
                            lease: a.lease,
                            result,
                        },
                    )
                    .unwrap();
                }
            }
            _ => {
                let target = format!("i{}", step / 8);
                let event = HistoryEvent::unnumbered(
                    now,
                    EventKind::EventRaised {
                        name: "E".into(),
                        input: None,
                    },
                );
                let msg = NewMessage {
                    instance_id: target,
                    execution_id: None,
                    event,
                    visible_at: None,
                };
                let _ = run(m, Op::Send(msg));
            }
        }
    }
}

fn all_slots(m: &mut Machine) -> Vec<super::Slot> {
    let mut ids: Vec<String> = m.slots.keys().cloned().collect();
    ids.sort();
    ids.iter()
        .map(|id| super::Slot::clone(&m.slots[id]))
        .collect()
}

#[test]
fn replaying_ops_from_a_snapshot_reaches_the_same_state() {
    let mut a = Machine::tracking_changes();
    let mut log = Vec::new();
    workload(&mut a, 0, 200, &mut log);
    let snapshot: Vec<_> = a.take_dirty().into_iter().filter_map(|(_, s)| s).collect();
    let mut b = Machine::restore(snapshot, a.next_key(), true);
    assert_eq!(all_slots(&mut a), all_slots(&mut b));

    let mut later = Vec::new();
    workload(&mut a, 200, 400, &mut later);
    for (now, op) in later {
        let _ = b.apply(now, op);
    }
    assert_eq!(all_slots(&mut a), all_slots(&mut b));
    assert_eq!(a.next_key(), b.next_key());
    let now = t(4000);
    assert_eq!(a.next_due(now), b.next_due(now));
    assert_eq!(a.stats(now), b.stats(now));

    // And a machine fed the first log from scratch reaches the snapshot's state.
    let mut c = Machine::new();
    for (now, op) in log {
        let _ = c.apply(now, op);
    }
    assert_eq!(c.len(), 50);
}

#[test]
fn claims_come_in_time_order_and_skip_leased_work() {
    let mut m = Machine::new();
    let now = t(0);
    for i in 0..5 {
        let mut n = NewInstance::new("Orch", format!("i{i}"));
        n.scheduled_start_at = Some(now + Duration::seconds(i));
        m.apply(now, Op::Create(n)).unwrap();
    }
    let fetch = |m: &mut Machine, at: DateTime<Utc>| match m.apply(
        at,
        Op::FetchOrchestrations {
            max: 10,
            until: at + Duration::seconds(30),
            filter: NameFilter::All,
        },
    ) {
        Ok((Output::Orchestrations(items), _)) => items
            .into_iter()
            .map(|i| i.lease.instance_id)
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        fetch(&mut m, now + Duration::milliseconds(1500)),
        ["i0", "i1"]
    );
    assert_eq!(
        fetch(&mut m, now + Duration::milliseconds(3500)),
        ["i2", "i3"]
    );
    assert_eq!(
        m.next_due(now + Duration::milliseconds(3500)),
        Some(now + Duration::seconds(4))
    );
    // At 32 s: i4 became due at 4 s; the leases taken at 1.5 s have expired, those taken at
    // 3.5 s have not.
    assert_eq!(
        fetch(&mut m, now + Duration::seconds(32)),
        ["i4", "i0", "i1"]
    );
}
