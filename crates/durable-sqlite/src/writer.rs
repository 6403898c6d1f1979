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
    /// Runs inside the batch transaction; returns whether it succeeded.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Called after the batch committed (or failed to).
    fn finish(self: Box<Self>, committed: &Result<(), StoreError>, notifier: &Notifier);
}

struct Request<T, F> {
    work: Option<F>,
    outcome: Option<Outcome<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for Request<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Outcome<T> + Send + 'static,
{
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

/// The largest number of requests committed in one transaction.
const MAX_BATCH: usize = 512;

impl Writer {
    pub fn spawn(conn: Connection, notifier: Arc<Notifier>) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        thread::Builder::new()
            .name("durable-sqlite-writer".into())
            .spawn(move || run(conn, rx, notifier))?;
        Ok(Writer { tx })
    }

    /// Runs `work` in the next transaction and waits for it to be durable.
    pub async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Outcome<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = Box::new(Request {
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

fn run(conn: Connection, rx: mpsc::Receiver<Box<dyn Job>>, notifier: Arc<Notifier>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let committed = commit_batch(&conn, &mut batch);
        if let Err(e) = &committed {
            tracing::error!(error = %e, requests = batch.len(), "SQLite commit failed");
        }
        for job in batch {
            job.finish(&committed, &notifier);
        }
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
