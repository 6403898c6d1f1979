//! A decorator that injects faults into any store: calls that fail, commits that succeed but are
//! reported as failed (the hardest case: the caller must not apply them twice), and slow calls.
//! Seeded, so a failing run can be replayed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use durable_core::event::HistoryEvent;
use durable_core::instance::{InstanceQuery, InstanceState, NewInstance, Page, PurgeFilter};
use durable_core::work::{
    ActivityItem, ActivityLease, ActivityResult, Lease, NameFilter, NewMessage, OrchestrationItem,
    QueueStats, SendOutcome, TurnCommit,
};
use parking_lot::Mutex;

use crate::{Notifier, SharedStore, Store, StoreError, StoreResult};

/// Fault rates (0.0 to 1.0) per call.
#[derive(Clone, Debug)]
pub struct Faults {
    pub seed: u64,
    /// The call fails before reaching the store.
    pub fail: f64,
    /// The call reaches the store and succeeds, but the caller is told it failed.
    pub lost_ack: f64,
    /// The call is delayed by `slow_for` first.
    pub slow: f64,
    pub slow_for: Duration,
}

/// How many faults were injected, by kind.
#[derive(Debug, Default)]
pub struct FaultCounts {
    pub failed: AtomicU64,
    pub lost_acks: AtomicU64,
    pub slowed: AtomicU64,
}

#[derive(Debug)]
pub struct FaultyStore {
    inner: SharedStore,
    faults: Faults,
    rng: Mutex<u64>,
    pub counts: Arc<FaultCounts>,
}

enum Fate {
    Run,
    Fail,
    LoseAck,
}

impl FaultyStore {
    pub fn new(inner: SharedStore, faults: Faults) -> Self {
        FaultyStore {
            inner,
            rng: Mutex::new(faults.seed.max(1)),
            faults,
            counts: Arc::new(FaultCounts::default()),
        }
    }

    /// xorshift64*: small, seedable, good enough to pick faults.
    fn roll(&self) -> f64 {
        let mut x = self.rng.lock();
        *x ^= *x >> 12;
        *x ^= *x << 25;
        *x ^= *x >> 27;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    async fn fate(&self, mutating: bool) -> Fate {
        if self.roll() < self.faults.slow {
            self.counts.slowed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(self.faults.slow_for).await;
        }
        let r = self.roll();
        if r < self.faults.fail {
            self.counts.failed.fetch_add(1, Ordering::Relaxed);
            Fate::Fail
        } else if mutating && r < self.faults.fail + self.faults.lost_ack {
            self.counts.lost_acks.fetch_add(1, Ordering::Relaxed);
            Fate::LoseAck
        } else {
            Fate::Run
        }
    }
}

fn injected() -> StoreError {
    StoreError::Unavailable("injected fault".into())
}

/// Runs `call` under the decorator's faults.
macro_rules! faulty {
    ($self:ident, $mutating:expr, $call:expr) => {
        match $self.fate($mutating).await {
            Fate::Fail => Err(injected()),
            Fate::Run => $call.await,
            Fate::LoseAck => $call.await.and_then(|_| Err(injected())),
        }
    };
}

#[async_trait]
impl Store for FaultyStore {
    fn describe(&self) -> String {
        format!("faulty({})", self.inner.describe())
    }

    fn notifier(&self) -> &Notifier {
        self.inner.notifier()
    }

    async fn create_instance(&self, instance: NewInstance) -> StoreResult<()> {
        faulty!(self, true, self.inner.create_instance(instance))
    }

    async fn send_message(&self, message: NewMessage) -> StoreResult<SendOutcome> {
        faulty!(self, true, self.inner.send_message(message))
    }

    async fn fetch_orchestration_items(
        &self,
        max: usize,
        lock_for: Duration,
        filter: &NameFilter,
    ) -> StoreResult<Vec<OrchestrationItem>> {
        faulty!(
            self,
            true,
            self.inner.fetch_orchestration_items(max, lock_for, filter)
        )
    }

    async fn next_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        faulty!(self, false, self.inner.next_due())
    }

    async fn read_history(&self, instance_id: &str) -> StoreResult<Vec<HistoryEvent>> {
        faulty!(self, false, self.inner.read_history(instance_id))
    }

    async fn commit_turn(&self, commit: TurnCommit) -> StoreResult<()> {
        faulty!(self, true, self.inner.commit_turn(commit))
    }

    async fn commit_turn_and_claim(
        &self,
        commit: TurnCommit,
        claim: usize,
        filter: &NameFilter,
        lock_for: Duration,
    ) -> StoreResult<Vec<ActivityItem>> {
        faulty!(
            self,
            true,
            self.inner
                .commit_turn_and_claim(commit, claim, filter, lock_for)
        )
    }

    async fn abandon_orchestration_item(
        &self,
        lease: &Lease,
        retry_after: Option<Duration>,
    ) -> StoreResult<()> {
        faulty!(
            self,
            true,
            self.inner.abandon_orchestration_item(lease, retry_after)
        )
    }

    async fn renew_orchestration_lease(
        &self,
        lease: &Lease,
        lock_for: Duration,
    ) -> StoreResult<()> {
        faulty!(
            self,
            true,
            self.inner.renew_orchestration_lease(lease, lock_for)
        )
    }

    async fn fetch_activity_items(
        &self,
        max: usize,
        lock_for: Duration,
        filter: &NameFilter,
    ) -> StoreResult<Vec<ActivityItem>> {
        faulty!(
            self,
            true,
            self.inner.fetch_activity_items(max, lock_for, filter)
        )
    }

    async fn complete_activity(
        &self,
        lease: &ActivityLease,
        result: ActivityResult,
    ) -> StoreResult<()> {
        faulty!(self, true, self.inner.complete_activity(lease, result))
    }

    async fn abandon_activity_item(
        &self,
        lease: &ActivityLease,
        retry_after: Option<Duration>,
    ) -> StoreResult<()> {
        faulty!(
            self,
            true,
            self.inner.abandon_activity_item(lease, retry_after)
        )
    }

    async fn renew_activity_lease(
        &self,
        lease: &ActivityLease,
        lock_for: Duration,
    ) -> StoreResult<()> {
        faulty!(self, true, self.inner.renew_activity_lease(lease, lock_for))
    }

    async fn get_instance(&self, instance_id: &str) -> StoreResult<Option<InstanceState>> {
        faulty!(self, false, self.inner.get_instance(instance_id))
    }

    async fn query_instances(&self, query: &InstanceQuery) -> StoreResult<Page<InstanceState>> {
        faulty!(self, false, self.inner.query_instances(query))
    }

    async fn purge_instance(&self, instance_id: &str, recursive: bool) -> StoreResult<u64> {
        faulty!(
            self,
            true,
            self.inner.purge_instance(instance_id, recursive)
        )
    }

    async fn purge_instances(&self, filter: &PurgeFilter) -> StoreResult<u64> {
        faulty!(self, true, self.inner.purge_instances(filter))
    }

    async fn remove_empty_entity(&self, instance_id: &str) -> StoreResult<bool> {
        faulty!(self, true, self.inner.remove_empty_entity(instance_id))
    }

    async fn rewind_instance(&self, instance_id: &str, event: HistoryEvent) -> StoreResult<()> {
        faulty!(self, true, self.inner.rewind_instance(instance_id, event))
    }

    async fn queue_stats(&self) -> StoreResult<QueueStats> {
        faulty!(self, false, self.inner.queue_stats())
    }
}
