//! The on-disk layout.
//!
//! * `journal`: one row per group commit, holding the ops of that commit as a JSON array; an
//!   append to a rowid table with no secondary index.
//! * `history`: one row per committed turn, numbered by the op that wrote it: an append with no
//!   secondary index. The rows of each instance are found through a map built at open.
//! * `snapshot`: one row per instance (its state, inbox and activities), written at checkpoints;
//!   the journal rows a checkpoint covers are then deleted.
//! * `meta`: the checkpoint's op sequence number and the message/activity key counter.
//!
//! Opening replays the journal written after the last checkpoint onto the snapshots.

use rusqlite::Connection;

/// Bump when the layout changes; `migrate` refuses databases it does not understand.
pub(crate) const VERSION: i64 = 3;

const HISTORY: &str = "
CREATE TABLE history (
    id          INTEGER PRIMARY KEY,
    instance_id TEXT NOT NULL,
    events      TEXT NOT NULL
);
";

const V3: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE journal (
    id       INTEGER PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    entries  TEXT NOT NULL
);

CREATE TABLE snapshot (
    instance_id TEXT PRIMARY KEY,
    slot        TEXT NOT NULL
) WITHOUT ROWID;

INSERT INTO meta (key, value) VALUES ('checkpoint_seq', 0), ('next_key', 0);
";

/// Schema 2 kept history in an `(instance_id, seq)` index. Its rows move to the append-only
/// table with negative ids, in history order, below every id an op will ever write.
const V2_RENAME: &str = "ALTER TABLE history RENAME TO history_v2;";
const V2_COPY: &str = "
INSERT INTO history (id, instance_id, events)
    SELECT ROW_NUMBER() OVER (ORDER BY instance_id, seq) - (SELECT COUNT(*) FROM history_v2) - 1,
           instance_id, events
    FROM history_v2;
DROP TABLE history_v2;
";

pub(crate) fn migrate(conn: &Connection) -> Result<(), String> {
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    match current {
        0 => conn
            .execute_batch(&format!(
                "BEGIN IMMEDIATE; {V3} {HISTORY} PRAGMA user_version = {VERSION}; COMMIT;"
            ))
            .map_err(|e| e.to_string()),
        2 => conn
            .execute_batch(&format!(
                "BEGIN IMMEDIATE; {V2_RENAME} {HISTORY} {V2_COPY} PRAGMA user_version = {VERSION}; COMMIT;"
            ))
            .map_err(|e| format!("upgrading the database from schema 2: {e}")),
        VERSION => Ok(()),
        1 => Err(
            "the database was written by an early development build of durable (schema 1); \
                  it cannot be upgraded: move it away to start afresh"
                .into(),
        ),
        newer => Err(format!(
            "the database has schema version {newer}, newer than this build understands ({VERSION})"
        )),
    }
}
