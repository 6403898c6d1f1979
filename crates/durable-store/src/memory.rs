//! The in-memory store: the reference implementation of the contract, for tests and throwaway
//! runs. Everything lives in one mutex-guarded state; nothing survives the process.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use durable_core::clock::{SharedClock, system_clock};
use durable_core::event::{EventKind, HistoryEvent};
use durable_core::instance::{
    InstanceQuery, InstanceState, NewInstance, Page, PurgeFilter, decode_cursor,
};
use durable_core::status::RuntimeStatus;
use durable_core::work::{
    ActivityItem, ActivityLease, ActivityResult, HistoryWrite, InboxMessage, Lease, NameFilter,
    NewActivity, NewMessage, OrchestrationItem, QueueStats, SendOutcome, TurnCommit,
};
use parking_lot::Mutex;

use crate::{Notifier, Store, StoreError, StoreResult};

#[derive(Debug)]
struct Instance {
    state: InstanceState,
    history: Vec<HistoryEvent>,
    epoch: u64,
    locked_until: Option<DateTime<Utc>>,
}

#[derive(Debug)]
struct Message {
    instance_id: String,
    execution_id: Option<String>,
    event: HistoryEvent,
    visible_at: DateTime<Utc>,
    delivery_count: u32,
}

#[derive(Debug)]
struct QueuedActivity {
    activity: NewActivity,
    visible_at: DateTime<Utc>,
    locked_until: Option<DateTime<Utc>>,
    epoch: u64,
    delivery_count: u32,
}

#[derive(Debug, Default)]
struct Inner {
    instances: BTreeMap<String, Instance>,
    messages: BTreeMap<i64, Message>,
    activities: BTreeMap<i64, QueuedActivity>,
    next_key: i64,
}

/// A [`Store`] that keeps everything in memory.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    clock: SharedClock,
    notifier: Notifier,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_clock(system_clock())
    }
}

impl MemoryStore {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn with_clock(clock: SharedClock) -> Self {
        MemoryStore {
            inner: Mutex::new(Inner::default()),
            clock,
            notifier: Notifier::new(),
        }
    }
}

fn lock_for(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Inner {
    fn key(&mut self) -> i64 {
        self.next_key += 1;
        self.next_key
    }

    fn delete_instance(&mut self, id: &str) {
        self.instances.remove(id);
        self.messages.retain(|_, m| m.instance_id != id);
        self.activities.retain(|_, a| a.activity.instance_id != id);
    }

    fn create(&mut self, new: NewInstance, now: DateTime<Utc>) -> StoreResult<()> {
        if let Some(existing) = self.instances.get(&new.instance_id) {
            if !new.if_exists.allows(existing.state.status) {
                return Err(StoreError::AlreadyExists(new.instance_id));
            }
            self.delete_instance(&new.instance_id);
        }
        let started = new.started_event(now);
        let id = new.instance_id.clone();
        self.instances.insert(
            id.clone(),
            Instance {
                state: InstanceState {
                    instance_id: id.clone(),
                    name: new.name,
                    version: new.version,
                    execution_id: new.execution_id.clone(),
                    status: RuntimeStatus::Pending,
                    input: new.input,
                    output: None,
                    custom_status: None,
                    failure: None,
                    created_at: now,
                    updated_at: now,
                    completed_at: None,
                    scheduled_start_at: new.scheduled_start_at,
                    parent: new.parent,
                    tags: new.tags,
                },
                history: Vec::new(),
                epoch: 0,
                locked_until: None,
            },
        );
        let key = self.key();
        self.messages.insert(
            key,
            Message {
                instance_id: id,
                execution_id: Some(new.execution_id),
                event: started,
                visible_at: new.scheduled_start_at.unwrap_or(now),
                delivery_count: 0,
            },
        );
        Ok(())
    }

    /// Inserts a message unless its target is unknown or finished.
    fn deliver(&mut self, msg: NewMessage, now: DateTime<Utc>) -> bool {
        let live = self
            .instances
            .get(&msg.instance_id)
            .is_some_and(|i| !i.state.status.is_terminal());
        if live {
            let key = self.key();
            self.messages.insert(
                key,
                Message {
                    instance_id: msg.instance_id,
                    execution_id: msg.execution_id,
                    event: msg.event,
                    visible_at: msg.visible_at.unwrap_or(now),
                    delivery_count: 0,
                },
            );
        }
        live
    }

    fn check_lease(&self, lease: &Lease) -> StoreResult<()> {
        match self.instances.get(&lease.instance_id) {
            Some(i) if i.epoch == lease.epoch => Ok(()),
            _ => Err(StoreError::StaleLease(lease.instance_id.clone())),
        }
    }

    fn check_activity(&self, lease: &ActivityLease) -> StoreResult<()> {
        match self.activities.get(&lease.activity_id) {
            Some(a) if a.epoch == lease.epoch => Ok(()),
            _ => Err(StoreError::StaleLease(format!(
                "activity {}",
                lease.activity_id
            ))),
        }
    }

    fn purge(&mut self, id: &str, recursive: bool) -> u64 {
        let terminal = self
            .instances
            .get(id)
            .is_some_and(|i| i.state.status.is_terminal());
        if !terminal {
            return 0;
        }
        let mut count = 1;
        if recursive {
            let children: Vec<String> = self
                .instances
                .values()
                .filter(|i| i.state.parent_instance_id() == Some(id))
                .map(|i| i.state.instance_id.clone())
                .collect();
            for child in children {
                count += self.purge(&child, true);
            }
        }
        self.delete_instance(id);
        count
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn describe(&self) -> String {
        "memory".into()
    }

    fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    async fn create_instance(&self, instance: NewInstance) -> StoreResult<()> {
        let id = instance.instance_id.clone();
        self.inner.lock().create(instance, self.clock.now())?;
        self.notifier.orchestration_work();
        self.notifier.instance_changed(&id);
        Ok(())
    }

    async fn send_message(&self, message: NewMessage) -> StoreResult<SendOutcome> {
        let now = self.clock.now();
        let mut inner = self.inner.lock();
        let inst = inner
            .instances
            .get_mut(&message.instance_id)
            .ok_or_else(|| StoreError::NotFound(message.instance_id.clone()))?;
        if inst.state.status.is_terminal() {
            return Ok(SendOutcome::InstanceTerminal);
        }
        if inst.state.status == RuntimeStatus::Pending
            && matches!(message.event.kind, EventKind::ExecutionTerminated { .. })
        {
            inst.state.scheduled_start_at = None;
            let id = message.instance_id.clone();
            for m in inner.messages.values_mut().filter(|m| m.instance_id == id) {
                m.visible_at = m.visible_at.min(now);
            }
        }
        inner.deliver(message, now);
        drop(inner);
        self.notifier.orchestration_work();
        Ok(SendOutcome::Queued)
    }

    async fn fetch_orchestration_items(
        &self,
        max: usize,
        lock: Duration,
        filter: &NameFilter,
    ) -> StoreResult<Vec<OrchestrationItem>> {
        let now = self.clock.now();
        let mut inner = self.inner.lock();
        let mut ready: Vec<String> = Vec::new();
        for m in inner.messages.values() {
            if ready.len() >= max {
                break;
            }
            if m.visible_at > now || ready.contains(&m.instance_id) {
                continue;
            }
            let Some(i) = inner.instances.get(&m.instance_id) else {
                continue;
            };
            let locked = i.locked_until.is_some_and(|u| u > now);
            let not_yet = i.state.status == RuntimeStatus::Pending
                && i.state.scheduled_start_at.is_some_and(|s| s > now);
            if !locked && !not_yet && !i.state.status.is_terminal() && filter.matches(&i.state.name)
            {
                ready.push(m.instance_id.clone());
            }
        }
        let mut items = Vec::with_capacity(ready.len());
        for id in ready {
            let mut messages = Vec::new();
            for (key, m) in inner.messages.iter_mut() {
                if m.instance_id == id && m.visible_at <= now {
                    m.delivery_count += 1;
                    messages.push(InboxMessage {
                        id: *key,
                        execution_id: m.execution_id.clone(),
                        event: m.event.clone(),
                        delivery_count: m.delivery_count,
                    });
                }
            }
            let inst = inner
                .instances
                .get_mut(&id)
                .expect("instance of a ready message");
            inst.epoch += 1;
            inst.locked_until = Some(lock_for(now, lock));
            items.push(OrchestrationItem {
                lease: Lease {
                    instance_id: id,
                    epoch: inst.epoch,
                },
                instance: inst.state.clone(),
                history_len: inst.history.len() as u32,
                messages,
            });
        }
        Ok(items)
    }

    async fn next_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let now = self.clock.now();
        let inner = self.inner.lock();
        let messages = inner.messages.values().map(|m| m.visible_at);
        let activities = inner.activities.values().map(|a| a.visible_at);
        Ok(messages.chain(activities).filter(|t| *t > now).min())
    }

    async fn read_history(&self, instance_id: &str) -> StoreResult<Vec<HistoryEvent>> {
        Ok(self
            .inner
            .lock()
            .instances
            .get(instance_id)
            .map(|i| i.history.clone())
            .unwrap_or_default())
    }

    async fn commit_turn(&self, commit: TurnCommit) -> StoreResult<()> {
        let now = self.clock.now();
        let mut inner = self.inner.lock();
        inner.check_lease(&commit.lease)?;
        let id = commit.lease.instance_id.clone();
        {
            let inst = inner.instances.get_mut(&id).expect("checked");
            match commit.history {
                HistoryWrite::Append { from, events } => {
                    if from as usize != inst.history.len() {
                        return Err(StoreError::StaleLease(id));
                    }
                    inst.history.extend(events);
                }
                HistoryWrite::Replace { events, .. } => inst.history = events,
            }
            let u = commit.instance;
            let s = &mut inst.state;
            s.status = u.status;
            s.execution_id = u.execution_id;
            s.version = u.version;
            s.input = u.input;
            s.output = u.output;
            s.custom_status = u.custom_status;
            s.failure = u.failure;
            s.completed_at = u.completed_at;
            s.updated_at = now;
            inst.locked_until = None;
        }
        for key in &commit.consumed {
            inner.messages.remove(key);
        }
        for activity in commit.activities {
            let key = inner.key();
            inner.activities.insert(
                key,
                QueuedActivity {
                    activity,
                    visible_at: now,
                    locked_until: None,
                    epoch: 0,
                    delivery_count: 0,
                },
            );
        }
        let mut changed = vec![id.clone()];
        for child in commit.children {
            let child_id = child.instance.instance_id.clone();
            match inner.create(child.instance, now) {
                Ok(()) => changed.push(child_id),
                Err(_) => {
                    inner.deliver(child.on_conflict, now);
                }
            }
        }
        for msg in commit.messages {
            inner.deliver(msg, now);
        }
        let exec = inner.instances[&id].state.execution_id.clone();
        if !commit.cancelled_timers.is_empty() {
            inner.messages.retain(|_, m| {
                !(m.instance_id == id
                    && m.execution_id.as_deref() == Some(exec.as_str())
                    && matches!(m.event.kind, EventKind::TimerFired { timer_id, .. } if commit.cancelled_timers.contains(&timer_id)))
            });
        }
        if let Some(reason) = commit.terminate_children {
            let children: Vec<String> = inner
                .instances
                .values()
                .filter(|i| {
                    i.state.parent_instance_id() == Some(id.as_str())
                        && !i.state.status.is_terminal()
                })
                .map(|i| i.state.instance_id.clone())
                .collect();
            for child in children {
                inner.deliver(
                    NewMessage {
                        instance_id: child,
                        execution_id: None,
                        event: HistoryEvent::unnumbered(
                            now,
                            EventKind::ExecutionTerminated {
                                input: reason.clone(),
                                recurse: true,
                            },
                        ),
                        visible_at: None,
                    },
                    now,
                );
            }
        }
        if inner.instances[&id].state.status.is_terminal() {
            inner.messages.retain(|_, m| m.instance_id != id);
            inner
                .activities
                .retain(|_, a| a.activity.instance_id != id || a.locked_until.is_some());
        }
        drop(inner);
        self.notifier.orchestration_work();
        self.notifier.activity_work();
        for c in changed {
            self.notifier.instance_changed(&c);
        }
        Ok(())
    }

    async fn abandon_orchestration_item(
        &self,
        lease: &Lease,
        retry_after: Option<Duration>,
    ) -> StoreResult<()> {
        let now = self.clock.now();
        let mut inner = self.inner.lock();
        inner.check_lease(lease)?;
        inner
            .instances
            .get_mut(&lease.instance_id)
            .expect("checked")
            .locked_until = None;
        if let Some(delay) = retry_after {
            let until = lock_for(now, delay);
            for m in inner.messages.values_mut() {
                if m.instance_id == lease.instance_id && m.visible_at <= now {
                    m.visible_at = until;
                }
            }
        }
        drop(inner);
        self.notifier.orchestration_work();
        Ok(())
    }

    async fn renew_orchestration_lease(&self, lease: &Lease, lock: Duration) -> StoreResult<()> {
        let now = self.clock.now();
        let mut inner = self.inner.lock();
        inner.check_lease(lease)?;
        inner
            .instances
            .get_mut(&lease.instance_id)
            .expect("checked")
            .locked_until = Some(lock_for(now, lock));
        Ok(())
    }

    async fn fetch_activity_items(
        &self,
        max: usize,
        lock: Duration,
        filter: &NameFilter,
    ) -> StoreResult<Vec<ActivityItem>> {
        let now = self.clock.now();
        let mut inner = self.inner.lock();
        let mut items = Vec::new();
        for (key, a) in inner.activities.iter_mut() {
            if items.len() >= max {
                break;
            }
            if a.visible_at > now
                || a.locked_until.is_some_and(|u| u > now)
                || !filter.matches(&a.activity.name)
            {
                continue;
            }
            a.epoch += 1;
            a.delivery_count += 1;
            a.locked_until = Some(lock_for(now, lock));
            items.push(ActivityItem {
                lease: ActivityLease {
                    activity_id: *key,
                    epoch: a.epoch,
                },
                activity: a.activity.clone(),
                delivery_count: a.delivery_count,
            });
        }
        Ok(items)
    }

    async fn complete_activity(
        &self,
        lease: &ActivityLease,
        result: ActivityResult,
    ) -> StoreResult<()> {
        let now = self.clock.now();
        let mut inner = self.inner.lock();
        inner.check_activity(lease)?;
        let a = inner
            .activities
            .remove(&lease.activity_id)
            .expect("checked");
        let task_scheduled_id = a.activity.task_id;
        let kind = match result {
            ActivityResult::Completed(result) => EventKind::TaskCompleted {
                task_scheduled_id,
                result,
            },
            ActivityResult::Failed(failure_details) => EventKind::TaskFailed {
                task_scheduled_id,
                failure_details,
            },
        };
        inner.deliver(
            NewMessage {
                instance_id: a.activity.instance_id,
                execution_id: Some(a.activity.execution_id),
                event: HistoryEvent::unnumbered(now, kind),
                visible_at: None,
            },
            now,
        );
        drop(inner);
        self.notifier.orchestration_work();
        Ok(())
    }

    async fn abandon_activity_item(
        &self,
        lease: &ActivityLease,
        retry_after: Option<Duration>,
    ) -> StoreResult<()> {
        let now = self.clock.now();
        let mut inner = self.inner.lock();
        inner.check_activity(lease)?;
        let a = inner
            .activities
            .get_mut(&lease.activity_id)
            .expect("checked");
        a.locked_until = None;
        a.visible_at = retry_after.map_or(now, |d| lock_for(now, d));
        drop(inner);
        self.notifier.activity_work();
        Ok(())
    }

    async fn renew_activity_lease(&self, lease: &ActivityLease, lock: Duration) -> StoreResult<()> {
        let now = self.clock.now();
        let mut inner = self.inner.lock();
        inner.check_activity(lease)?;
        inner
            .activities
            .get_mut(&lease.activity_id)
            .expect("checked")
            .locked_until = Some(lock_for(now, lock));
        Ok(())
    }

    async fn get_instance(&self, instance_id: &str) -> StoreResult<Option<InstanceState>> {
        Ok(self
            .inner
            .lock()
            .instances
            .get(instance_id)
            .map(|i| i.state.clone()))
    }

    async fn query_instances(&self, query: &InstanceQuery) -> StoreResult<Page<InstanceState>> {
        let inner = self.inner.lock();
        let after = query.continuation_token.as_deref().and_then(decode_cursor);
        let mut matching: Vec<&InstanceState> = inner
            .instances
            .values()
            .map(|i| &i.state)
            .filter(|s| query.statuses.is_empty() || query.statuses.contains(&s.status))
            .filter(|s| query.created_from.is_none_or(|f| s.created_at >= f))
            .filter(|s| query.created_to.is_none_or(|t| s.created_at < t))
            .filter(|s| query.name.as_ref().is_none_or(|n| &s.name == n))
            .filter(|s| {
                query
                    .instance_id_prefix
                    .as_ref()
                    .is_none_or(|p| s.instance_id.starts_with(p.as_str()))
            })
            .filter(|s| {
                after
                    .as_ref()
                    .is_none_or(|(at, id)| (s.created_at, &s.instance_id) > (*at, id))
            })
            .collect();
        matching
            .sort_by(|a, b| (a.created_at, &a.instance_id).cmp(&(b.created_at, &b.instance_id)));
        let size = query.page_size.unwrap_or(100).max(1);
        matching.truncate(size.saturating_add(1));
        let items = matching.into_iter().cloned().collect();
        Ok(Page::of_instances(items, size, query.fetch_payloads))
    }

    async fn purge_instance(&self, instance_id: &str, recursive: bool) -> StoreResult<u64> {
        let n = self.inner.lock().purge(instance_id, recursive);
        self.notifier.instance_changed(instance_id);
        Ok(n)
    }

    async fn purge_instances(&self, filter: &PurgeFilter) -> StoreResult<u64> {
        let mut inner = self.inner.lock();
        let ids: Vec<String> = inner
            .instances
            .values()
            .map(|i| &i.state)
            .filter(|s| s.status.is_terminal())
            .filter(|s| filter.statuses.is_empty() || filter.statuses.contains(&s.status))
            .filter(|s| filter.created_from.is_none_or(|f| s.created_at >= f))
            .filter(|s| filter.created_to.is_none_or(|t| s.created_at < t))
            .map(|s| s.instance_id.clone())
            .collect();
        Ok(ids.iter().map(|id| inner.purge(id, false)).sum())
    }

    async fn rewind_instance(&self, instance_id: &str, event: HistoryEvent) -> StoreResult<()> {
        let now = self.clock.now();
        let mut inner = self.inner.lock();
        let inst = inner
            .instances
            .get_mut(instance_id)
            .ok_or_else(|| StoreError::NotFound(instance_id.to_string()))?;
        if inst.state.status != RuntimeStatus::Failed {
            return Err(StoreError::InvalidState(format!(
                "instance '{instance_id}' is {}; only a Failed instance can be rewound",
                inst.state.status
            )));
        }
        inst.state.status = RuntimeStatus::Running;
        inst.state.output = None;
        inst.state.failure = None;
        inst.state.completed_at = None;
        inst.state.updated_at = now;
        let exec = inst.state.execution_id.clone();
        inner.deliver(
            NewMessage {
                instance_id: instance_id.to_string(),
                execution_id: Some(exec),
                event,
                visible_at: None,
            },
            now,
        );
        drop(inner);
        self.notifier.orchestration_work();
        self.notifier.instance_changed(instance_id);
        Ok(())
    }

    async fn queue_stats(&self) -> StoreResult<QueueStats> {
        let now = self.clock.now();
        let inner = self.inner.lock();
        let mut stats = QueueStats::default();
        let mut ready: Vec<&str> = Vec::new();
        for m in inner.messages.values() {
            if m.visible_at > now {
                stats.pending_timers += 1;
                continue;
            }
            stats.oldest_orchestration_message_at = Some(
                stats
                    .oldest_orchestration_message_at
                    .map_or(m.visible_at, |o| o.min(m.visible_at)),
            );
            if !ready.contains(&m.instance_id.as_str()) {
                ready.push(&m.instance_id);
            }
        }
        stats.orchestration_backlog = ready.len() as u64;
        for a in inner.activities.values() {
            if a.visible_at <= now && a.locked_until.is_none_or(|u| u <= now) {
                stats.activity_backlog += 1;
                stats.oldest_activity_at = Some(
                    stats
                        .oldest_activity_at
                        .map_or(a.visible_at, |o| o.min(a.visible_at)),
                );
            }
        }
        let mut by_status: BTreeMap<RuntimeStatus, u64> = BTreeMap::new();
        for i in inner.instances.values() {
            *by_status.entry(i.state.status).or_default() += 1;
        }
        stats.instances_by_status = by_status.into_iter().collect();
        Ok(stats)
    }
}
