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

/// How a job went.
enum Verdict {
    Done,
    /// Refused before writing anything (stale lease, unknown instance, ...).
    Rejected,
    /// Failed part-way; the transaction must be rolled back.
    Broken(StoreError),
}

trait Job: Send {
    /// Whether the job must be flushed to disk before it is acknowledged. Claims (leases,
    /// delivery counts) only need to survive a process crash, not a power loss.
    fn needs_flush(&self) -> bool;
    /// Runs inside the batch transaction.
    fn run(&mut self, conn: &Connection) -> Verdict;
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

    fn run(&mut self, conn: &Connection) -> Verdict {
        let work = self.work.take().expect("a job runs once");
        let outcome = work(conn);
        let verdict = match &outcome {
            Ok(_) => Verdict::Done,
            Err(StoreError::Internal(_) | StoreError::Unavailable(_)) => {
                Verdict::Broken(outcome.as_ref().err().cloned().expect("an error"))
            }
            Err(_) => Verdict::Rejected,
        };
        self.outcome = Some(outcome);
        verdict
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
#[derive(Debug, Clone)]
pub(crate) struct Durability {
    /// The WAL file to flush after batches that must survive a power loss (`synchronous=FULL`
    /// on a file); `None` when nothing is flushed explicitly.
    pub flush_wal: Option<std::path::PathBuf>,
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

fn run(
    conn: Connection,
    rx: mpsc::Receiver<Box<dyn Job>>,
    notifier: Arc<Notifier>,
    durability: Durability,
) {
    let mut wal = WalSync::new(durability);
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let began = std::time::Instant::now();
        let mut committed = commit_batch(&conn, &mut batch);
        // A batch of claims only is not flushed: its WAL frames reach the OS at once (a process
        // crash keeps them) and the next flushed batch makes them durable too.
        if committed.is_ok() && batch.iter().any(|j| j.needs_flush()) {
            committed = wal.flush();
        }
        let m = durable_core::metrics::global();
        m.store_commit_seconds.observe_duration(began.elapsed());
        m.store_batch_size.observe(batch.len() as f64);
        if let Err(e) = &committed {
            tracing::error!(error = %e, requests = batch.len(), "SQLite commit failed");
        }
        for job in batch {
            job.finish(&committed, &notifier);
        }
    }
}

/// Flushes the WAL file to disk. The connection runs with `synchronous=NORMAL` (no flush per
/// commit; checkpoints still flush), and batches that must survive a power loss are flushed here,
/// which gives them the guarantee of `synchronous=FULL` without switching modes per batch.
struct WalSync {
    path: Option<std::path::PathBuf>,
    file: Option<std::fs::File>,
}

impl WalSync {
    fn new(durability: Durability) -> Self {
        WalSync {
            path: durability.flush_wal,
            file: None,
        }
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        for attempt in 0..2 {
            if self.file.is_none() {
                self.file = Some(std::fs::File::open(path).map_err(|e| {
                    StoreError::Unavailable(format!("cannot open the WAL {}: {e}", path.display()))
                })?);
            }
            match self.file.as_ref().map(std::fs::File::sync_data) {
                Some(Ok(())) => return Ok(()),
                Some(Err(e)) if attempt == 1 => {
                    return Err(StoreError::Unavailable(format!(
                        "cannot flush the WAL: {e}"
                    )));
                }
                _ => self.file = None,
            }
        }
        Ok(())
    }
}

fn commit_batch(conn: &Connection, batch: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    let sql = |e: rusqlite::Error| StoreError::Unavailable(format!("SQLite: {e}"));
    conn.execute_batch("BEGIN IMMEDIATE").map_err(sql)?;
    for job in batch.iter_mut() {
        // Jobs check before they write, so a rejected job has changed nothing; a job that failed
        // part-way (an SQL error) aborts the whole batch.
        if let Verdict::Broken(e) = job.run(conn) {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(sql(e));
    }
    Ok(())
}
