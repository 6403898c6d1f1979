//! The single writer thread. Every write runs here, and writes that arrive while a transaction is
//! being flushed are committed together in the next one (group commit): one fsync serves many
//! turns. Each request runs inside its own savepoint, so a request that fails rolls back alone.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;

use durable_store::{Notifier, StoreError, StoreResult};
use rusqlite::Connection;
use tokio::sync::oneshot;

/// What a committed write should wake.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub orchestrations: bool,
    pub activities: bool,
    pub changed: Vec<String>,
}

impl Effects {
    pub fn orchestrations() -> Self {
        Effects {
            orchestrations: true,
            ..Default::default()
        }
    }

    pub fn changed(mut self, id: &str) -> Self {
        self.changed.push(id.to_string());
        self
    }
}

pub(crate) type Outcome<T> = StoreResult<(T, Effects)>;

trait Job: Send {
    /// Whether the job must be flushed to disk before it is acknowledged. Claims (leases,
    /// delivery counts) only need to survive a process crash, not a power loss.
    fn needs_flush(&self) -> bool;
    /// Runs inside the batch transaction; returns whether it succeeded.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Called after the batch committed (or failed to).
    fn finish(self: Box<Self>, committed: &Result<(), StoreError>, notifier: &Notifier);
}

struct Request<T, F> {
    flush: bool,
    work: Option<F>,
    outcome: Option<Outcome<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for Request<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Outcome<T> + Send + 'static,
{
    fn needs_flush(&self) -> bool {
        self.flush
    }

    fn run(&mut self, conn: &Connection) -> bool {
        let work = self.work.take().expect("a job runs once");
        let outcome = work(conn);
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn finish(self: Box<Self>, committed: &Result<(), StoreError>, notifier: &Notifier) {
        let outcome = self
            .outcome
            .unwrap_or_else(|| Err(StoreError::internal("job did not run")));
        let result = match (outcome, committed) {
            (Ok((value, effects)), Ok(())) => {
                if effects.orchestrations {
                    notifier.orchestration_work();
                }
                if effects.activities {
                    notifier.activity_work();
                }
                for id in &effects.changed {
                    notifier.instance_changed(id);
                }
                Ok(value)
            }
            (Ok(_), Err(e)) => Err(e.clone()),
            (Err(e), _) => Err(e),
        };
        let _ = self.reply.send(result);
    }
}

/// Handle to the writer thread.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Box<dyn Job>>,
}

/// The writer's durability settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Durability {
    /// `PRAGMA synchronous` for batches that must be flushed.
    pub synchronous: &'static str,
    /// Whether this database is a file in WAL mode (checkpoints are run by the writer).
    pub wal: bool,
}

/// The largest number of requests committed in one transaction.
const MAX_BATCH: usize = 512;

impl Writer {
    pub fn spawn(
        conn: Connection,
        notifier: Arc<Notifier>,
        durability: Durability,
    ) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        thread::Builder::new()
            .name("durable-sqlite-writer".into())
            .spawn(move || run(conn, rx, notifier, durability))?;
        Ok(Writer { tx })
    }

    /// Runs `work` in the next transaction and waits for it to be durable.
    pub async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Outcome<T> + Send + 'static,
    {
        self.submit(true, work).await
    }

    /// Runs a claim in the next transaction; it survives a process crash but is not flushed
    /// to disk on its own (the next flushed batch carries it).
    pub async fn claim<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Outcome<T> + Send + 'static,
    {
        self.submit(false, work).await
    }

    async fn submit<T, F>(&self, flush: bool, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Outcome<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = Box::new(Request {
            flush,
            work: Some(work),
            outcome: None,
            reply,
        });
        self.tx
            .send(job)
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?
    }
}

/// Batches between explicit WAL checkpoints.
const CHECKPOINT_EVERY: u32 = 512;

fn run(
    conn: Connection,
    rx: mpsc::Receiver<Box<dyn Job>>,
    notifier: Arc<Notifier>,
    durability: Durability,
) {
    let mut flushing = true;
    let mut since_checkpoint = 0u32;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // A batch of claims only is committed without waiting for the disk. WAL frames reach the
        // OS at once (so a process crash keeps them) and the next flushed commit syncs them too.
        let flush = batch.iter().any(|j| j.needs_flush());
        if flush != flushing {
            let mode = if flush { durability.synchronous } else { "OFF" };
            if let Err(e) = conn.pragma_update(None, "synchronous", mode) {
                tracing::error!(error = %e, "cannot switch SQLite synchronous mode");
            }
            flushing = flush;
        }
        let committed = commit_batch(&conn, &mut batch);
        since_checkpoint += 1;
        if durability.wal && since_checkpoint >= CHECKPOINT_EVERY {
            since_checkpoint = 0;
            checkpoint(&conn, durability, &mut flushing);
        }
        if let Err(e) = &committed {
            tracing::error!(error = %e, requests = batch.len(), "SQLite commit failed");
        }
        for job in batch {
            job.finish(&committed, &notifier);
        }
    }
}

/// Copies the WAL into the database with full syncs, so frames committed without a flush can
/// never be lost to a WAL reset after a power failure.
fn checkpoint(conn: &Connection, durability: Durability, flushing: &mut bool) {
    if !*flushing {
        let _ = conn.pragma_update(None, "synchronous", durability.synchronous);
        *flushing = true;
    }
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "SQLite checkpoint failed");
    }
}

fn commit_batch(conn: &Connection, batch: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    let sql = |e: rusqlite::Error| StoreError::Unavailable(format!("SQLite: {e}"));
    conn.execute_batch("BEGIN IMMEDIATE").map_err(sql)?;
    for job in batch.iter_mut() {
        let step = (|| {
            conn.execute_batch("SAVEPOINT job")?;
            if job.run(conn) {
                conn.execute_batch("RELEASE job")
            } else {
                conn.execute_batch("ROLLBACK TO job; RELEASE job")
            }
        })();
        if let Err(e) = step {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(sql(e));
        }
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(sql(e));
    }
    Ok(())
}
