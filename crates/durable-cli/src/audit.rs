//! `durable serve --audit-log FILE`: a store decorator that appends what this process does with
//! leases to a JSON-lines file: every claim ("claimed"), every turn commit and activity result
//! before the call ("begin") and with the store's answer ("committed", "refused" for a stale
//! lease, "failed"), and every item given back ("abandoned"). Comparing the files of several
//! processes shows which process committed each turn of each instance and what each held when
//! it died; a process killed mid-call leaves a "begin" without an answer.
//!
//! Each line is written with one `write` to a file opened for appending, so a line the call
//! returned from survives `kill -9`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use durable::core::instance::{InstanceQuery, InstanceState, NewInstance, Page, PurgeFilter};
use durable::core::work::{
    ActivityItem, ActivityLease, ActivityResult, HistoryWrite, Lease, NameFilter, NewMessage,
    OrchestrationItem, QueueStats, SendOutcome, TurnCommit,
};
use durable::{HistoryEvent, SharedStore, Store, StoreError};
use durable_store::{Notifier, StoreResult};
use serde::Serialize;

/// One line of the log.
#[derive(Debug, Default, Serialize)]
struct Record<'a> {
    /// Microseconds since the Unix epoch.
    at_us: i64,
    pid: u32,
    /// `turn` or `activity`.
    op: &'static str,
    /// `claimed`, `begin`, `committed`, `refused`, `failed` or `abandoned`.
    phase: &'static str,
    /// The lease's epoch.
    epoch: u64,
    /// Absent on activity lines other than `claimed` (their lease names the activity only).
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<&'a str>,
    /// Turns: the history position the turn appends at (0 when it starts a new execution); on
    /// a claim, the history's length.
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<u32>,
    /// Turns: how many events it writes (0 for a turn that only consumes messages).
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<usize>,
    /// Turns: the instance's status after the turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    activity: Option<i64>,
}

/// The decorator.
#[derive(Debug)]
pub struct AuditStore {
    inner: SharedStore,
    file: Mutex<File>,
    pid: u32,
}

/// What the log says of a turn, taken before the commit consumes it.
struct Turn {
    instance: String,
    epoch: u64,
    position: u32,
    events: usize,
    status: String,
}

impl Turn {
    fn of(commit: &TurnCommit) -> Self {
        let (position, events) = match &commit.history {
            HistoryWrite::Append { from, events } => (*from, events.len()),
            HistoryWrite::Replace { events, .. } => (0, events.len()),
        };
        Turn {
            instance: commit.lease.instance_id.clone(),
            epoch: commit.lease.epoch,
            position,
            events,
            status: commit.instance.status.to_string(),
        }
    }
}

fn phase<T>(result: &StoreResult<T>) -> &'static str {
    match result {
        Ok(_) => "committed",
        Err(StoreError::StaleLease(_)) => "refused",
        Err(_) => "failed",
    }
}

impl AuditStore {
    pub fn open(inner: SharedStore, path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(AuditStore {
            inner,
            file: Mutex::new(file),
            pid: std::process::id(),
        })
    }

    fn write(&self, records: &[Record<'_>]) {
        if records.is_empty() {
            return;
        }
        let mut text = Vec::new();
        for record in records {
            let record = Record {
                at_us: Utc::now().timestamp_micros(),
                pid: self.pid,
                ..*record
            };
            serde_json::to_writer(&mut text, &record).expect("records serialize");
            text.push(b'\n');
        }
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = file.write_all(&text) {
            tracing::warn!(error = %e, "cannot write to the audit log");
        }
    }

    fn turn(&self, turn: &Turn, phase: &'static str) {
        self.write(&[Record {
            op: "turn",
            phase,
            epoch: turn.epoch,
            instance: Some(&turn.instance),
            position: Some(turn.position),
            events: Some(turn.events),
            status: Some(&turn.status),
            ..Default::default()
        }]);
    }

    fn lease(&self, lease: &Lease, phase: &'static str) {
        self.write(&[Record {
            op: "turn",
            phase,
            epoch: lease.epoch,
            instance: Some(&lease.instance_id),
            ..Default::default()
        }]);
    }

    fn activity(&self, lease: &ActivityLease, phase: &'static str) {
        self.write(&[Record {
            op: "activity",
            phase,
            epoch: lease.epoch,
            activity: Some(lease.activity_id),
            ..Default::default()
        }]);
    }

    fn claimed_turns(&self, items: &[OrchestrationItem]) {
        let records: Vec<Record<'_>> = items
            .iter()
            .map(|item| Record {
                op: "turn",
                phase: "claimed",
                epoch: item.lease.epoch,
                instance: Some(&item.lease.instance_id),
                position: Some(item.history_len),
                ..Default::default()
            })
            .collect();
        self.write(&records);
    }

    fn claimed_activities(&self, items: &[ActivityItem]) {
        let records: Vec<Record<'_>> = items
            .iter()
            .map(|item| Record {
                op: "activity",
                phase: "claimed",
                epoch: item.lease.epoch,
                instance: Some(&item.activity.instance_id),
                activity: Some(item.lease.activity_id),
                ..Default::default()
            })
            .collect();
        self.write(&records);
    }
}

#[async_trait]
impl Store for AuditStore {
    fn describe(&self) -> String {
        format!("{} (audited)", self.inner.describe())
    }

    fn notifier(&self) -> &Notifier {
        self.inner.notifier()
    }

    async fn commit_turn(&self, commit: TurnCommit) -> StoreResult<()> {
        let turn = Turn::of(&commit);
        self.turn(&turn, "begin");
        let result = self.inner.commit_turn(commit).await;
        self.turn(&turn, phase(&result));
        result
    }

    async fn commit_turn_and_claim(
        &self,
        commit: TurnCommit,
        claim: usize,
        filter: &NameFilter,
        lock_for: Duration,
    ) -> StoreResult<Vec<ActivityItem>> {
        let turn = Turn::of(&commit);
        self.turn(&turn, "begin");
        let result = self
            .inner
            .commit_turn_and_claim(commit, claim, filter, lock_for)
            .await;
        self.turn(&turn, phase(&result));
        if let Ok(items) = &result {
            self.claimed_activities(items);
        }
        result
    }

    async fn complete_activity(
        &self,
        lease: &ActivityLease,
        result: ActivityResult,
    ) -> StoreResult<()> {
        self.activity(lease, "begin");
        let answer = self.inner.complete_activity(lease, result).await;
        self.activity(lease, phase(&answer));
        answer
    }

    async fn fetch_orchestration_items(
        &self,
        max: usize,
        lock_for: Duration,
        filter: &NameFilter,
    ) -> StoreResult<Vec<OrchestrationItem>> {
        let items = self
            .inner
            .fetch_orchestration_items(max, lock_for, filter)
            .await?;
        self.claimed_turns(&items);
        Ok(items)
    }

    async fn fetch_activity_items(
        &self,
        max: usize,
        lock_for: Duration,
        filter: &NameFilter,
    ) -> StoreResult<Vec<ActivityItem>> {
        let items = self
            .inner
            .fetch_activity_items(max, lock_for, filter)
            .await?;
        self.claimed_activities(&items);
        Ok(items)
    }

    async fn abandon_orchestration_item(
        &self,
        lease: &Lease,
        retry_after: Option<Duration>,
    ) -> StoreResult<()> {
        let result = self
            .inner
            .abandon_orchestration_item(lease, retry_after)
            .await;
        self.lease(lease, "abandoned");
        result
    }

    async fn abandon_activity_item(
        &self,
        lease: &ActivityLease,
        retry_after: Option<Duration>,
    ) -> StoreResult<()> {
        let result = self.inner.abandon_activity_item(lease, retry_after).await;
        self.activity(lease, "abandoned");
        result
    }

    // Everything else passes through.

    async fn create_instance(&self, instance: NewInstance) -> StoreResult<()> {
        self.inner.create_instance(instance).await
    }

    async fn send_message(&self, message: NewMessage) -> StoreResult<SendOutcome> {
        self.inner.send_message(message).await
    }

    async fn next_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.inner.next_due().await
    }

    async fn read_history(&self, instance_id: &str) -> StoreResult<Vec<HistoryEvent>> {
        self.inner.read_history(instance_id).await
    }

    async fn renew_orchestration_lease(
        &self,
        lease: &Lease,
        lock_for: Duration,
    ) -> StoreResult<()> {
        self.inner.renew_orchestration_lease(lease, lock_for).await
    }

    async fn renew_activity_lease(
        &self,
        lease: &ActivityLease,
        lock_for: Duration,
    ) -> StoreResult<()> {
        self.inner.renew_activity_lease(lease, lock_for).await
    }

    async fn get_instance(&self, instance_id: &str) -> StoreResult<Option<InstanceState>> {
        self.inner.get_instance(instance_id).await
    }

    async fn query_instances(&self, query: &InstanceQuery) -> StoreResult<Page<InstanceState>> {
        self.inner.query_instances(query).await
    }

    async fn purge_instance(&self, instance_id: &str, recursive: bool) -> StoreResult<u64> {
        self.inner.purge_instance(instance_id, recursive).await
    }

    async fn purge_instances(&self, filter: &PurgeFilter) -> StoreResult<u64> {
        self.inner.purge_instances(filter).await
    }

    async fn remove_empty_entity(&self, instance_id: &str) -> StoreResult<bool> {
        self.inner.remove_empty_entity(instance_id).await
    }

    async fn rewind_instance(&self, instance_id: &str, event: HistoryEvent) -> StoreResult<()> {
        self.inner.rewind_instance(instance_id, event).await
    }

    async fn queue_stats(&self) -> StoreResult<QueueStats> {
        self.inner.queue_stats().await
    }
}
