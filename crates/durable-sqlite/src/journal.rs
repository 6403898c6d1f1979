//! The journal: ops are applied to the in-memory machine at once and appended to a buffer; a
//! flusher thread writes the buffer to SQLite as one row per transaction (group commit), flushes
//! the WAL when a buffered op must survive a power loss, and checkpoints instance snapshots so
//! the journal stays short.
//!
//! Durability is ordered: a transaction holds every op applied before it, so an op is never on
//! disk without the ops it depended on. A caller of a durable op waits until its op is flushed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use durable_store::machine::{Machine, Op, Slot};
use durable_store::{StoreError, StoreResult};
use parking_lot::Mutex;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// A journal entry as stored. Entries carry no sequence number: a row holds the entries up to
/// its `last_seq`, consecutively.
#[derive(Deserialize)]
pub(crate) struct Entry {
    pub now: DateTime<Utc>,
    pub op: Op,
}

/// The same, serialized from a borrowed op (outside the state lock).
#[derive(Serialize)]
pub(crate) struct EntryRef<'a> {
    pub now: DateTime<Utc>,
    pub op: &'a Op,
}

/// A change to the `history` table, in op order.
#[derive(Debug)]
pub(crate) enum HistoryChange {
    /// A turn's events, in the row numbered by the op that wrote them.
    Insert {
        id: i64,
        instance_id: String,
        events: String,
    },
    /// The rows of a history that was cleared.
    Delete { ids: Vec<i64> },
}

/// What the flusher has not written yet.
#[derive(Default)]
pub(crate) struct Pending {
    pub entries: Vec<String>,
    pub history: Vec<HistoryChange>,
    pub flush: bool,
}

/// The machine and its unwritten ops, behind one lock.
pub(crate) struct State {
    pub machine: Machine,
    /// Ops applied so far (the journal's sequence number).
    pub seq: u64,
    pub pending: Pending,
    /// Set when the flusher failed: the machine is ahead of the disk and must not be used.
    pub failed: Option<StoreError>,
    /// The `history` rows of each instance, in order. History rows are appended in op order
    /// (their id is the op's sequence number) rather than kept in an `(instance, seq)` index,
    /// whose random inserts would dirty a page per turn; this map is that index, rebuilt at open.
    pub history_rows: HashMap<String, Rows>,
}

/// One instance's history row ids. Most instances that wait have one or two rows: kept inline,
/// they cost no allocation of their own.
pub(crate) type Rows = smallvec::SmallVec<[i64; 2]>;

impl State {
    /// Records the turn written by op `seq`.
    pub fn append_history(&mut self, seq: u64, instance_id: String, events: String) {
        let seq = seq as i64;
        self.history_rows
            .entry(instance_id.clone())
            .or_default()
            .push(seq);
        self.pending.history.push(HistoryChange::Insert {
            id: seq,
            instance_id,
            events,
        });
    }

    pub fn clear_history(&mut self, instance_id: &str) {
        if let Some(ids) = self.history_rows.remove(instance_id) {
            self.pending.history.push(HistoryChange::Delete {
                ids: ids.into_vec(),
            });
        }
    }
}

pub(crate) struct Shared {
    pub state: Mutex<State>,
    /// Wakes the flusher.
    pub wake: Condvar,
    pub wake_lock: std::sync::Mutex<bool>,
    /// The highest op sequence number on disk.
    pub flushed: watch::Sender<u64>,
    pub stop: std::sync::atomic::AtomicBool,
}

impl Shared {
    pub fn signal(&self) {
        let mut woken = self.wake_lock.lock().expect("not poisoned");
        *woken = true;
        self.wake.notify_one();
    }

    /// Waits until every op up to `seq` is on disk.
    pub async fn wait_flushed(&self, seq: u64) -> StoreResult<()> {
        let mut rx = self.flushed.subscribe();
        loop {
            if *rx.borrow_and_update() >= seq {
                return Ok(());
            }
            if let Some(e) = self.state.lock().failed.clone() {
                return Err(e);
            }
            if rx.changed().await.is_err() {
                return Err(StoreError::Unavailable(
                    "the SQLite store has stopped".into(),
                ));
            }
        }
    }
}

/// The instances changed since the last checkpoint (`None` when deleted) and the key counter.
type Snapshot = (Vec<(String, Option<Slot>)>, i64);

/// How and when the flusher works.
pub(crate) struct FlushPolicy {
    /// The WAL to fsync after a transaction that holds a durable op (`synchronous=FULL`).
    pub fsync_wal: Option<PathBuf>,
    /// Checkpoint after this many ops since the last one...
    pub checkpoint_ops: u64,
    /// ...or after this long with any.
    pub checkpoint_every: Duration,
}

pub(crate) fn spawn_flusher(
    conn: Connection,
    shared: Arc<Shared>,
    policy: FlushPolicy,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("sqlite-flusher".into())
        .spawn(move || Flusher::new(conn, shared, policy).run())
}

struct Flusher {
    conn: Connection,
    shared: Arc<Shared>,
    policy: FlushPolicy,
    wal: Option<std::fs::File>,
    ops_since_checkpoint: u64,
    last_checkpoint: Instant,
}

fn sql(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("SQLite: {e}"))
}

impl Flusher {
    fn new(conn: Connection, shared: Arc<Shared>, policy: FlushPolicy) -> Self {
        Flusher {
            conn,
            shared,
            policy,
            wal: None,
            ops_since_checkpoint: 0,
            last_checkpoint: Instant::now(),
        }
    }

    fn run(mut self) {
        loop {
            {
                let mut woken = self.shared.wake_lock.lock().expect("not poisoned");
                let stopping = self.shared.stop.load(std::sync::atomic::Ordering::Acquire);
                if !*woken && !stopping {
                    woken = self
                        .shared
                        .wake
                        .wait_timeout(woken, Duration::from_millis(500))
                        .expect("not poisoned")
                        .0;
                }
                *woken = false;
            }
            let stopping = self.shared.stop.load(std::sync::atomic::Ordering::Acquire);
            let checkpoint_due = self.ops_since_checkpoint >= self.policy.checkpoint_ops
                || (self.ops_since_checkpoint > 0
                    && self.last_checkpoint.elapsed() >= self.policy.checkpoint_every)
                || (stopping && self.ops_since_checkpoint > 0);
            let (pending, seq, snapshot) = {
                let mut st = self.shared.state.lock();
                let snapshot =
                    checkpoint_due.then(|| (st.machine.take_dirty(), st.machine.next_key()));
                (std::mem::take(&mut st.pending), st.seq, snapshot)
            };
            if pending.entries.is_empty() && snapshot.is_none() {
                if stopping {
                    return;
                }
                continue;
            }
            let ops = pending.entries.len() as u64;
            let began = Instant::now();
            let written = self
                .write(&pending, seq, snapshot.as_ref())
                .and_then(|()| if pending.flush { self.fsync() } else { Ok(()) });
            let m = durable_core::metrics::global();
            m.store_commit_seconds.observe_duration(began.elapsed());
            m.store_batch_size.observe(ops as f64);
            match written {
                Ok(()) => {
                    self.ops_since_checkpoint += ops;
                    if snapshot.is_some() {
                        self.ops_since_checkpoint = 0;
                        self.last_checkpoint = Instant::now();
                    }
                    self.shared.flushed.send_replace(seq);
                }
                Err(e) => {
                    tracing::error!(error = %e, "the SQLite journal could not be written; the store stops");
                    self.shared.state.lock().failed = Some(StoreError::Unavailable(format!(
                        "the store stopped after a write failure ({e}); restart the process to recover from disk"
                    )));
                    // Wake every waiter so they see the failure.
                    self.shared.flushed.send_modify(|_| {});
                    return;
                }
            }
        }
    }

    fn write(&self, pending: &Pending, seq: u64, snapshot: Option<&Snapshot>) -> StoreResult<()> {
        let c = &self.conn;
        c.execute_batch("BEGIN IMMEDIATE").map_err(sql)?;
        let result = (|| {
            if !pending.entries.is_empty() {
                let mut text = String::with_capacity(
                    pending.entries.iter().map(|e| e.len() + 1).sum::<usize>() + 2,
                );
                text.push('[');
                text.push_str(&pending.entries.join(","));
                text.push(']');
                c.prepare_cached("INSERT INTO journal (last_seq, entries) VALUES (?1, ?2)")?
                    .execute(params![seq as i64, text])?;
            }
            for change in &pending.history {
                match change {
                    HistoryChange::Insert {
                        id,
                        instance_id,
                        events,
                    } => {
                        c.prepare_cached(
                            "INSERT INTO history (id, instance_id, events) VALUES (?1, ?2, ?3)",
                        )?
                        .execute(params![id, instance_id, events])?;
                    }
                    HistoryChange::Delete { ids } => {
                        let mut delete = c.prepare_cached("DELETE FROM history WHERE id = ?1")?;
                        for id in ids {
                            delete.execute([id])?;
                        }
                    }
                }
            }
            if let Some((slots, next_key)) = snapshot {
                for (id, slot) in slots {
                    match slot {
                        Some(slot) => {
                            let text = serde_json::to_string(slot).expect("slots serialize");
                            c.prepare_cached("INSERT OR REPLACE INTO snapshot (instance_id, slot) VALUES (?1, ?2)")?
                                .execute(params![id, text])?;
                        }
                        None => {
                            c.prepare_cached("DELETE FROM snapshot WHERE instance_id = ?1")?
                                .execute([id])?;
                        }
                    }
                }
                c.execute(
                    "UPDATE meta SET value = ?1 WHERE key = 'checkpoint_seq'",
                    [seq as i64],
                )?;
                c.execute(
                    "UPDATE meta SET value = ?1 WHERE key = 'next_key'",
                    [next_key],
                )?;
                c.execute("DELETE FROM journal WHERE last_seq <= ?1", [seq as i64])?;
            }
            Ok(())
        })();
        match result.and_then(|()| c.execute_batch("COMMIT")) {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = c.execute_batch("ROLLBACK");
                Err(sql(e))
            }
        }
    }

    /// `synchronous=FULL` for the transactions that need it: the connection runs with NORMAL (no
    /// flush per commit, but flushed checkpoints), and the WAL is flushed here.
    fn fsync(&mut self) -> StoreResult<()> {
        let Some(path) = &self.policy.fsync_wal else {
            return Ok(());
        };
        for attempt in 0..2 {
            if self.wal.is_none() {
                self.wal = Some(std::fs::File::open(path).map_err(|e| {
                    StoreError::Unavailable(format!("cannot open the WAL {}: {e}", path.display()))
                })?);
            }
            match self.wal.as_ref().map(std::fs::File::sync_data) {
                Some(Ok(())) => return Ok(()),
                Some(Err(e)) if attempt == 1 => {
                    return Err(StoreError::Unavailable(format!(
                        "cannot flush the WAL: {e}"
                    )));
                }
                _ => self.wal = None,
            }
        }
        Ok(())
    }
}

/// What opening a database rebuilds: the machine, the last op's sequence number, and where each
/// instance's history rows are.
pub(crate) type Recovered = (Machine, u64, HashMap<String, Rows>);

/// Rebuilds the machine from the last checkpoint and the journal after it.
pub(crate) fn recover(conn: &Connection) -> Result<Recovered, String> {
    let meta = |key: &str| -> Result<i64, String> {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .map_err(|e| format!("reading {key}: {e}"))
    };
    let checkpoint = meta("checkpoint_seq")? as u64;
    let next_key = meta("next_key")?;
    let mut stmt = conn
        .prepare("SELECT slot FROM snapshot")
        .map_err(|e| e.to_string())?;
    let slots: Vec<Slot> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(|e| e.to_string())?
        .map(|text| {
            let text = text.map_err(|e| e.to_string())?;
            serde_json::from_str(&text).map_err(|e| format!("a snapshot row is corrupted: {e}"))
        })
        .collect::<Result<_, String>>()?;
    let mut machine = Machine::restore(slots, next_key, true);
    let mut seq = checkpoint;
    let mut stmt = conn
        .prepare("SELECT last_seq, entries FROM journal ORDER BY id")
        .map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .map_err(|e| e.to_string())?;
    for row in rows {
        let (last, text) = row.map_err(|e| e.to_string())?;
        let entries: Vec<Entry> =
            serde_json::from_str(&text).map_err(|e| format!("a journal row is corrupted: {e}"))?;
        let first = last as u64 + 1 - entries.len() as u64;
        for (i, entry) in entries.into_iter().enumerate() {
            let entry_seq = first + i as u64;
            if entry_seq <= seq {
                continue;
            }
            // Refused ops were never journaled; an error here would mean a different build.
            if let Err(e) = machine.apply(entry.now, entry.op) {
                tracing::warn!(seq = entry_seq, error = %e, "a journaled op no longer applies");
            }
            seq = entry_seq;
        }
    }
    Ok((machine, seq, history_rows(conn)?))
}

/// Reads the history table's row ids per instance: a scan of the ids and instance ids only.
fn history_rows(conn: &Connection) -> Result<HashMap<String, Rows>, String> {
    let mut rows: HashMap<String, Rows> = HashMap::new();
    let mut stmt = conn
        .prepare("SELECT id, instance_id FROM history ORDER BY id")
        .map_err(|e| e.to_string())?;
    let found = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .map_err(|e| e.to_string())?;
    for row in found {
        let (id, instance_id) = row.map_err(|e| e.to_string())?;
        rows.entry(instance_id).or_default().push(id);
    }
    Ok(rows)
}
