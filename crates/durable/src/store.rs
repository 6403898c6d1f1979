//! Opening a store from a URL.

use std::sync::Arc;

use durable_sqlite::{SqliteOptions, SqliteStore};
use durable_store::{MemoryStore, SharedStore, StoreError};

/// Opens the store a URL names: `sqlite://FILE` (add `?sync=normal` to trade power-loss
/// durability for speed), `sqlite::memory:` or `memory:`.
pub fn open_store(url: &str) -> Result<SharedStore, StoreError> {
    if url == "memory:" {
        return Ok(MemoryStore::new());
    }
    if url.starts_with("sqlite:") {
        let options = SqliteOptions::from_url(url).map_err(StoreError::InvalidState)?;
        return Ok(Arc::new(SqliteStore::open(options)?));
    }
    Err(StoreError::InvalidState(format!(
        "unsupported store URL '{url}' (expected sqlite://FILE, sqlite::memory: or memory:)"
    )))
}
