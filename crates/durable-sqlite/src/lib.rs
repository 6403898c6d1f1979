//! The embedded SQLite store: the default, with nothing to install.
//!
//! Instances, inboxes, leases and the activity queue live in an indexed in-memory state machine
//! (shared with the in-memory store); SQLite holds the journal of the ops applied to it, the
//! histories, and periodic per-instance snapshots. A step writes one journal entry (many share a
//! row: group commit) and one history row appended in op order, instead of a dozen indexed rows.
//!
//! Durability is `synchronous=FULL` by default: a start, an event or a turn is acknowledged only
//! once flushed to disk. One process owns a database file at a time (a lock file enforces it);
//! run several processes on PostgreSQL instead.

mod checkpointer;
mod journal;
mod schema;

use std::fs::File;
use std::path::PathBuf;
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
use durable_store::machine::{Op, Output};
use durable_store::{Notifier, Store, StoreError, StoreResult};
use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use tokio::sync::watch;

use crate::journal::{EntryRef, FlushPolicy, Shared, State};

/// SQLite's `synchronous` setting: what an acknowledged commit survives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// Survives a process crash, not a power loss (the OS may still hold the data).
    Off,
    /// Survives a process crash; a power loss may lose the last commits (never corrupts).
    Normal,
    /// Survives a power loss: every acknowledged commit has been flushed to disk.
    #[default]
    Full,
}

impl Synchronous {
    pub fn as_str(self) -> &'static str {
        match self {
            Synchronous::Off => "OFF",
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

impl std::str::FromStr for Synchronous {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "off" => Ok(Synchronous::Off),
            "normal" => Ok(Synchronous::Normal),
            "full" => Ok(Synchronous::Full),
            other => Err(format!(
                "unknown sync mode '{other}' (expected full, normal or off)"
            )),
        }
    }
}

/// Where and how to open the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteOptions {
    /// The database file; `None` for a throwaway database (a temporary file, never flushed).
    pub path: Option<PathBuf>,
    pub synchronous: Synchronous,
    /// Journal entries between checkpoints (snapshots of the changed instances). Fewer make
    /// restarts faster, more make checkpoints rarer.
    pub checkpoint_ops: u64,
}

impl SqliteOptions {
    pub fn file(path: impl Into<PathBuf>) -> Self {
        SqliteOptions {
            path: Some(path.into()),
            synchronous: Synchronous::Full,
            checkpoint_ops: 20_000,
        }
    }

    pub fn memory() -> Self {
        SqliteOptions {
            path: None,
            synchronous: Synchronous::Off,
            checkpoint_ops: 20_000,
        }
    }

    pub fn with_synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// Parses `sqlite::memory:`, `sqlite://relative/or/absolute/path.db` or `sqlite:path.db`,
    /// with an optional `?sync=full|normal|off`.
    pub fn from_url(url: &str) -> Result<Self, String> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut options = if base == "sqlite::memory:" || base == "sqlite://:memory:" {
            SqliteOptions::memory()
        } else if let Some(path) = base
            .strip_prefix("sqlite://")
            .or_else(|| base.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(format!("'{url}' names no database file"));
            }
            SqliteOptions::file(path)
        } else {
            return Err(format!(
                "'{url}' is not a SQLite URL (expected sqlite://FILE or sqlite::memory:)"
            ));
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("sync", value)) => options.synchronous = value.parse()?,
                _ => return Err(format!("unknown SQLite option '{pair}' (known: sync)")),
            }
        }
        Ok(options)
    }
}

/// The SQLite [`Store`].
#[derive(Debug)]
pub struct SqliteStore {
    shared: Arc<Shared>,
    path: PathBuf,
    readers: Arc<Mutex<Vec<Connection>>>,
    description: String,
    clock: SharedClock,
    notifier: Notifier,
    flusher: Option<std::thread::JoinHandle<()>>,
    /// Stopped after the flusher, which may still write on its way out.
    checkpointer: Option<checkpointer::Checkpointer>,
    /// Held for the store's lifetime: one process per database.
    _lock: File,
    /// Keeps a throwaway database's directory alive.
    _temp: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared")
    }
}

fn open_error(place: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("cannot open SQLite database {place}: {e}"))
}

impl SqliteStore {
    pub fn open(options: SqliteOptions) -> StoreResult<Self> {
        Self::open_with_clock(options, system_clock())
    }

    pub fn open_with_clock(options: SqliteOptions, clock: SharedClock) -> StoreResult<Self> {
        let (path, temp) = match &options.path {
            Some(p) => (p.clone(), None),
            None => {
                let dir = tempfile::tempdir().map_err(|e| open_error("(throwaway)", e))?;
                (dir.path().join("durable.db"), Some(dir))
            }
        };
        let place = format!("'{}'", path.display());
        let lock = lock_file(&path)?;
        let conn = Connection::open(&path).map_err(|e| open_error(&place, e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| open_error(&place, e))?;
        let mode = if options.synchronous == Synchronous::Off {
            "OFF"
        } else {
            "NORMAL"
        };
        conn.pragma_update(None, "synchronous", mode)
            .map_err(|e| open_error(&place, e))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|e| open_error(&place, e))?;
        conn.set_prepared_statement_cache_capacity(32);
        // The checkpointer thread copies the WAL back; this is only the bound if it falls behind.
        conn.pragma_update(None, "wal_autocheckpoint", 16_384)
            .map_err(|e| open_error(&place, e))?;
        // Checkpoints upsert snapshot rows all over the instance index: keep its hot pages in
        // memory rather than reading them back from the OS. 8 MiB keeps the step rate of 32 MiB
        // (measured), and every MiB here is resident for as long as the server runs.
        conn.pragma_update(None, "cache_size", -8_192)
            .map_err(|e| open_error(&place, e))?;
        schema::migrate(&conn).map_err(|e| open_error(&place, e))?;
        let (machine, seq, history_rows) =
            journal::recover(&conn).map_err(|e| open_error(&place, e))?;
        let recovered = machine.len();
        let (flushed, _) = watch::channel(seq);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                machine,
                seq,
                pending: Default::default(),
                failed: None,
                history_rows,
            }),
            wake: std::sync::Condvar::new(),
            wake_lock: std::sync::Mutex::new(false),
            flushed,
            stop: std::sync::atomic::AtomicBool::new(false),
        });
        let fsync_wal = (options.synchronous == Synchronous::Full).then(|| {
            let mut wal = path.clone().into_os_string();
            wal.push("-wal");
            PathBuf::from(wal)
        });
        let policy = FlushPolicy {
            fsync_wal,
            checkpoint_ops: options.checkpoint_ops.max(1),
            checkpoint_every: Duration::from_secs(5),
        };
        let flusher = journal::spawn_flusher(conn, shared.clone(), policy)
            .map_err(|e| open_error(&place, format!("cannot start the flusher: {e}")))?;
        let checkpointer =
            checkpointer::Checkpointer::spawn(path.clone(), shared.flushed.subscribe())
                .map_err(|e| open_error(&place, format!("cannot start the checkpointer: {e}")))?;
        let description = match &options.path {
            Some(p) => format!("sqlite({}, {})", p.display(), options.synchronous.as_str()),
            None => "sqlite(memory)".to_string(),
        };
        tracing::debug!(store = %description, instances = recovered, seq, "SQLite store opened");
        Ok(SqliteStore {
            shared,
            path,
            readers: Arc::new(Mutex::new(Vec::new())),
            description,
            clock,
            notifier: Notifier::new(),
            flusher: Some(flusher),
            checkpointer: Some(checkpointer),
            _lock: lock,
            _temp: temp,
        })
    }

    fn until(&self, now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
        now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
    }

    /// Applies an op: at once in memory, and on disk before it is acknowledged. First turn claims
    /// do not wait for the disk: losing one in a crash only means the turn is delivered again.
    async fn run(&self, mut op: Op) -> StoreResult<Output> {
        let now = self.clock.now();
        let history = take_history(&mut op);
        let text = serde_json::to_string(&EntryRef { now, op: &op })
            .map_err(|e| StoreError::Internal(format!("an op did not serialize: {e}")))?;
        let mut durable = !op.is_claim();
        let (output, effects, seq) = {
            let mut st = self.shared.state.lock();
            if let Some(e) = &st.failed {
                return Err(e.clone());
            }
            let (output, effects) = st.machine.apply(now, op)?;
            durable |= redelivers(&output);
            if effects.mutated {
                st.seq += 1;
                let seq = st.seq;
                st.pending.entries.push(text);
                for id in &effects.deleted {
                    st.clear_history(id);
                }
                if let Some(turn) = history {
                    if turn.replace {
                        st.clear_history(&turn.instance_id);
                    }
                    if let Some(events) = turn.events {
                        st.append_history(seq, turn.instance_id, events);
                    }
                }
                st.pending.flush |= durable;
            }
            (output, effects, st.seq)
        };
        if effects.mutated {
            self.shared.signal();
        }
        if durable {
            self.shared.wait_flushed(seq).await?;
        }
        durable_store::notify(&self.notifier, &effects);
        Ok(output)
    }

    async fn read<T>(
        &self,
        f: impl FnOnce(&durable_store::machine::Machine) -> T,
    ) -> StoreResult<T> {
        let (value, seq) = {
            let st = self.shared.state.lock();
            (f(&st.machine), st.seq)
        };
        self.shared.wait_flushed(seq).await?;
        Ok(value)
    }
}

impl Drop for SqliteStore {
    /// Writes what is left, checkpoints, and only then lets go of the database.
    fn drop(&mut self) {
        self.shared
            .stop
            .store(true, std::sync::atomic::Ordering::Release);
        self.shared.signal();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
        drop(self.checkpointer.take());
    }
}

/// One process per database: an advisory lock on `<db>.lock`, released when the process ends,
/// however it ends.
fn lock_file(path: &std::path::Path) -> StoreResult<File> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| open_error(&format!("'{}'", path.display()), e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Unavailable(format!(
            "the SQLite database '{}' is in use by another durable process; one process owns a \
             SQLite database at a time (use PostgreSQL to run several)",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(open_error(&format!("'{}'", path.display()), e))
        }
    }
}

/// Whether a claim hands an item out again. Such a claim is flushed before it is answered: an
/// item that crashes its process must not lose the delivery counts its claims raise, or it
/// would never be found poison. First claims skip the flush, keeping it off every step's path.
fn redelivers(output: &Output) -> bool {
    match output {
        Output::Orchestrations(items) => items.iter().any(|i| i.delivery_count() > 1),
        Output::Activities(items) => items.iter().any(|a| a.delivery_count > 1),
        _ => false,
    }
}

/// What a commit does to its instance's history.
struct TurnHistory {
    instance_id: String,
    /// The history is replaced rather than appended to.
    replace: bool,
    /// The events to add, as JSON; `None` when there are none.
    events: Option<String>,
}

/// Moves a commit's history events out of the op: the journal does not repeat them, they go to
/// the history table.
fn take_history(op: &mut Op) -> Option<TurnHistory> {
    let Op::Commit { commit, .. } = op else {
        return None;
    };
    let (replace, events) = match &mut commit.history {
        HistoryWrite::Append { events, .. } => (false, std::mem::take(events)),
        HistoryWrite::Replace { events, .. } => (true, std::mem::take(events)),
    };
    Some(TurnHistory {
        instance_id: commit.lease.instance_id.clone(),
        replace,
        events: (!events.is_empty()).then(|| durable_store::encode_history_row(&events)),
    })
}

fn unexpected(output: Output) -> StoreError {
    StoreError::Internal(format!("unexpected machine output {output:?}"))
}

#[async_trait]
impl Store for SqliteStore {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    async fn create_instance(&self, instance: NewInstance) -> StoreResult<()> {
        self.run(Op::Create(instance)).await.map(|_| ())
    }

    async fn send_message(&self, message: NewMessage) -> StoreResult<SendOutcome> {
        match self.run(Op::Send(message)).await? {
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
        let until = self.until(self.clock.now(), lock_for);
        match self
            .run(Op::FetchOrchestrations {
                max,
                until,
                filter: filter.clone(),
            })
            .await?
        {
            Output::Orchestrations(items) => Ok(items),
            other => Err(unexpected(other)),
        }
    }

    async fn next_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let now = self.clock.now();
        Ok(self.shared.state.lock().machine.next_due(now))
    }

    async fn read_history(&self, instance_id: &str) -> StoreResult<Vec<HistoryEvent>> {
        let (ids, seq) = {
            let st = self.shared.state.lock();
            let ids = st.history_rows.get(instance_id).map(|r| r.to_vec());
            (ids.unwrap_or_default(), st.seq)
        };
        self.shared.wait_flushed(seq).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let (pool, path) = (self.readers.clone(), self.path.clone());
        tokio::task::spawn_blocking(move || {
            let reader_error =
                |e: rusqlite::Error| StoreError::Unavailable(format!("SQLite reader: {e}"));
            let conn = match pool.lock().pop() {
                Some(c) => c,
                None => {
                    let c = Connection::open_with_flags(
                        &path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .map_err(reader_error)?;
                    c.busy_timeout(Duration::from_secs(10))
                        .map_err(reader_error)?;
                    c
                }
            };
            // A row can only be missing if a purge deleted it after the ids were read.
            let chunks: rusqlite::Result<Vec<String>> = conn
                .prepare_cached("SELECT events FROM history WHERE id = ?1")
                .and_then(|mut s| {
                    let mut chunks = Vec::with_capacity(ids.len());
                    for id in &ids {
                        chunks.extend(s.query_row([id], |r| r.get(0)).optional()?);
                    }
                    Ok(chunks)
                });
            pool.lock().push(conn);
            let mut events = Vec::new();
            for chunk in chunks.map_err(reader_error)? {
                events.append(&mut durable_store::decode_history_row(&chunk)?);
            }
            Ok(events)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("reader task failed: {e}")))?
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
        let history_len = match &commit.history {
            HistoryWrite::Append { from, events } => from + events.len() as u32,
            HistoryWrite::Replace { events, .. } => events.len() as u32,
        };
        let until = self.until(self.clock.now(), lock_for);
        let op = Op::Commit {
            commit,
            history_len,
            claim,
            filter: filter.clone(),
            until,
        };
        match self.run(op).await? {
            Output::Activities(items) => Ok(items),
            other => Err(unexpected(other)),
        }
    }

    async fn abandon_orchestration_item(
        &self,
        lease: &Lease,
        retry_after: Option<Duration>,
    ) -> StoreResult<()> {
        let now = self.clock.now();
        let retry_at = retry_after.map(|d| self.until(now, d));
        self.run(Op::AbandonOrchestration {
            lease: lease.clone(),
            retry_at,
        })
        .await
        .map(|_| ())
    }

    async fn renew_orchestration_lease(
        &self,
        lease: &Lease,
        lock_for: Duration,
    ) -> StoreResult<()> {
        let until = self.until(self.clock.now(), lock_for);
        self.run(Op::RenewOrchestration {
            lease: lease.clone(),
            until,
        })
        .await
        .map(|_| ())
    }

    async fn fetch_activity_items(
        &self,
        max: usize,
        lock_for: Duration,
        filter: &NameFilter,
    ) -> StoreResult<Vec<ActivityItem>> {
        let until = self.until(self.clock.now(), lock_for);
        match self
            .run(Op::FetchActivities {
                max,
                until,
                filter: filter.clone(),
            })
            .await?
        {
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
        .await
        .map(|_| ())
    }

    async fn abandon_activity_item(
        &self,
        lease: &ActivityLease,
        retry_after: Option<Duration>,
    ) -> StoreResult<()> {
        let now = self.clock.now();
        let visible_at = retry_after.map_or(now, |d| self.until(now, d));
        self.run(Op::AbandonActivity {
            lease: lease.clone(),
            visible_at,
        })
        .await
        .map(|_| ())
    }

    async fn renew_activity_lease(
        &self,
        lease: &ActivityLease,
        lock_for: Duration,
    ) -> StoreResult<()> {
        let until = self.until(self.clock.now(), lock_for);
        self.run(Op::RenewActivity {
            lease: lease.clone(),
            until,
        })
        .await
        .map(|_| ())
    }

    async fn get_instance(&self, instance_id: &str) -> StoreResult<Option<InstanceState>> {
        self.read(|m| m.get(instance_id)).await
    }

    async fn query_instances(&self, query: &InstanceQuery) -> StoreResult<Page<InstanceState>> {
        self.read(|m| m.query(query)).await
    }

    async fn purge_instance(&self, instance_id: &str, recursive: bool) -> StoreResult<u64> {
        let op = Op::Purge {
            instance_id: instance_id.to_string(),
            recursive,
        };
        match self.run(op).await? {
            Output::Count(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    async fn purge_instances(&self, filter: &PurgeFilter) -> StoreResult<u64> {
        match self.run(Op::PurgeMany(filter.clone())).await? {
            Output::Count(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    async fn remove_empty_entity(&self, instance_id: &str) -> StoreResult<bool> {
        let op = Op::RemoveEmptyEntity {
            instance_id: instance_id.to_string(),
        };
        match self.run(op).await? {
            Output::Count(n) => Ok(n > 0),
            other => Err(unexpected(other)),
        }
    }

    async fn rewind_instance(&self, instance_id: &str, event: HistoryEvent) -> StoreResult<()> {
        self.run(Op::Rewind {
            instance_id: instance_id.to_string(),
            event,
        })
        .await
        .map(|_| ())
    }

    async fn queue_stats(&self) -> StoreResult<QueueStats> {
        let now = self.clock.now();
        self.read(|m| m.stats(now)).await
    }
}
