//! Conversions between rows and values.

use chrono::{DateTime, Utc};
use durable_core::instance::InstanceState;
use durable_core::status::RuntimeStatus;
use durable_store::StoreError;
use rusqlite::Row;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn time(m: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(m).unwrap_or_default()
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("stored values always serialize")
}

pub(crate) fn opt_json<T: Serialize>(v: &Option<T>) -> Option<String> {
    v.as_ref().map(to_json)
}

pub(crate) fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Internal(format!("corrupted row: {e}")))
}

pub(crate) fn sql(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
                    | rusqlite::ErrorCode::DiskFull
                    | rusqlite::ErrorCode::SystemIoFailure
            ) =>
        {
            StoreError::Unavailable(format!("SQLite: {e}"))
        }
        other => StoreError::Internal(format!("SQLite: {other}")),
    }
}

/// The columns `instance_row` reads, in order (a macro so SQL can be built with `concat!`).
macro_rules! instance_columns {
    () => {
        "instance_id, name, version, execution_id, status, input, output, custom_status, failure, \
         created_at, updated_at, completed_at, scheduled_start_at, parent, tags"
    };
}
pub(crate) use instance_columns;

pub(crate) const INSTANCE_COLUMNS: &str = instance_columns!();

pub(crate) fn instance_row(row: &Row<'_>) -> rusqlite::Result<Result<InstanceState, StoreError>> {
    let status: String = row.get(4)?;
    let failure: Option<String> = row.get(8)?;
    let parent: Option<String> = row.get(13)?;
    let tags: Option<String> = row.get(14)?;
    let state = (|| -> rusqlite::Result<InstanceState> {
        Ok(InstanceState {
            instance_id: row.get(0)?,
            name: row.get(1)?,
            version: row.get(2)?,
            execution_id: row.get(3)?,
            status: status
                .parse::<RuntimeStatus>()
                .unwrap_or(RuntimeStatus::Running),
            input: row.get(5)?,
            output: row.get(6)?,
            custom_status: row.get(7)?,
            failure: None,
            created_at: time(row.get(9)?),
            updated_at: time(row.get(10)?),
            completed_at: row.get::<_, Option<i64>>(11)?.map(time),
            scheduled_start_at: row.get::<_, Option<i64>>(12)?.map(time),
            parent: None,
            tags: Default::default(),
        })
    })()?;
    Ok((|| -> Result<InstanceState, StoreError> {
        let mut state = state;
        state.failure = failure.as_deref().map(from_json).transpose()?;
        state.parent = parent.as_deref().map(from_json).transpose()?;
        state.tags = tags
            .as_deref()
            .map(from_json)
            .transpose()?
            .unwrap_or_default();
        Ok(state)
    })())
}
