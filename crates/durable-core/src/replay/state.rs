//! The state shared between the replay engine and the orchestration's context and futures.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::task::Waker;

use chrono::{DateTime, Utc};

use crate::action::ActionKind;
use crate::event::ParentInstance;
use crate::failure::FailureDetails;

/// The outcome recorded for a task (activity, sub-orchestration or timer).
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Completed(Option<String>),
    Failed(FailureDetails),
    Fired,
}

#[derive(Debug, Default)]
pub(crate) struct Slot {
    pub outcome: Option<Outcome>,
    pub waker: Option<Waker>,
    /// Set once the future that owns this slot has been dropped.
    pub abandoned: bool,
}

/// An external-event waiter. `value` is set when an event is routed to it.
#[derive(Debug, Default)]
pub(crate) struct Waiter {
    pub name: String,
    pub value: Option<Option<String>>,
    pub waker: Option<Waker>,
}

/// The external-event waiters by id, oldest first. Usually one or two: a vector costs one small
/// allocation where a `BTreeMap` would hold a node of eleven waiters in every cached
/// orchestration.
#[derive(Debug, Default)]
pub(crate) struct Waiters(Vec<(u64, Waiter)>);

impl Waiters {
    /// Ids are given out in increasing order, so pushing keeps the oldest first.
    pub fn insert(&mut self, id: u64, waiter: Waiter) {
        debug_assert!(self.0.last().is_none_or(|(last, _)| *last < id));
        self.0.push((id, waiter));
    }

    pub fn get_mut(&mut self, id: &u64) -> Option<&mut Waiter> {
        self.0.iter_mut().find(|(i, _)| i == id).map(|(_, w)| w)
    }

    pub fn remove(&mut self, id: &u64) -> Option<Waiter> {
        let pos = self.0.iter().position(|(i, _)| i == id)?;
        Some(self.0.remove(pos).1)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&u64, &mut Waiter)> {
        self.0.iter_mut().map(|(i, w)| (&*i, w))
    }
}

/// An event that arrived while nobody waited for it.
#[derive(Debug, Clone)]
pub(crate) struct BufferedEvent {
    pub name: String,
    pub data: Option<String>,
}

#[derive(Debug)]
pub(crate) struct State {
    pub instance_id: String,
    pub execution_id: String,
    pub name: String,
    pub version: Option<String>,
    pub parent: Option<ParentInstance>,
    pub current_time: DateTime<Utc>,
    pub replaying: bool,
    pub next_id: i32,
    /// Actions issued by the code and not yet confirmed by history, by id.
    pub issued: BTreeMap<i32, ActionKind>,
    pub slots: HashMap<i32, Slot>,
    pub next_waiter: u64,
    pub waiters: Waiters,
    /// External events nobody has waited for yet, in arrival order.
    pub buffered: Vec<BufferedEvent>,
    pub custom_status: Option<String>,
    pub continue_as_new: Option<ContinueAsNewRequest>,
    pub uuid_counter: u64,
    pub cancelled_timers: Vec<i32>,
    /// Timer ids, so that dropping a timer future can tell a timer from other tasks.
    pub timers: HashMap<i32, DateTime<Utc>>,
    /// Activities, timers and sub-orchestrations issued and not resolved (nor cancelled), for
    /// the pending-tasks limit.
    pub open_tasks: HashSet<i32>,
    /// The most recent call the code made, for error messages.
    pub last_call: Option<(i32, String)>,
    /// When the execution started, and the trace context it was started in.
    pub started: Option<(DateTime<Utc>, Option<crate::event::TraceContext>)>,
    /// Entity call request ids and critical section ids, to the call numbers waiting for them.
    pub entity_requests: HashMap<String, i32>,
    /// Critical sections requested and not released: id to (locked entities, granted).
    pub sections: BTreeMap<String, (Vec<String>, bool)>,
}

#[derive(Debug, Clone)]
pub(crate) struct ContinueAsNewRequest {
    pub input: Option<String>,
    pub version: Option<String>,
}

impl State {
    pub fn new(instance_id: String, execution_id: String, name: String) -> Self {
        State {
            instance_id,
            execution_id,
            name,
            version: None,
            parent: None,
            current_time: DateTime::<Utc>::UNIX_EPOCH,
            replaying: true,
            next_id: 1,
            issued: BTreeMap::new(),
            slots: HashMap::new(),
            next_waiter: 0,
            waiters: Waiters::default(),
            buffered: Vec::new(),
            custom_status: None,
            continue_as_new: None,
            uuid_counter: 0,
            cancelled_timers: Vec::new(),
            timers: HashMap::new(),
            open_tasks: HashSet::new(),
            last_call: None,
            started: None,
            entity_requests: HashMap::new(),
            sections: BTreeMap::new(),
        }
    }

    /// Records an action the code just issued and returns its id.
    pub fn issue(&mut self, kind: ActionKind) -> i32 {
        let id = self.next_id;
        self.next_id += 1;
        if let ActionKind::CreateTimer { fire_at } = &kind {
            self.timers.insert(id, *fire_at);
        }
        if kind.is_task() {
            self.open_tasks.insert(id);
        }
        self.last_call = Some((id, kind.describe()));
        self.issued.insert(id, kind);
        self.slots.insert(id, Slot::default());
        id
    }

    /// Delivers a task outcome; returns false if no task with that id exists.
    pub fn resolve(&mut self, id: i32, outcome: Outcome) -> bool {
        self.timers.remove(&id);
        self.open_tasks.remove(&id);
        match self.slots.get_mut(&id) {
            Some(slot) if slot.abandoned => {
                self.slots.remove(&id);
                false
            }
            Some(slot) if slot.outcome.is_none() => {
                slot.outcome = Some(outcome);
                if let Some(w) = slot.waker.take() {
                    w.wake();
                }
                true
            }
            _ => false,
        }
    }

    /// Takes a task's outcome once it is there; the slot is then forgotten.
    pub fn take_outcome(&mut self, id: i32, waker: &Waker) -> Option<Outcome> {
        let slot = self.slots.get_mut(&id)?;
        match slot.outcome.take() {
            Some(outcome) => {
                self.slots.remove(&id);
                Some(outcome)
            }
            None => {
                slot.waker = Some(waker.clone());
                None
            }
        }
    }

    /// Registers a waiter for an external event, serving it from the buffer if one arrived.
    pub fn add_waiter(&mut self, name: &str) -> u64 {
        let id = self.next_waiter;
        self.next_waiter += 1;
        let mut waiter = Waiter {
            name: name.to_string(),
            ..Default::default()
        };
        if let Some(pos) = self
            .buffered
            .iter()
            .position(|b| b.name.eq_ignore_ascii_case(name))
        {
            waiter.value = Some(self.buffered.remove(pos).data);
        }
        self.waiters.insert(id, waiter);
        id
    }

    /// Routes an external event to the oldest waiter for its name, or buffers it.
    pub fn raise(&mut self, name: &str, data: Option<String>) {
        let target = self
            .waiters
            .iter_mut()
            .find(|(_, w)| w.value.is_none() && w.name.eq_ignore_ascii_case(name));
        match target {
            Some((_, waiter)) => {
                waiter.value = Some(data);
                if let Some(w) = waiter.waker.take() {
                    w.wake();
                }
            }
            None => self.buffered.push(BufferedEvent {
                name: name.to_string(),
                data,
            }),
        }
    }

    /// A waiter's future was dropped. An event it received but never returned goes back to the
    /// front of the buffer, so nothing raised is lost.
    pub fn drop_waiter(&mut self, id: u64) {
        if let Some(waiter) = self.waiters.remove(&id)
            && let Some(data) = waiter.value
        {
            self.buffered.insert(
                0,
                BufferedEvent {
                    name: waiter.name,
                    data,
                },
            );
        }
    }

    /// A task future was dropped. An unfired timer is cancelled.
    pub fn drop_task(&mut self, id: i32) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if slot.outcome.is_some() {
            self.slots.remove(&id);
            return;
        }
        slot.abandoned = true;
        slot.waker = None;
        if self.timers.remove(&id).is_some() {
            self.open_tasks.remove(&id);
            self.cancelled_timers.push(id);
        }
    }
}
