//! Applying ops. Every op checks before it changes anything, so a refused op leaves the machine
//! exactly as it was.

use chrono::{DateTime, Utc};
use durable_core::entity::EntityId;
use durable_core::event::{EventKind, HistoryEvent};
use durable_core::instance::{InstanceState, NewInstance};
use durable_core::status::RuntimeStatus;
use durable_core::work::{
    ActivityItem, ActivityLease, ActivityResult, HistoryWrite, InboxMessage, Lease, NameFilter,
    NewMessage, OrchestrationItem, SendOutcome, TurnCommit,
};

use super::{Effects, Machine, Msg, Op, Output, Queued, Slot, activity_time};
use crate::{StoreError, StoreResult};

type Applied = StoreResult<(Output, Effects)>;

fn done(effects: Effects) -> Applied {
    Ok((Output::Done, effects))
}

impl Machine {
    /// Applies one op at time `now` (kept to the microsecond, as stores and cursors keep it).
    pub fn apply(&mut self, now: DateTime<Utc>, op: Op) -> Applied {
        let now = DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
        match op {
            Op::Create(new) => self.create_op(new, now),
            Op::Send(msg) => self.send(msg, now),
            Op::FetchOrchestrations { max, until, filter } => {
                let items = self.fetch_orchestrations(max, until, &filter, now);
                let mutated = !items.is_empty();
                Ok((
                    Output::Orchestrations(items),
                    Effects {
                        mutated,
                        ..Default::default()
                    },
                ))
            }
            Op::Commit {
                commit,
                history_len,
                claim,
                filter,
                until,
            } => {
                let effects = self.commit(commit, history_len, now)?;
                let claimed = if claim > 0 {
                    self.fetch_activities(claim, until, &filter, now)
                } else {
                    Vec::new()
                };
                Ok((Output::Activities(claimed), effects))
            }
            Op::AbandonOrchestration { lease, retry_at } => self.abandon(&lease, retry_at, now),
            Op::RenewOrchestration { lease, until } => {
                self.check_lease(&lease)?;
                self.slot_mut(&lease.instance_id).locked_until = Some(until);
                self.reindex(&lease.instance_id);
                done(mutated())
            }
            Op::FetchActivities { max, until, filter } => {
                let items = self.fetch_activities(max, until, &filter, now);
                let mutated = !items.is_empty();
                Ok((
                    Output::Activities(items),
                    Effects {
                        mutated,
                        ..Default::default()
                    },
                ))
            }
            Op::CompleteActivity { lease, result } => self.complete(&lease, result, now),
            Op::AbandonActivity { lease, visible_at } => {
                self.update_activity(&lease, None, Some(visible_at))?;
                done(Effects {
                    activities: true,
                    mutated: true,
                    ..Default::default()
                })
            }
            Op::RenewActivity { lease, until } => {
                self.update_activity(&lease, Some(until), None)?;
                done(mutated())
            }
            Op::Purge {
                instance_id,
                recursive,
            } => {
                let mut deleted = Vec::new();
                self.purge(&instance_id, recursive, &mut deleted);
                let n = deleted.len() as u64;
                Ok((Output::Count(n), purged(deleted, &instance_id)))
            }
            Op::PurgeMany(filter) => {
                let ids: Vec<String> = self
                    .by_created
                    .iter()
                    .map(|(_, id)| id.clone())
                    .filter(|id| {
                        let s = &self.slots[id].state;
                        s.status.is_terminal()
                            && (filter.statuses.is_empty() || filter.statuses.contains(&s.status))
                            && filter.created_from.is_none_or(|f| s.created_at >= f)
                            && filter.created_to.is_none_or(|t| s.created_at < t)
                    })
                    .collect();
                let mut deleted = Vec::new();
                for id in ids {
                    self.purge(&id, false, &mut deleted);
                }
                let n = deleted.len() as u64;
                let mut effects = purged(deleted, "");
                effects.changed.retain(|c| !c.is_empty());
                Ok((Output::Count(n), effects))
            }
            Op::Rewind { instance_id, event } => self.rewind(&instance_id, event, now),
            Op::RemoveEmptyEntity { instance_id } => {
                if !self.is_empty_entity(&instance_id, now) {
                    return Ok((Output::Count(0), Effects::default()));
                }
                self.remove_slot(&instance_id);
                let deleted = vec![instance_id.clone()];
                Ok((Output::Count(1), purged(deleted, &instance_id)))
            }
        }
    }

    fn slot_mut(&mut self, id: &str) -> &mut Slot {
        self.touch(id);
        self.slots.get_mut(id).expect("checked before")
    }

    fn check_lease(&self, lease: &Lease) -> StoreResult<()> {
        match self.slots.get(&lease.instance_id) {
            Some(s) if s.epoch == lease.epoch => Ok(()),
            _ => Err(StoreError::StaleLease(lease.instance_id.clone())),
        }
    }

    fn create(
        &mut self,
        new: NewInstance,
        now: DateTime<Utc>,
        deleted: &mut Vec<String>,
    ) -> StoreResult<()> {
        if let Some(existing) = self.slots.get(&new.instance_id) {
            if !new.if_exists.allows(existing.state.status) {
                return Err(StoreError::AlreadyExists(new.instance_id));
            }
            self.remove_slot(&new.instance_id);
            deleted.push(new.instance_id.clone());
        }
        let started = new.started_event(now);
        let id = new.instance_id.clone();
        let key = self.key();
        let mut inbox = std::collections::BTreeMap::new();
        inbox.insert(
            key,
            Msg {
                execution_id: Some(new.execution_id.clone()),
                event: started,
                visible_at: new.scheduled_start_at.unwrap_or(now),
                delivery_count: 0,
            },
        );
        let slot = Slot {
            state: InstanceState {
                instance_id: id.clone(),
                name: new.name,
                version: new.version,
                execution_id: new.execution_id,
                status: RuntimeStatus::Pending,
                input: new.input,
                output: None,
                custom_status: None,
                failure: None,
                created_at: now,
                updated_at: now,
                completed_at: None,
                scheduled_start_at: new.scheduled_start_at,
                parent: new.parent.map(Box::new),
                tags: new.tags,
            },
            history_len: 0,
            epoch: 0,
            locked_until: None,
            inbox,
            activities: Default::default(),
        };
        self.index_new(&slot);
        self.slots.insert(id.clone(), Box::new(slot));
        self.touch(&id);
        self.reindex(&id);
        Ok(())
    }

    fn create_op(&mut self, new: NewInstance, now: DateTime<Utc>) -> Applied {
        let id = new.instance_id.clone();
        let mut deleted = Vec::new();
        self.create(new, now, &mut deleted)?;
        done(Effects {
            orchestrations: true,
            changed: vec![id],
            deleted,
            mutated: true,
            ..Default::default()
        })
    }

    /// An entity comes into being when it is first addressed.
    fn ensure_entity(&mut self, id: &str, now: DateTime<Utc>) {
        let Some(entity) = durable_core::entity::EntityId::parse(id) else {
            return;
        };
        if self.slots.contains_key(id) {
            return;
        }
        let slot = Slot {
            state: InstanceState {
                instance_id: id.to_string(),
                name: entity.name,
                version: None,
                execution_id: String::new(),
                status: RuntimeStatus::Running,
                input: None,
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
            history_len: 0,
            epoch: 0,
            locked_until: None,
            inbox: Default::default(),
            activities: Default::default(),
        };
        self.index_new(&slot);
        self.slots.insert(id.to_string(), Box::new(slot));
        self.touch(id);
    }

    /// Puts a message into a live instance's inbox; returns false if the target is unknown or
    /// finished (the message is dropped). A message to an entity creates the entity.
    fn deliver(&mut self, msg: NewMessage, now: DateTime<Utc>) -> bool {
        self.ensure_entity(&msg.instance_id, now);
        let live = self
            .slots
            .get(&msg.instance_id)
            .is_some_and(|s| !s.state.status.is_terminal());
        if !live {
            return false;
        }
        let key = self.key();
        let id = msg.instance_id.clone();
        self.slot_mut(&id).inbox.insert(
            key,
            Msg {
                execution_id: msg.execution_id,
                event: msg.event,
                visible_at: msg.visible_at.unwrap_or(now),
                delivery_count: 0,
            },
        );
        self.reindex(&id);
        true
    }

    fn send(&mut self, msg: NewMessage, now: DateTime<Utc>) -> Applied {
        self.ensure_entity(&msg.instance_id, now);
        let slot = self
            .slots
            .get(&msg.instance_id)
            .ok_or_else(|| StoreError::NotFound(msg.instance_id.clone()))?;
        if slot.state.status.is_terminal() {
            return Ok((
                Output::Sent(SendOutcome::InstanceTerminal),
                Effects::default(),
            ));
        }
        let id = msg.instance_id.clone();
        if slot.state.status == RuntimeStatus::Pending
            && matches!(msg.event.kind, EventKind::ExecutionTerminated { .. })
        {
            let slot = self.slot_mut(&id);
            slot.state.scheduled_start_at = None;
            for m in slot.inbox.values_mut() {
                m.visible_at = m.visible_at.min(now);
            }
        }
        self.deliver(msg, now);
        Ok((
            Output::Sent(SendOutcome::Queued),
            Effects {
                orchestrations: true,
                mutated: true,
                ..Default::default()
            },
        ))
    }

    fn fetch_orchestrations(
        &mut self,
        max: usize,
        until: DateTime<Utc>,
        filter: &NameFilter,
        now: DateTime<Utc>,
    ) -> Vec<OrchestrationItem> {
        if filter.is_empty() {
            return Vec::new();
        }
        let candidates: Vec<String> = self
            .ready
            .iter()
            .take_while(|(at, _)| *at <= now)
            .filter(|(_, id)| filter.matches(&self.slots[id].state.name))
            .take(max)
            .map(|(_, id)| id.clone())
            .collect();
        let mut items = Vec::with_capacity(candidates.len());
        for id in candidates {
            let slot = self.slot_mut(&id);
            slot.epoch += 1;
            slot.locked_until = Some(until);
            let mut messages = Vec::new();
            for (key, m) in slot.inbox.iter_mut() {
                if m.visible_at <= now {
                    m.delivery_count += 1;
                    messages.push(InboxMessage {
                        id: *key,
                        execution_id: m.execution_id.clone(),
                        event: m.event.clone(),
                        delivery_count: m.delivery_count,
                    });
                }
            }
            let item = OrchestrationItem {
                lease: Lease {
                    instance_id: id.clone(),
                    epoch: slot.epoch,
                },
                instance: slot.state.clone(),
                history_len: slot.history_len,
                messages,
            };
            self.reindex(&id);
            items.push(item);
        }
        items
    }

    fn commit(
        &mut self,
        commit: TurnCommit,
        history_len: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<Effects> {
        self.check_lease(&commit.lease)?;
        let id = commit.lease.instance_id.clone();
        if let HistoryWrite::Append { from, .. } = &commit.history
            && *from != self.slots[&id].history_len
        {
            return Err(StoreError::StaleLease(id));
        }
        let mut effects = Effects {
            changed: vec![id.clone()],
            mutated: true,
            activities: !commit.activities.is_empty(),
            orchestrations: !commit.messages.is_empty() || !commit.children.is_empty(),
            ..Default::default()
        };
        {
            let slot = self.slot_mut(&id);
            slot.history_len = history_len;
            for key in &commit.consumed {
                slot.inbox.remove(key);
            }
            let u = commit.instance;
            let s = &mut slot.state;
            s.status = u.status;
            s.execution_id = u.execution_id;
            s.version = u.version;
            s.input = u.input;
            s.output = u.output;
            s.custom_status = u.custom_status;
            s.failure = u.failure.map(Box::new);
            s.completed_at = u.completed_at;
            s.updated_at = now;
            slot.locked_until = None;
        }
        for activity in commit.activities {
            let key = self.key();
            let q = Queued {
                activity,
                visible_at: now,
                locked_until: None,
                epoch: 0,
                delivery_count: 0,
            };
            self.activity_ready.insert((activity_time(&q), key));
            self.activity_owner.insert(key, id.clone());
            self.slot_mut(&id).activities.insert(key, q);
        }
        for child in commit.children {
            let child_id = child.instance.instance_id.clone();
            match self.create(child.instance, now, &mut effects.deleted) {
                Ok(()) => effects.changed.push(child_id),
                Err(_) => {
                    self.deliver(child.on_conflict, now);
                }
            }
        }
        for msg in commit.messages {
            self.deliver(msg, now);
        }
        if !commit.cancelled_timers.is_empty() {
            let slot = self.slot_mut(&id);
            let exec = slot.state.execution_id.clone();
            slot.inbox.retain(|_, m| {
                !(m.execution_id.as_deref() == Some(exec.as_str())
                    && matches!(m.event.kind, EventKind::TimerFired { timer_id, .. } if commit.cancelled_timers.contains(&timer_id)))
            });
        }
        if let Some(reason) = commit.terminate_children {
            let children: Vec<String> = self
                .children
                .get(&id)
                .map(|c| c.iter().cloned().collect())
                .unwrap_or_default();
            for child in children {
                let terminate = EventKind::ExecutionTerminated {
                    input: reason.clone(),
                    recurse: true,
                };
                let msg = NewMessage {
                    instance_id: child,
                    execution_id: None,
                    event: HistoryEvent::unnumbered(now, terminate),
                    visible_at: None,
                };
                effects.orchestrations |= self.deliver(msg, now);
            }
        }
        if self.slots[&id].state.status.is_terminal() {
            let slot = self.slot_mut(&id);
            slot.inbox.clear();
            let queued: Vec<(i64, Queued)> = slot
                .activities
                .iter()
                .filter(|(_, q)| q.locked_until.is_none())
                .map(|(k, q)| (*k, q.clone()))
                .collect();
            for (key, _) in &queued {
                slot.activities.remove(key);
            }
            for (key, q) in queued {
                self.activity_ready.remove(&(activity_time(&q), key));
                self.activity_owner.remove(&key);
            }
        }
        self.reindex(&id);
        Ok(effects)
    }

    fn abandon(
        &mut self,
        lease: &Lease,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Applied {
        self.check_lease(lease)?;
        // A retry delay keeps the instance locked until then; its messages keep their order
        // and visibility (delaying them could let a later event overtake the instance's start).
        let slot = self.slot_mut(&lease.instance_id);
        slot.locked_until = retry_at.filter(|at| *at > now);
        self.reindex(&lease.instance_id);
        done(Effects {
            orchestrations: true,
            mutated: true,
            ..Default::default()
        })
    }

    fn fetch_activities(
        &mut self,
        max: usize,
        until: DateTime<Utc>,
        filter: &NameFilter,
        now: DateTime<Utc>,
    ) -> Vec<ActivityItem> {
        if filter.is_empty() {
            return Vec::new();
        }
        let picked: Vec<((DateTime<Utc>, i64), String)> = self
            .activity_ready
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|k| (*k, self.activity_owner[&k.1].clone()))
            .filter(|((_, key), owner)| {
                filter.matches(&self.slots[owner].activities[key].activity.name)
            })
            .take(max)
            .collect();
        let mut items = Vec::with_capacity(picked.len());
        for (index_key, owner) in picked {
            self.activity_ready.remove(&index_key);
            let key = index_key.1;
            let q = self
                .slot_mut(&owner)
                .activities
                .get_mut(&key)
                .expect("indexed");
            q.epoch += 1;
            q.delivery_count += 1;
            q.locked_until = Some(until);
            let item = ActivityItem {
                lease: ActivityLease {
                    activity_id: key,
                    epoch: q.epoch,
                },
                activity: q.activity.clone(),
                delivery_count: q.delivery_count,
            };
            let at = activity_time(q);
            self.activity_ready.insert((at, key));
            items.push(item);
        }
        items
    }

    /// Finds a leased activity: (owner, key). Refuses a stale lease.
    fn leased(&self, lease: &ActivityLease) -> StoreResult<String> {
        let stale = || StoreError::StaleLease(format!("activity {}", lease.activity_id));
        let owner = self
            .activity_owner
            .get(&lease.activity_id)
            .cloned()
            .ok_or_else(stale)?;
        match self
            .slots
            .get(&owner)
            .and_then(|s| s.activities.get(&lease.activity_id))
        {
            Some(q) if q.epoch == lease.epoch => Ok(owner),
            _ => Err(stale()),
        }
    }

    fn update_activity(
        &mut self,
        lease: &ActivityLease,
        locked_until: Option<DateTime<Utc>>,
        visible_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        let owner = self.leased(lease)?;
        let key = lease.activity_id;
        let q = self
            .slot_mut(&owner)
            .activities
            .get_mut(&key)
            .expect("checked");
        let old = activity_time(q);
        q.locked_until = locked_until;
        if let Some(v) = visible_at {
            q.visible_at = v;
        }
        let new = activity_time(q);
        self.activity_ready.remove(&(old, key));
        self.activity_ready.insert((new, key));
        Ok(())
    }

    fn complete(
        &mut self,
        lease: &ActivityLease,
        result: ActivityResult,
        now: DateTime<Utc>,
    ) -> Applied {
        let owner = self.leased(lease)?;
        let key = lease.activity_id;
        let q = self
            .slot_mut(&owner)
            .activities
            .remove(&key)
            .expect("checked");
        self.activity_ready.remove(&(activity_time(&q), key));
        self.activity_owner.remove(&key);
        let task_scheduled_id = q.activity.task_id;
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
        let kept = self.deliver(
            NewMessage {
                instance_id: owner,
                execution_id: Some(q.activity.execution_id),
                event: HistoryEvent::unnumbered(now, kind),
                visible_at: None,
            },
            now,
        );
        done(Effects {
            orchestrations: kept,
            mutated: true,
            ..Default::default()
        })
    }

    fn purge(&mut self, id: &str, recursive: bool, deleted: &mut Vec<String>) {
        let terminal = self
            .slots
            .get(id)
            .is_some_and(|s| s.state.status.is_terminal());
        if !terminal {
            return;
        }
        if recursive {
            let children: Vec<String> = self
                .children
                .get(id)
                .map(|c| c.iter().cloned().collect())
                .unwrap_or_default();
            for child in children {
                self.purge(&child, true, deleted);
            }
        }
        self.remove_slot(id);
        deleted.push(id.to_string());
    }

    fn is_empty_entity(&self, id: &str, now: DateTime<Utc>) -> bool {
        EntityId::is_entity(id)
            && self.slots.get(id).is_some_and(|s| {
                s.state.custom_status.is_none()
                    && s.state.input.is_none()
                    && s.inbox.is_empty()
                    && s.activities.is_empty()
                    && s.locked_until.is_none_or(|t| t <= now)
            })
    }

    fn rewind(&mut self, id: &str, event: HistoryEvent, now: DateTime<Utc>) -> Applied {
        let slot = self
            .slots
            .get(id)
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        if slot.state.status != RuntimeStatus::Failed {
            return Err(StoreError::InvalidState(format!(
                "instance '{id}' is {}; only a Failed instance can be rewound",
                slot.state.status
            )));
        }
        let s = &mut self.slot_mut(id).state;
        s.status = RuntimeStatus::Running;
        s.output = None;
        s.failure = None;
        s.completed_at = None;
        s.updated_at = now;
        let exec = s.execution_id.clone();
        self.deliver(
            NewMessage {
                instance_id: id.to_string(),
                execution_id: Some(exec),
                event,
                visible_at: None,
            },
            now,
        );
        done(Effects {
            orchestrations: true,
            changed: vec![id.to_string()],
            mutated: true,
            ..Default::default()
        })
    }
}

fn mutated() -> Effects {
    Effects {
        mutated: true,
        ..Default::default()
    }
}

fn purged(deleted: Vec<String>, asked: &str) -> Effects {
    let mut changed = deleted.clone();
    if !asked.is_empty() && !changed.iter().any(|c| c == asked) {
        changed.push(asked.to_string());
    }
    Effects {
        mutated: !deleted.is_empty(),
        changed,
        deleted,
        ..Default::default()
    }
}
