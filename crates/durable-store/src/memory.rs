//! The in-memory store: the state [`Machine`] behind a mutex, with histories kept beside it.
//! Nothing survives the process; for tests and throwaway runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use durable_core::clock::{SharedClock, system_clock};
use durable_core::event::HistoryEvent;
use durable_core::instance::{InstanceQuery, InstanceState, NewInstance, Page, PurgeFilter};
use durable_core::work::{
    ActivityItem, ActivityLease, ActivityResult, HistoryWrite, Lease, NameFilter, NewMessage,
    OrchestrationItem, QueueStats, SendOutcome, TurnCommit,
};
use parking_lot::Mutex;

use crate::machine::{Effects, Machine, Op, Output};
use crate::{Notifier, Store, StoreError, StoreResult};

#[derive(Debug, Default)]
struct Inner {
    machine: Machine,
    histories: HashMap<String, Vec<HistoryEvent>>,
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

/// Wakes whoever an applied op concerns.
pub fn notify(notifier: &Notifier, effects: &Effects) {
    if effects.orchestrations {
        notifier.orchestration_work();
    }
    if effects.activities {
        notifier.activity_work();
    }
    for id in &effects.changed {
        notifier.instance_changed(id);
    }
}

/// The history length after a commit.
pub(crate) fn history_len_after(commit: &TurnCommit) -> u32 {
    match &commit.history {
        HistoryWrite::Append { from, events } => from + events.len() as u32,
        HistoryWrite::Replace { events, .. } => events.len() as u32,
    }
}

pub(crate) fn until(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
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

    fn run(&self, op: Op) -> StoreResult<Output> {
        let now = self.clock.now();
        let mut inner = self.inner.lock();
        let history = match &op {
            Op::Commit { commit, .. } => {
                Some((commit.lease.instance_id.clone(), commit.history.clone()))
            }
            _ => None,
        };
        let (output, effects) = inner.machine.apply(now, op)?;
        for id in &effects.deleted {
            inner.histories.remove(id);
        }
        if let Some((id, write)) = history {
            let h = inner.histories.entry(id).or_default();
            match write {
                HistoryWrite::Append { events, .. } => h.extend(events),
                HistoryWrite::Replace { events, .. } => *h = events,
            }
        }
        drop(inner);
        notify(&self.notifier, &effects);
        Ok(output)
    }
}

fn unexpected(output: Output) -> StoreError {
    StoreError::Internal(format!("unexpected machine output {output:?}"))
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
        self.run(Op::Create(instance)).map(|_| ())
    }

    async fn send_message(&self, message: NewMessage) -> StoreResult<SendOutcome> {
        match self.run(Op::Send(message))? {
            Output::Sent(outcome) => Ok(outcome),
            other => Err(unexpected(other)),
        }
    }

    async fn fetch_orchestration_items(
        &self,
        max: usize,
        lock_for: Duration,
        filter: &NameFilter,
    ) -> StoreResult<Vec<OrchestrationItem>> {
        let until = until(self.clock.now(), lock_for);
        match self.run(Op::FetchOrchestrations {
            max,
            until,
            filter: filter.clone(),
        })? {
            Output::Orchestrations(items) => Ok(items),
            other => Err(unexpected(other)),
        }
    }

    async fn next_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        Ok(self.inner.lock().machine.next_due(self.clock.now()))
    }

    async fn read_history(&self, instance_id: &str) -> StoreResult<Vec<HistoryEvent>> {
        Ok(self
            .inner
            .lock()
            .histories
            .get(instance_id)
            .cloned()
            .unwrap_or_default())
    }

    async fn commit_turn(&self, commit: TurnCommit) -> StoreResult<()> {
        self.commit_turn_and_claim(commit, 0, &NameFilter::All, Duration::ZERO)
            .await
            .map(|_| ())
    }

    async fn commit_turn_and_claim(
        &self,
        commit: TurnCommit,
        claim: usize,
        filter: &NameFilter,
        lock_for: Duration,
    ) -> StoreResult<Vec<ActivityItem>> {
        let history_len = history_len_after(&commit);
        let until = until(self.clock.now(), lock_for);
        let op = Op::Commit {
            commit,
            history_len,
            claim,
            filter: filter.clone(),
            until,
        };
        match self.run(op)? {
            Output::Activities(items) => Ok(items),
            other => Err(unexpected(other)),
        }
    }

    async fn abandon_orchestration_item(
        &self,
        lease: &Lease,
        retry_after: Option<Duration>,
    ) -> StoreResult<()> {
        let retry_at = retry_after.map(|d| until(self.clock.now(), d));
        self.run(Op::AbandonOrchestration {
            lease: lease.clone(),
            retry_at,
        })
        .map(|_| ())
    }

    async fn renew_orchestration_lease(
        &self,
        lease: &Lease,
        lock_for: Duration,
    ) -> StoreResult<()> {
        let until = until(self.clock.now(), lock_for);
        self.run(Op::RenewOrchestration {
            lease: lease.clone(),
            until,
        })
        .map(|_| ())
    }

    async fn fetch_activity_items(
        &self,
        max: usize,
        lock_for: Duration,
        filter: &NameFilter,
    ) -> StoreResult<Vec<ActivityItem>> {
        let until = until(self.clock.now(), lock_for);
        match self.run(Op::FetchActivities {
            max,
            until,
            filter: filter.clone(),
        })? {
            Output::Activities(items) => Ok(items),
            other => Err(unexpected(other)),
        }
    }

    async fn complete_activity(
        &self,
        lease: &ActivityLease,
        result: ActivityResult,
    ) -> StoreResult<()> {
        self.run(Op::CompleteActivity {
            lease: lease.clone(),
            result,
        })
        .map(|_| ())
    }

    async fn abandon_activity_item(
        &self,
        lease: &ActivityLease,
        retry_after: Option<Duration>,
    ) -> StoreResult<()> {
        let now = self.clock.now();
        let visible_at = retry_after.map_or(now, |d| until(now, d));
        self.run(Op::AbandonActivity {
            lease: lease.clone(),
            visible_at,
        })
        .map(|_| ())
    }

    async fn renew_activity_lease(
        &self,
        lease: &ActivityLease,
        lock_for: Duration,
    ) -> StoreResult<()> {
        let until = until(self.clock.now(), lock_for);
        self.run(Op::RenewActivity {
            lease: lease.clone(),
            until,
        })
        .map(|_| ())
    }

    async fn get_instance(&self, instance_id: &str) -> StoreResult<Option<InstanceState>> {
        Ok(self.inner.lock().machine.get(instance_id))
    }

    async fn query_instances(&self, query: &InstanceQuery) -> StoreResult<Page<InstanceState>> {
        Ok(self.inner.lock().machine.query(query))
    }

    async fn purge_instance(&self, instance_id: &str, recursive: bool) -> StoreResult<u64> {
        let op = Op::Purge {
            instance_id: instance_id.to_string(),
            recursive,
        };
        match self.run(op)? {
            Output::Count(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    async fn purge_instances(&self, filter: &PurgeFilter) -> StoreResult<u64> {
        match self.run(Op::PurgeMany(filter.clone()))? {
            Output::Count(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    async fn remove_empty_entity(&self, instance_id: &str) -> StoreResult<bool> {
        let op = Op::RemoveEmptyEntity {
            instance_id: instance_id.to_string(),
        };
        match self.run(op)? {
            Output::Count(n) => Ok(n > 0),
            other => Err(unexpected(other)),
        }
    }

    async fn rewind_instance(&self, instance_id: &str, event: HistoryEvent) -> StoreResult<()> {
        self.run(Op::Rewind {
            instance_id: instance_id.to_string(),
            event,
        })
        .map(|_| ())
    }

    async fn queue_stats(&self) -> StoreResult<QueueStats> {
        Ok(self.inner.lock().machine.stats(self.clock.now()))
    }
}
