//! Driver and pool errors as [`StoreError`]s: connection trouble and contention are
//! `Unavailable` (the caller may retry), anything else is `Internal`.

use std::error::Error as _;

use deadpool_postgres::PoolError;
use durable_store::StoreError;
use tokio_postgres::error::SqlState;

/// The SQLSTATE the schema's `require_lease` function raises (see `schema.rs`).
pub(crate) const STALE_LEASE: &str = "DU001";

/// Whether the error is the fence of a stale lease.
pub(crate) fn is_stale(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| c.code() == STALE_LEASE)
}

/// Classes of SQLSTATE worth retrying: the connection, resources, the server going away,
/// serialization failures and deadlocks.
fn transient(state: &SqlState) -> bool {
    let code = state.code();
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || code.starts_with("58")
        || code == SqlState::T_R_SERIALIZATION_FAILURE.code()
        || code == SqlState::T_R_DEADLOCK_DETECTED.code()
        || code == SqlState::LOCK_NOT_AVAILABLE.code()
        || code == SqlState::READ_ONLY_SQL_TRANSACTION.code()
}

/// A readable message: the server's own words for database errors, the cause chain otherwise.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {} ({})", db.severity(), db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = s.source();
    }
    text
}

/// Maps a driver error.
pub(crate) fn db(e: tokio_postgres::Error) -> StoreError {
    let retry = match e.code() {
        Some(code) => transient(code),
        // No SQLSTATE: the connection failed or closed, or a value did not convert.
        None => {
            e.is_closed()
                || e.source()
                    .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some())
                || e.to_string().contains("timed out")
        }
    };
    if retry {
        StoreError::Unavailable(format!("PostgreSQL: {}", describe(&e)))
    } else {
        StoreError::Internal(format!("PostgreSQL: {}", describe(&e)))
    }
}

/// Maps a failure to get a pooled connection. `location` names the server for the message.
pub(crate) fn pool(e: PoolError, location: &str) -> StoreError {
    match e {
        PoolError::Timeout(_) => StoreError::Unavailable(format!(
            "no PostgreSQL connection to {location} became free in time (raise pool_size or pool_timeout)"
        )),
        PoolError::Backend(e) => StoreError::Unavailable(format!(
            "cannot connect to PostgreSQL at {location}: {}",
            describe(&e)
        )),
        PoolError::Closed => StoreError::Unavailable("the PostgreSQL pool is closed".into()),
        other => StoreError::Unavailable(format!(
            "cannot get a PostgreSQL connection to {location}: {other}"
        )),
    }
}
