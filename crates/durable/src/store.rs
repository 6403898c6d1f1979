//! Opening a store from a URL.

use std::sync::Arc;

use durable_sqlite::{SqliteOptions, SqliteStore};
use durable_store::{MemoryStore, SharedStore, StoreError};

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens the store a URL names: `sqlite://FILE` (add `?sync=normal` to trade power-loss
/// durability for speed), `sqlite::memory:` or `memory:`. PostgreSQL needs [`connect`].
pub fn open_store(url: &str) -> Result<SharedStore, StoreError> {
    if url == "memory:" {
        return Ok(MemoryStore::new());
    }
    if url.starts_with("sqlite:") {
        let options = SqliteOptions::from_url(url).map_err(StoreError::InvalidState)?;
        return Ok(Arc::new(SqliteStore::open(options)?));
    }
    if is_postgres(url) {
        return Err(StoreError::InvalidState(
            "a PostgreSQL store is opened with `durable::connect(url).await`".into(),
        ));
    }
    Err(StoreError::InvalidState(format!(
        "unsupported store URL '{url}' (expected postgres://…, sqlite://FILE, sqlite::memory: or memory:)"
    )))
}

/// Opens any store a URL names: what [`open_store`] opens, and PostgreSQL
/// (`postgres://user@host:port/db?schema=HUB…`, cargo feature `postgres`), which connects,
/// creates or migrates the task hub's schema and listens for work from other processes.
pub async fn connect(url: &str) -> Result<SharedStore, StoreError> {
    if !is_postgres(url) {
        return open_store(url);
    }
    #[cfg(feature = "postgres")]
    {
        use durable_postgres::{PostgresOptions, PostgresStore};
        let options =
            PostgresOptions::from_url(url).map_err(|e| StoreError::InvalidState(e.to_string()))?;
        Ok(Arc::new(PostgresStore::connect(options).await?))
    }
    #[cfg(not(feature = "postgres"))]
    Err(StoreError::InvalidState(
        "this build has no PostgreSQL store (cargo feature `postgres` of `durable`)".into(),
    ))
}
