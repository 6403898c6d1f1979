//! The store state machine: instances, inboxes, leases and the activity queue, with the indexes
//! that make every claim O(batch). It is deterministic: applying the same [`Op`]s with the same
//! times to the same state always gives the same results. The in-memory store is this machine
//! behind a mutex; the SQLite store journals the ops and replays them after a restart.
//!
//! Histories are not kept here: an op reports how long the history becomes, and the store keeps
//! the events wherever it keeps them.

mod apply;
mod read;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use durable_core::event::HistoryEvent;
use durable_core::instance::{InstanceState, NewInstance, PurgeFilter};
use durable_core::work::{
    ActivityLease, ActivityResult, Lease, NameFilter, NewActivity, NewMessage, TurnCommit,
};
use serde::{Deserialize, Serialize};

/// A message in an inbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Msg {
    pub execution_id: Option<String>,
    pub event: HistoryEvent,
    pub visible_at: DateTime<Utc>,
    pub delivery_count: u32,
}

/// An activity invocation waiting to run or running.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Queued {
    pub activity: NewActivity,
    pub visible_at: DateTime<Utc>,
    pub locked_until: Option<DateTime<Utc>>,
    pub epoch: u64,
    pub delivery_count: u32,
}

/// Everything about one instance. This is also the unit of snapshots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    pub state: InstanceState,
    pub history_len: u32,
    pub epoch: u64,
    pub locked_until: Option<DateTime<Utc>>,
    pub inbox: BTreeMap<i64, Msg>,
    pub activities: BTreeMap<i64, Queued>,
}

impl Slot {
    /// A map emptied by removals keeps its node, several KiB with values this large: an idle
    /// instance whose inbox was consumed would hold one for as long as it waits.
    fn release_empty(&mut self) {
        if self.inbox.is_empty() {
            self.inbox = BTreeMap::new();
        }
        if self.activities.is_empty() {
            self.activities = BTreeMap::new();
        }
    }
}

/// A change to the machine. Stores journal these (without history events) to rebuild the state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    Create(NewInstance),
    Send(NewMessage),
    FetchOrchestrations {
        max: usize,
        until: DateTime<Utc>,
        filter: NameFilter,
    },
    /// `history_len` is the history length after the commit.
    Commit {
        commit: TurnCommit,
        history_len: u32,
        claim: usize,
        filter: NameFilter,
        until: DateTime<Utc>,
    },
    AbandonOrchestration {
        lease: Lease,
        retry_at: Option<DateTime<Utc>>,
    },
    RenewOrchestration {
        lease: Lease,
        until: DateTime<Utc>,
    },
    FetchActivities {
        max: usize,
        until: DateTime<Utc>,
        filter: NameFilter,
    },
    CompleteActivity {
        lease: ActivityLease,
        result: ActivityResult,
    },
    AbandonActivity {
        lease: ActivityLease,
        visible_at: DateTime<Utc>,
    },
    RenewActivity {
        lease: ActivityLease,
        until: DateTime<Utc>,
    },
    Purge {
        instance_id: String,
        recursive: bool,
    },
    PurgeMany(PurgeFilter),
    RemoveEmptyEntity {
        instance_id: String,
    },
    Rewind {
        instance_id: String,
        event: HistoryEvent,
    },
}

impl Op {
    /// Whether the op only moves leases and delivery counts (a claim), so it need not be flushed
    /// to disk before it is acknowledged.
    pub fn is_claim(&self) -> bool {
        matches!(
            self,
            Op::FetchOrchestrations { .. }
                | Op::FetchActivities { .. }
                | Op::RenewOrchestration { .. }
                | Op::RenewActivity { .. }
                | Op::AbandonOrchestration { .. }
                | Op::AbandonActivity { .. }
        )
    }
}

/// What an op returns.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Done,
    Sent(durable_core::work::SendOutcome),
    Orchestrations(Vec<durable_core::work::OrchestrationItem>),
    Activities(Vec<durable_core::work::ActivityItem>),
    Count(u64),
}

/// What an applied op should wake, and which instances it deleted (their histories go too).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Effects {
    pub orchestrations: bool,
    pub activities: bool,
    pub changed: Vec<String>,
    pub deleted: Vec<String>,
    /// Whether the op changed anything at all (a fetch that found nothing did not).
    pub mutated: bool,
}

/// The state machine.
#[derive(Debug, Default)]
pub struct Machine {
    /// Boxed: the table then holds pointers, so growing it copies 8 bytes per instance, not a
    /// whole slot, and leaves no large freed tables behind.
    slots: HashMap<String, Box<Slot>>,
    next_key: i64,
    /// Instances that can be claimed, by the time they become claimable.
    ready: BTreeSet<(DateTime<Utc>, String)>,
    ready_at: HashMap<String, DateTime<Utc>>,
    /// Activities by the time they can be claimed, and the instance owning each.
    activity_ready: BTreeSet<(DateTime<Utc>, i64)>,
    activity_owner: HashMap<i64, String>,
    by_created: BTreeSet<(DateTime<Utc>, String)>,
    children: HashMap<String, BTreeSet<String>>,
    /// Instances changed since the last [`Machine::take_dirty`], when tracking is on.
    dirty: Option<HashSet<String>>,
}

impl Machine {
    pub fn new() -> Self {
        Self::default()
    }

    /// A machine that records which instances each op changed, for incremental snapshots.
    pub fn tracking_changes() -> Self {
        Machine {
            dirty: Some(HashSet::new()),
            ..Self::default()
        }
    }

    /// Rebuilds a machine from snapshots.
    pub fn restore(slots: Vec<Slot>, next_key: i64, track: bool) -> Self {
        let mut m = if track {
            Self::tracking_changes()
        } else {
            Self::new()
        };
        m.next_key = next_key;
        for slot in slots {
            let id = slot.state.instance_id.clone();
            m.index_new(&slot);
            m.slots.insert(id.clone(), Box::new(slot));
            m.reindex(&id);
        }
        m.dirty = m.dirty.take().map(|_| HashSet::new());
        m
    }

    pub fn next_key(&self) -> i64 {
        self.next_key
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The instances changed since the last call: `Some(slot)` for live ones, `None` for deleted.
    pub fn take_dirty(&mut self) -> Vec<(String, Option<Slot>)> {
        let Some(dirty) = self.dirty.as_mut() else {
            return Vec::new();
        };
        let ids: Vec<String> = dirty.drain().collect();
        ids.into_iter()
            .map(|id| {
                let slot = self.slots.get(&id).map(|s| Slot::clone(s));
                (id, slot)
            })
            .collect()
    }

    fn touch(&mut self, id: &str) {
        if let Some(d) = self.dirty.as_mut() {
            d.insert(id.to_string());
        }
    }

    fn key(&mut self) -> i64 {
        self.next_key += 1;
        self.next_key
    }

    fn index_new(&mut self, slot: &Slot) {
        let s = &slot.state;
        self.by_created
            .insert((s.created_at, s.instance_id.clone()));
        if let Some(parent) = s.parent_instance_id() {
            self.children
                .entry(parent.to_string())
                .or_default()
                .insert(s.instance_id.clone());
        }
        for (key, q) in &slot.activities {
            self.activity_ready.insert((activity_time(q), *key));
            self.activity_owner.insert(*key, s.instance_id.clone());
        }
    }

    /// Recomputes when an instance can next be claimed.
    fn reindex(&mut self, id: &str) {
        if let Some(slot) = self.slots.get_mut(id) {
            slot.release_empty();
        }
        let next = self.slots.get(id).and_then(|s| ready_time(s));
        let current = self.ready_at.get(id).copied();
        if current == next {
            return;
        }
        if let Some(at) = current {
            self.ready.remove(&(at, id.to_string()));
            self.ready_at.remove(id);
        }
        if let Some(at) = next {
            self.ready.insert((at, id.to_string()));
            self.ready_at.insert(id.to_string(), at);
        }
    }

    fn remove_slot(&mut self, id: &str) -> Option<Slot> {
        let slot = self.slots.remove(id)?;
        if let Some(at) = self.ready_at.remove(id) {
            self.ready.remove(&(at, id.to_string()));
        }
        self.by_created
            .remove(&(slot.state.created_at, id.to_string()));
        if let Some(parent) = slot.state.parent_instance_id()
            && let Some(set) = self.children.get_mut(parent)
        {
            set.remove(id);
            if set.is_empty() {
                self.children.remove(parent);
            }
        }
        for (key, q) in &slot.activities {
            self.activity_ready.remove(&(activity_time(q), *key));
            self.activity_owner.remove(key);
        }
        self.touch(id);
        Some(*slot)
    }
}

/// When an activity can be claimed: when it becomes visible, or when its lease expires.
fn activity_time(q: &Queued) -> DateTime<Utc> {
    q.locked_until.unwrap_or(q.visible_at)
}

/// When an instance can next be claimed, if it has work at all.
fn ready_time(slot: &Slot) -> Option<DateTime<Utc>> {
    if slot.state.status.is_terminal() || slot.inbox.is_empty() {
        return None;
    }
    if let Some(until) = slot.locked_until {
        return Some(until);
    }
    let first = slot.inbox.values().map(|m| m.visible_at).min()?;
    match slot.state.scheduled_start_at {
        Some(start) if slot.state.status == durable_core::status::RuntimeStatus::Pending => {
            Some(first.max(start))
        }
        _ => Some(first),
    }
}

#[cfg(test)]
mod tests;
