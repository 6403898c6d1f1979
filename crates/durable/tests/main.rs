//! Integration tests of the runtime, the client and the examples, on real SQLite files.

mod crash;
mod entities;
mod examples;
mod faults;
mod golden;
mod observability;
mod runtime;

use std::sync::Arc;

use durable::SharedStore;
use durable_sqlite::{SqliteOptions, SqliteStore};

/// A fresh SQLite store in its own temporary directory (kept until the process exits).
pub fn sqlite_store() -> SharedStore {
    let dir = tempfile::tempdir().unwrap().keep();
    Arc::new(SqliteStore::open(SqliteOptions::file(dir.join("durable.db"))).unwrap())
}
