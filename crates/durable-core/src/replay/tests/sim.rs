//! A single-instance simulator: inbox, history, outstanding activities and timers in memory,
//! turns run through the real `prepare_turn` / `Replayer` / `plan_turn`.

use chrono::{DateTime, Utc};

use crate::action::{ActionKind, TurnOutput};
use crate::event::{EventKind, HistoryEvent};
use crate::instance::{InstanceState, NewInstance};
use crate::registry::Registry;
use crate::replay::Replayer;
use crate::status::OrchestrationStatus;
use crate::turn::{PlanLimits, plan_turn, prepare_turn};
use crate::work::{HistoryWrite, InboxMessage, Lease, NewActivity, OrchestrationItem};

pub(super) fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
}

pub(super) type ActivityFn = Box<dyn Fn(&str, Option<&str>) -> Result<Option<String>, String>>;

/// One instance, its inbox, its history and its outstanding work, all in memory.
pub(super) struct Sim {
    pub(super) registry: Registry,
    pub(super) instance: InstanceState,
    pub(super) history: Vec<HistoryEvent>,
    pub(super) inbox: Vec<InboxMessage>,
    pub(super) next_msg: i64,
    pub(super) activities: Vec<NewActivity>,
    pub(super) replayer: Option<Replayer>,
    pub(super) now: DateTime<Utc>,
    pub(super) outputs: Vec<TurnOutput>,
    pub(super) run_activity: ActivityFn,
    /// Sub-orchestrations created, as (parent action id, child instance id).
    pub(super) children: Vec<(i32, String)>,
}

impl Sim {
    pub(super) fn start(
        registry: Registry,
        name: &str,
        input: Option<&str>,
        run_activity: ActivityFn,
    ) -> Sim {
        let mut new = NewInstance::new(name, "inst-1");
        new.input = input.map(str::to_string);
        let now = t(0);
        let started = new.started_event(now);
        let mut sim = Sim {
            registry,
            instance: InstanceState {
                instance_id: new.instance_id.clone(),
                name: name.into(),
                version: None,
                execution_id: new.execution_id.clone(),
                status: OrchestrationStatus::Pending,
                input: new.input.clone(),
                output: None,
                custom_status: None,
                failure: None,
                created_at: now,
                updated_at: now,
                completed_at: None,
                scheduled_start_at: None,
                parent: None,
                tags: Default::default(),
            },
            history: Vec::new(),
            inbox: Vec::new(),
            next_msg: 1,
            activities: Vec::new(),
            replayer: None,
            now,
            outputs: Vec::new(),
            run_activity,
            children: Vec::new(),
        };
        let exec = sim.instance.execution_id.clone();
        sim.push(Some(exec), started);
        sim
    }

    pub(super) fn push(&mut self, execution_id: Option<String>, event: HistoryEvent) {
        self.inbox.push(InboxMessage {
            id: self.next_msg,
            execution_id,
            event,
            delivery_count: 0,
        });
        self.next_msg += 1;
    }

    pub(super) fn raise(&mut self, name: &str, data: &str) {
        let ev = HistoryEvent::unnumbered(
            self.now,
            EventKind::EventRaised {
                name: name.into(),
                input: Some(data.into()),
            },
        );
        self.push(None, ev);
    }

    pub(super) fn finished(&self) -> bool {
        self.instance.status.is_terminal()
    }

    /// Runs one turn over everything visible in the inbox.
    pub(super) fn turn(&mut self) {
        let visible: Vec<_> = self
            .inbox
            .iter()
            .filter(|m| {
                m.event.timestamp <= self.now
                    || !matches!(m.event.kind, EventKind::TimerFired { .. })
            })
            .cloned()
            .collect();
        if visible.is_empty() {
            return;
        }
        self.now += chrono::Duration::milliseconds(1);
        let item = OrchestrationItem {
            lease: Lease {
                instance_id: self.instance.instance_id.clone(),
                epoch: 1,
            },
            instance: self.instance.clone(),
            history_len: self.history.len() as u32,
            messages: visible,
        };
        let prepared = prepare_turn(&item, self.now);
        let replayer = self.replayer.get_or_insert_with(|| {
            let handler = self
                .registry
                .orchestration(&self.instance.name)
                .unwrap()
                .clone();
            let mut r = Replayer::new(
                handler,
                &self.instance.instance_id,
                &self.instance.execution_id,
                &self.instance.name,
            );
            r.replay(&self.history);
            r
        });
        let output = replayer.run_turn(&prepared.new_events);
        self.outputs.push(output.clone());
        let commit = plan_turn(&item, &prepared, output, self.now, PlanLimits::default()).unwrap();
        self.inbox.retain(|m| !commit.consumed.contains(&m.id));
        match commit.history {
            HistoryWrite::Append { from, events } => {
                assert_eq!(from as usize, self.history.len());
                self.history.extend(events);
            }
            HistoryWrite::Replace { events, .. } => {
                self.history = events;
                self.replayer = None;
            }
        }
        let u = commit.instance;
        self.instance.status = u.status;
        self.instance.execution_id = u.execution_id;
        self.instance.input = u.input;
        self.instance.output = u.output;
        self.instance.custom_status = u.custom_status;
        self.instance.failure = u.failure.map(Box::new);
        self.activities.extend(commit.activities);
        for child in &commit.children {
            let parent = child
                .instance
                .parent
                .as_ref()
                .expect("children know their parent");
            self.children
                .push((parent.task_scheduled_id, child.instance.instance_id.clone()));
        }
        // Messages for other instances (sent events) leave the simulation.
        for m in commit.messages {
            if m.instance_id == self.instance.instance_id {
                self.push(m.execution_id, m.event);
            }
        }
        for id in commit.cancelled_timers {
            self.inbox.retain(|m| !matches!(m.event.kind, EventKind::TimerFired { timer_id, .. } if timer_id == id));
        }
        if self.instance.status.is_terminal() {
            self.inbox.clear();
        }
    }

    /// Runs activity `index` of the outstanding ones and queues its result.
    pub(super) fn complete_activity(&mut self, index: usize) {
        let act = self.activities.remove(index);
        let kind = match (self.run_activity)(&act.name, act.input.as_deref()) {
            Ok(result) => EventKind::TaskCompleted {
                task_scheduled_id: act.task_id,
                result,
            },
            Err(msg) => EventKind::TaskFailed {
                task_scheduled_id: act.task_id,
                failure_details: crate::FailureDetails::new("ActivityError", msg),
            },
        };
        let ev = HistoryEvent::unnumbered(self.now, kind);
        self.push(Some(act.execution_id), ev);
    }

    /// Completes the oldest outstanding sub-orchestration with `result` (JSON).
    pub(super) fn complete_child(&mut self, result: &str) {
        let (task_scheduled_id, _) = self.children.remove(0);
        let ev = HistoryEvent::unnumbered(
            self.now,
            EventKind::SubOrchestrationInstanceCompleted {
                task_scheduled_id,
                result: Some(result.to_string()),
            },
        );
        let exec = self.instance.execution_id.clone();
        self.push(Some(exec), ev);
    }

    /// Moves time to the next timer.
    pub(super) fn fire_next_timer(&mut self) -> bool {
        let next = self
            .inbox
            .iter()
            .filter_map(|m| match m.event.kind {
                EventKind::TimerFired { fire_at, .. } => Some(fire_at),
                _ => None,
            })
            .min();
        match next {
            Some(at) => {
                self.now = self.now.max(at);
                true
            }
            None => false,
        }
    }

    /// Turns until done: activities complete in order, timers fire when nothing else can run.
    pub(super) fn run(&mut self) {
        for _ in 0..10_000 {
            if self.finished() {
                break;
            }
            self.turn();
            if self.finished() {
                break;
            }
            if !self.activities.is_empty() {
                while !self.activities.is_empty() {
                    self.complete_activity(0);
                }
            } else if !self.fire_next_timer() {
                break;
            }
        }
        self.check_replay();
    }

    /// A cold replay of the final history must reproduce the same end without complaint.
    pub(super) fn check_replay(&self) {
        let handler = self
            .registry
            .orchestration(&self.instance.name)
            .unwrap()
            .clone();
        let mut r = Replayer::new(
            handler,
            &self.instance.instance_id,
            &self.instance.execution_id,
            &self.instance.name,
        );
        r.replay(&self.history);
        let out = r.run_turn(&[]);
        if let Some(ActionKind::CompleteOrchestration {
            failure_details: Some(f),
            ..
        }) = out.completion()
        {
            assert_ne!(f.error_type, "NonDeterminismError", "{}", f.error_message);
        }
        for a in &out.actions {
            if !matches!(a.kind, ActionKind::CompleteOrchestration { .. }) {
                panic!("cold replay issued a new action {:?}", a);
            }
        }
    }

    pub(super) fn output(&self) -> serde_json::Value {
        serde_json::from_str(self.instance.output.as_deref().unwrap_or("null")).unwrap()
    }
}
