//! Conversions between rows and values. Payloads and events are stored as JSON text, exactly as
//! they arrive; timestamps as `timestamptz`.

use chrono::{DateTime, Utc};
use durable_core::instance::InstanceState;
use durable_core::status::RuntimeStatus;
use durable_store::{StoreError, StoreResult};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_postgres::Row;

/// The instance columns [`instance`] reads, in order (a macro so statements can `concat!` it).
macro_rules! instance_columns {
    () => {
        "instance_id, name, version, execution_id, status, input, output, custom_status, failure, \
         created_at, updated_at, completed_at, scheduled_start_at, parent, tags"
    };
}
pub(crate) use instance_columns;

/// How many columns `instance_columns!()` lists.
pub(crate) const INSTANCE_WIDTH: usize = 15;

/// Statuses that end an instance, as an SQL list.
macro_rules! terminal {
    () => {
        "('Completed', 'Failed', 'Terminated')"
    };
}
pub(crate) use terminal;

pub(crate) fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("stored values always serialize")
}

pub(crate) fn opt_json<T: Serialize>(v: &Option<T>) -> Option<String> {
    v.as_ref().map(to_json)
}

pub(crate) fn from_json<T: DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Internal(format!("corrupted row: {e}")))
}

pub(crate) fn status(text: &str) -> StoreResult<RuntimeStatus> {
    text.parse()
        .map_err(|e| StoreError::Internal(format!("corrupted row: {e}")))
}

/// A nullable JSON column, decoded.
pub(crate) fn json_column<T: DeserializeOwned>(row: &Row, at: usize) -> StoreResult<Option<T>> {
    row.get::<_, Option<&str>>(at).map(from_json).transpose()
}

/// Reads `instance_columns!()` starting at column `at`.
pub(crate) fn instance(row: &Row, at: usize) -> StoreResult<InstanceState> {
    Ok(InstanceState {
        instance_id: row.get(at),
        name: row.get(at + 1),
        version: row.get(at + 2),
        execution_id: row.get(at + 3),
        status: status(row.get(at + 4))?,
        input: row.get(at + 5),
        output: row.get(at + 6),
        custom_status: row.get(at + 7),
        failure: json_column(row, at + 8)?,
        created_at: row.get(at + 9),
        updated_at: row.get(at + 10),
        completed_at: row.get(at + 11),
        scheduled_start_at: row.get(at + 12),
        parent: json_column(row, at + 13)?,
        tags: json_column(row, at + 14)?.unwrap_or_default(),
    })
}

/// `now + d`, saturating far in the future instead of overflowing.
pub(crate) fn after(now: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or_else(|| now + chrono::Duration::days(365 * 100))
}
