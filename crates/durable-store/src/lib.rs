//! The storage contract of `durable`.
//!
//! [`Store`] is the one interface every backend implements: the in-memory [`MemoryStore`] here,
//! SQLite and PostgreSQL in their own crates. Its contract is written on the trait methods; the
//! conformance suite (feature `conformance`, macro [`store_conformance!`]) checks it, one line per
//! backend.

mod error;
mod faulty;
pub mod machine;
mod memory;
mod notify;
mod rows;

#[cfg(feature = "conformance")]
pub mod conformance;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use durable_core::event::HistoryEvent;
use durable_core::instance::{InstanceQuery, InstanceState, NewInstance, Page, PurgeFilter};
use durable_core::work::{
    ActivityItem, ActivityLease, ActivityResult, Lease, NameFilter, NewMessage, OrchestrationItem,
    QueueStats, SendOutcome, TurnCommit,
};

pub use error::StoreError;
pub use faulty::{FaultCounts, Faults, FaultyStore};
pub use memory::{MemoryStore, notify};
pub use notify::{Notifier, WorkListener};
pub use rows::{decode_history_row, encode_history_row};

pub type StoreResult<T> = Result<T, StoreError>;

/// A store shared by the runtime, clients and front ends.
pub type SharedStore = Arc<dyn Store>;

/// Durable state of one task hub: instances, their histories, inboxes, activity queue and timers.
///
/// # Shared rules
///
/// * **Time** comes from the store's injected clock. Visibility times, lease expiry and the
///   `created`/`updated`/`completed` timestamps all use it.
/// * **Ids** are minted by callers: instance ids, execution ids and event ids arrive in the
///   arguments. The store only assigns its own keys for messages and activities.
/// * **Leases** are fenced by epochs. Every claim of an instance increments its epoch; a commit,
///   renewal or abandon that carries an older epoch gets [`StoreError::StaleLease`] and changes
///   nothing. The same holds for activity leases. A lease that expired but was not taken over yet
///   is still honoured.
/// * **Ordering**: messages for one instance are delivered in the order they were committed.
/// * **Finished instances** (Completed, Failed, Terminated) receive nothing: a message sent to one
///   is dropped, and when an instance finishes its inbox is emptied.
/// * **Wake-ups**: after committing anything that creates work, the store signals its
///   [`Notifier`], so a waiting dispatcher in this process runs at once; it signals instance
///   watchers when an instance's status changes.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// A short description for logs and benchmarks, e.g. `sqlite(FULL)`.
    fn describe(&self) -> String;

    /// Wake-up signals of this store.
    fn notifier(&self) -> &Notifier;

    // ---------------------------------------------------------------- instances and messages

    /// Creates an instance. In one transaction:
    /// 1. if an instance with the id exists and `if_exists` does not allow replacing its status,
    ///    fail with [`StoreError::AlreadyExists`]; if it allows, delete the old instance's
    ///    history, inbox and activities first;
    /// 2. insert the instance as `Pending` with `created_at = updated_at = now`;
    /// 3. put its `ExecutionStarted` event ([`NewInstance::started_event`]) into its inbox for its
    ///    execution, visible at `scheduled_start_at` (or now).
    async fn create_instance(&self, instance: NewInstance) -> StoreResult<()>;

    /// Puts an event into an instance's inbox (external events, terminate, suspend, resume).
    ///
    /// Unknown instance: [`StoreError::NotFound`]. Finished instance: dropped, and the answer is
    /// [`SendOutcome::InstanceTerminal`]. A terminate sent to a `Pending` instance makes its
    /// start visible at once, so a scheduled start can be terminated before it runs.
    async fn send_message(&self, message: NewMessage) -> StoreResult<SendOutcome>;

    // ---------------------------------------------------------------- orchestration turns

    /// Claims up to `max` instances whose name `filter` matches and that have visible messages
    /// and no live lease, for `lock_for`. For each: increments the epoch, sets the lease, increments the delivery
    /// count of the visible messages, and returns them in commit order with the instance state
    /// and its current history length. A `Pending` instance whose scheduled start is in the
    /// future is not claimed.
    async fn fetch_orchestration_items(
        &self,
        max: usize,
        lock_for: Duration,
        filter: &NameFilter,
    ) -> StoreResult<Vec<OrchestrationItem>>;

    /// The earliest time at which a message or activity that is not visible yet (a durable timer,
    /// a delayed start, a retry delay) becomes visible, if any. Idle dispatchers sleep until then.
    async fn next_due(&self) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>>;

    /// The history of the instance's current execution, in order. Empty for unknown instances.
    async fn read_history(&self, instance_id: &str) -> StoreResult<Vec<HistoryEvent>>;

    /// Commits one turn atomically, or nothing at all:
    /// 1. refuse with [`StoreError::StaleLease`] unless the lease epoch is current;
    /// 2. history: `Append` requires `from` to equal the stored length (else `StaleLease`);
    ///    `Replace` deletes the old execution's history and starts the new one;
    /// 3. delete the consumed messages;
    /// 4. update the instance row (`updated_at = now`);
    /// 5. insert the activities;
    /// 6. create the children: a child whose id exists and may not be replaced gets its
    ///    `on_conflict` message delivered instead;
    /// 7. insert the messages, in order, applying the finished-instance rule to each target after
    ///    step 4 (a message to this instance is dropped if this turn finished it);
    /// 8. delete pending `TimerFired` messages of this execution for the cancelled timer ids;
    /// 9. if `terminate_children` is set, send `ExecutionTerminated` to every unfinished
    ///    instance whose parent is this one;
    /// 10. if the instance finished, empty its inbox and drop its queued activities;
    /// 11. release the lease.
    async fn commit_turn(&self, commit: TurnCommit) -> StoreResult<()>;

    /// [`Store::commit_turn`], then claims up to `claim` visible activities whose names `filter`
    /// matches for the caller, in the same round trip: an in-process hand-off that saves the
    /// activity fetch. Backends that cannot do it cheaply keep this default, which claims none.
    async fn commit_turn_and_claim(
        &self,
        commit: TurnCommit,
        claim: usize,
        filter: &NameFilter,
        lock_for: Duration,
    ) -> StoreResult<Vec<ActivityItem>> {
        let _ = (claim, filter, lock_for);
        self.commit_turn(commit).await?;
        Ok(Vec::new())
    }

    /// Gives a claimed item back: releases the lease; with `retry_after`, the instance cannot
    /// be claimed again before that delay has passed. Its messages keep their order and
    /// visibility.
    async fn abandon_orchestration_item(
        &self,
        lease: &Lease,
        retry_after: Option<Duration>,
    ) -> StoreResult<()>;

    /// Extends a live lease to `now + lock_for`.
    async fn renew_orchestration_lease(&self, lease: &Lease, lock_for: Duration)
    -> StoreResult<()>;

    // ---------------------------------------------------------------- activities

    /// Claims up to `max` visible activity invocations whose name `filter` matches and that have
    /// no live lease, in enqueue order, incrementing their epoch and delivery count.
    async fn fetch_activity_items(
        &self,
        max: usize,
        lock_for: Duration,
        filter: &NameFilter,
    ) -> StoreResult<Vec<ActivityItem>>;

    /// Records an activity's result, atomically: deletes the activity item (refusing with
    /// [`StoreError::StaleLease`] if the lease is not current) and puts `TaskCompleted` or
    /// `TaskFailed` into the owner's inbox for the activity's execution (dropped if the owner
    /// finished). Activities run at least once; a stale completion is never recorded.
    async fn complete_activity(
        &self,
        lease: &ActivityLease,
        result: ActivityResult,
    ) -> StoreResult<()>;

    /// Gives an activity back; with `retry_after` it becomes visible after that delay.
    async fn abandon_activity_item(
        &self,
        lease: &ActivityLease,
        retry_after: Option<Duration>,
    ) -> StoreResult<()>;

    /// Extends a live activity lease to `now + lock_for`.
    async fn renew_activity_lease(
        &self,
        lease: &ActivityLease,
        lock_for: Duration,
    ) -> StoreResult<()>;

    // ---------------------------------------------------------------- queries and management

    async fn get_instance(&self, instance_id: &str) -> StoreResult<Option<InstanceState>>;

    /// Instances matching every set filter, ordered by (created_at, instance_id), one page at a
    /// time. `continuation_token` is set only when more results exist. Input and output are
    /// included only with `fetch_payloads`.
    async fn query_instances(&self, query: &InstanceQuery) -> StoreResult<Page<InstanceState>>;

    /// Deletes a finished instance with its history, inbox and activities. With `recursive`,
    /// also its children (by parent link), recursively. Returns how many instances were
    /// deleted: 0 if it does not exist or is not finished.
    async fn purge_instance(&self, instance_id: &str, recursive: bool) -> StoreResult<u64>;

    /// Purges every finished instance matching the filter. Returns how many were deleted.
    async fn purge_instances(&self, filter: &PurgeFilter) -> StoreResult<u64>;

    /// Deletes an entity that holds nothing, atomically: the id is an entity id (`@name@key`) and
    /// the instance has no state (custom status), no schedule (input), no message in its inbox,
    /// visible or not, and no live lease. Returns whether it was deleted. A message sent to the id
    /// afterwards creates the entity afresh, as for any entity addressed the first time; a send
    /// racing the delete either keeps the entity or recreates it, and is never lost.
    async fn remove_empty_entity(&self, instance_id: &str) -> StoreResult<bool>;

    /// Prepares a `Failed` instance for rewind, atomically: status `Running`, output and failure
    /// cleared, and `event` (an `ExecutionRewound`) put into its inbox. Unknown:
    /// [`StoreError::NotFound`]; not `Failed`: [`StoreError::InvalidState`].
    async fn rewind_instance(&self, instance_id: &str, event: HistoryEvent) -> StoreResult<()>;

    /// Queue depths and ages, and instance counts by status.
    async fn queue_stats(&self) -> StoreResult<QueueStats>;
}
