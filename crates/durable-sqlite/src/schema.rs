//! The schema, created (or upgraded) when the store opens.
//!
//! History is stored one row per committed turn (`events` holds that turn's events as a JSON
//! array), so a step writes one history row and one index entry instead of one per event.

use rusqlite::Connection;

/// Bump when the schema changes; `migrate` applies every step above the stored version.
const VERSION: i64 = 1;

const V1: &str = "
CREATE TABLE instances (
    instance_id        TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    version            TEXT,
    execution_id       TEXT NOT NULL,
    status             TEXT NOT NULL,
    input              TEXT,
    output             TEXT,
    custom_status      TEXT,
    failure            TEXT,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    completed_at       INTEGER,
    scheduled_start_at INTEGER,
    parent             TEXT,
    parent_instance_id TEXT,
    tags               TEXT,
    history_len        INTEGER NOT NULL DEFAULT 0,
    epoch              INTEGER NOT NULL DEFAULT 0,
    locked_until       INTEGER
);
CREATE INDEX instances_by_created ON instances(created_at, instance_id);
CREATE INDEX instances_by_status ON instances(status, created_at);
CREATE INDEX instances_by_parent ON instances(parent_instance_id) WHERE parent_instance_id IS NOT NULL;

CREATE TABLE history (
    instance_id TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    events      TEXT NOT NULL,
    PRIMARY KEY (instance_id, seq)
) WITHOUT ROWID;

CREATE TABLE messages (
    id             INTEGER PRIMARY KEY,
    instance_id    TEXT NOT NULL,
    execution_id   TEXT,
    timer_id       INTEGER,
    event          TEXT NOT NULL,
    visible_at     INTEGER NOT NULL,
    delivery_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_by_instance ON messages(instance_id, id);
CREATE INDEX messages_by_visible ON messages(visible_at);

CREATE TABLE activities (
    id             INTEGER PRIMARY KEY,
    instance_id    TEXT NOT NULL,
    execution_id   TEXT NOT NULL,
    task_id        INTEGER NOT NULL,
    name           TEXT NOT NULL,
    version        TEXT,
    input          TEXT,
    tags           TEXT,
    trace_context  TEXT,
    visible_at     INTEGER NOT NULL,
    locked_until   INTEGER,
    epoch          INTEGER NOT NULL DEFAULT 0,
    delivery_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX activities_by_instance ON activities(instance_id);
";

pub(crate) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > VERSION {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "the database has schema version {current}, newer than this build understands ({VERSION})"
        )));
    }
    if current < 1 {
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {V1} PRAGMA user_version = 1; COMMIT;"
        ))?;
    }
    Ok(())
}
