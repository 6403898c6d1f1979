//! The embedded SQLite store: the default, with nothing to install.
//!
//! One writer thread owns the write connection and commits concurrent requests together (group
//! commit); reads run on a small pool of reader connections (WAL mode lets them proceed while the
//! writer commits). Durability is `synchronous=FULL` by default: every acknowledged commit has
//! been flushed to disk.

mod codec;
mod ops;
mod reads;
mod schema;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use durable_core::clock::{SharedClock, system_clock};
use durable_core::event::HistoryEvent;
use durable_core::instance::{InstanceQuery, InstanceState, NewInstance, Page, PurgeFilter};
use durable_core::work::{
    ActivityItem, ActivityLease, ActivityResult, Lease, NameFilter, NewMessage, OrchestrationItem,
    QueueStats, SendOutcome, TurnCommit,
};
use durable_store::{Notifier, Store, StoreError, StoreResult};
use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags};

use crate::writer::{Durability, Effects, Writer};

/// SQLite's `synchronous` setting: what an acknowledged commit survives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// Survives a process crash, not a power loss (the OS may still hold the data).
    Off,
    /// With WAL: survives a process crash; a power loss may lose the last commits.
    Normal,
    /// Survives a power loss: every commit is flushed to disk before it is acknowledged.
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
    /// The database file; `None` for a private in-memory database.
    pub path: Option<PathBuf>,
    pub synchronous: Synchronous,
}

impl SqliteOptions {
    pub fn file(path: impl Into<PathBuf>) -> Self {
        SqliteOptions {
            path: Some(path.into()),
            synchronous: Synchronous::Full,
        }
    }

    pub fn memory() -> Self {
        SqliteOptions {
            path: None,
            synchronous: Synchronous::Full,
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
    writer: Writer,
    readers: Option<Arc<Mutex<Vec<Connection>>>>,
    path: Option<PathBuf>,
    synchronous: Synchronous,
    clock: SharedClock,
    notifier: Arc<Notifier>,
}

fn configure(conn: &Connection, synchronous: Synchronous, file: bool) -> rusqlite::Result<()> {
    if file {
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    // FULL is provided by the writer flushing the WAL after each batch that needs it (see
    // writer.rs); the connection itself never flushes per commit.
    let mode = match synchronous {
        Synchronous::Full | Synchronous::Normal => "NORMAL",
        Synchronous::Off => "OFF",
    };
    conn.pragma_update(None, "synchronous", mode)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "cache_size", -32_000)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

impl SqliteStore {
    pub fn open(options: SqliteOptions) -> StoreResult<Self> {
        Self::open_with_clock(options, system_clock())
    }

    pub fn open_with_clock(options: SqliteOptions, clock: SharedClock) -> StoreResult<Self> {
        let open_error = |e: rusqlite::Error| {
            let place = options
                .path
                .as_ref()
                .map_or("an in-memory database".to_string(), |p| {
                    format!("'{}'", p.display())
                });
            StoreError::Unavailable(format!("cannot open SQLite database {place}: {e}"))
        };
        let conn = match &options.path {
            Some(path) => Connection::open(path),
            None => Connection::open_in_memory(),
        }
        .map_err(open_error)?;
        configure(&conn, options.synchronous, options.path.is_some()).map_err(open_error)?;
        schema::migrate(&conn).map_err(open_error)?;
        let notifier = Arc::new(Notifier::new());
        let durability = Durability {
            flush_wal: match (&options.path, options.synchronous) {
                (Some(path), Synchronous::Full) => {
                    let mut wal = path.clone().into_os_string();
                    wal.push("-wal");
                    Some(wal.into())
                }
                _ => None,
            },
        };
        let writer = Writer::spawn(conn, notifier.clone(), durability)
            .map_err(|e| StoreError::Unavailable(format!("cannot start the SQLite writer: {e}")))?;
        Ok(SqliteStore {
            writer,
            readers: options
                .path
                .as_ref()
                .map(|_| Arc::new(Mutex::new(Vec::new()))),
            path: options.path,
            synchronous: options.synchronous,
            clock,
            notifier,
        })
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn until(&self, d: Duration) -> DateTime<Utc> {
        self.now() + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
    }

    /// Runs a read on a reader connection (or the writer for in-memory databases).
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (Some(pool), Some(path)) = (&self.readers, &self.path) else {
            return self
                .writer
                .claim(move |c| f(c).map(|v| (v, Effects::default())))
                .await;
        };
        let pool = pool.clone();
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match pool.lock().pop() {
                Some(c) => c,
                None => {
                    let c = Connection::open_with_flags(
                        &path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .map_err(|e| StoreError::Unavailable(format!("SQLite reader: {e}")))?;
                    c.busy_timeout(Duration::from_secs(10))
                        .map_err(|e| StoreError::Unavailable(format!("SQLite reader: {e}")))?;
                    c
                }
            };
            let result = f(&conn);
            pool.lock().push(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Internal(format!("reader task failed: {e}")))?
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn describe(&self) -> String {
        match &self.path {
            Some(p) => format!("sqlite({}, {})", p.display(), self.synchronous.as_str()),
            None => format!("sqlite(memory, {})", self.synchronous.as_str()),
        }
    }

    fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    async fn create_instance(&self, instance: NewInstance) -> StoreResult<()> {
        let now = self.now();
        self.writer
            .write(move |c| ops::create_instance(c, instance, now))
            .await
    }

    async fn send_message(&self, message: NewMessage) -> StoreResult<SendOutcome> {
        let now = self.now();
        self.writer
            .write(move |c| ops::send_message(c, message, now))
            .await
    }

    async fn fetch_orchestration_items(
        &self,
        max: usize,
        lock_for: Duration,
        filter: &NameFilter,
    ) -> StoreResult<Vec<OrchestrationItem>> {
        let (now, until, filter) = (self.now(), self.until(lock_for), filter.clone());
        self.writer
            .claim(move |c| ops::fetch_orchestration_items(c, max, until, now, &filter))
            .await
    }

    async fn next_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let now = self.now();
        self.read(move |c| reads::next_due(c, now)).await
    }

    async fn read_history(&self, instance_id: &str) -> StoreResult<Vec<HistoryEvent>> {
        let id = instance_id.to_string();
        self.read(move |c| reads::read_history(c, &id)).await
    }

    async fn commit_turn(&self, commit: TurnCommit) -> StoreResult<()> {
        let now = self.now();
        self.writer
            .write(move |c| ops::commit_turn(c, commit, now))
            .await
    }

    async fn commit_turn_and_claim(
        &self,
        commit: TurnCommit,
        claim: usize,
        filter: &NameFilter,
        lock_for: Duration,
    ) -> StoreResult<Vec<ActivityItem>> {
        let (now, until, filter) = (self.now(), self.until(lock_for), filter.clone());
        self.writer
            .write(move |c| {
                let ((), effects) = ops::commit_turn(c, commit, now)?;
                let items = if claim == 0 {
                    Vec::new()
                } else {
                    ops::fetch_activity_items(c, claim, until, now, &filter)?.0
                };
                Ok((items, effects))
            })
            .await
    }

    async fn abandon_orchestration_item(
        &self,
        lease: &Lease,
        retry_after: Option<Duration>,
    ) -> StoreResult<()> {
        let (now, lease) = (self.now(), lease.clone());
        let retry_at = retry_after.map(|d| self.until(d));
        self.writer
            .claim(move |c| ops::abandon_orchestration_item(c, &lease, retry_at, now))
            .await
    }

    async fn renew_orchestration_lease(
        &self,
        lease: &Lease,
        lock_for: Duration,
    ) -> StoreResult<()> {
        let (until, lease) = (self.until(lock_for), lease.clone());
        self.writer
            .claim(move |c| ops::renew_orchestration_lease(c, &lease, until))
            .await
    }

    async fn fetch_activity_items(
        &self,
        max: usize,
        lock_for: Duration,
        filter: &NameFilter,
    ) -> StoreResult<Vec<ActivityItem>> {
        let (now, until, filter) = (self.now(), self.until(lock_for), filter.clone());
        self.writer
            .claim(move |c| ops::fetch_activity_items(c, max, until, now, &filter))
            .await
    }

    async fn complete_activity(
        &self,
        lease: &ActivityLease,
        result: ActivityResult,
    ) -> StoreResult<()> {
        let (now, lease) = (self.now(), lease.clone());
        self.writer
            .write(move |c| ops::complete_activity(c, &lease, result, now))
            .await
    }

    async fn abandon_activity_item(
        &self,
        lease: &ActivityLease,
        retry_after: Option<Duration>,
    ) -> StoreResult<()> {
        let visible_at = Some(retry_after.map_or_else(|| self.now(), |d| self.until(d)));
        let lease = lease.clone();
        self.writer
            .claim(move |c| ops::update_activity_lease(c, &lease, None, visible_at))
            .await
    }

    async fn renew_activity_lease(
        &self,
        lease: &ActivityLease,
        lock_for: Duration,
    ) -> StoreResult<()> {
        let (until, lease) = (self.until(lock_for), lease.clone());
        self.writer
            .claim(move |c| ops::update_activity_lease(c, &lease, Some(until), None))
            .await
    }

    async fn get_instance(&self, instance_id: &str) -> StoreResult<Option<InstanceState>> {
        let id = instance_id.to_string();
        self.read(move |c| ops::instance_by_id(c, &id)).await
    }

    async fn query_instances(&self, query: &InstanceQuery) -> StoreResult<Page<InstanceState>> {
        let query = query.clone();
        self.read(move |c| reads::query_instances(c, &query)).await
    }

    async fn purge_instance(&self, instance_id: &str, recursive: bool) -> StoreResult<u64> {
        let id = instance_id.to_string();
        self.writer
            .write(move |c| {
                let n = ops::purge(c, &id, recursive)?;
                Ok((n, Effects::default().changed(&id)))
            })
            .await
    }

    async fn purge_instances(&self, filter: &PurgeFilter) -> StoreResult<u64> {
        let filter = filter.clone();
        self.writer
            .write(move |c| {
                let mut n = 0;
                for id in reads::purge_candidates(c, &filter)? {
                    n += ops::purge(c, &id, false)?;
                }
                Ok((n, Effects::default()))
            })
            .await
    }

    async fn rewind_instance(&self, instance_id: &str, event: HistoryEvent) -> StoreResult<()> {
        let (now, id) = (self.now(), instance_id.to_string());
        self.writer
            .write(move |c| ops::rewind_instance(c, &id, event, now))
            .await
    }

    async fn queue_stats(&self) -> StoreResult<QueueStats> {
        let now = self.now();
        self.read(move |c| reads::queue_stats(c, now)).await
    }
}
