//! WAL checkpoints on a thread of their own. SQLite would otherwise copy the WAL back into the
//! database file (and flush it) inside the flusher's commits, on the path every durable op
//! waits on. A passive checkpoint runs beside the writer without blocking it.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::watch;

/// How often the WAL is copied back. A burst between two checkpoints grows the WAL by at most
/// a few thousand pages; the flusher's own auto-checkpoint is the safety net beyond that.
const EVERY: Duration = Duration::from_millis(50);

#[derive(Debug)]
pub(crate) struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// `flushed` moves whenever the flusher wrote: an idle store is left alone.
    pub fn spawn(path: PathBuf, flushed: watch::Receiver<u64>) -> std::io::Result<Self> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&path, &flag, flushed))?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }
}

fn run(path: &std::path::Path, stop: &(Mutex<bool>, Condvar), mut flushed: watch::Receiver<u64>) {
    let mut conn: Option<Connection> = None;
    loop {
        {
            let stopped = stop.0.lock().expect("not poisoned");
            let (stopped, _) = stop
                .1
                .wait_timeout_while(stopped, EVERY, |s| !*s)
                .expect("not poisoned");
            if *stopped {
                return;
            }
        }
        if !flushed.has_changed().unwrap_or(false) {
            continue;
        }
        flushed.mark_unchanged();
        if conn.is_none() {
            conn = Connection::open(path).ok();
        }
        let Some(c) = &conn else { continue };
        if let Err(e) = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            // The flusher's auto-checkpoint still bounds the WAL; try again with a new connection.
            tracing::debug!(error = %e, "WAL checkpoint failed");
            conn = None;
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        *self.stop.0.lock().expect("not poisoned") = true;
        self.stop.1.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
