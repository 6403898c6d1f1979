//! The schema of one task hub, created or upgraded when a store connects.
//!
//! Every table lives in the hub's own PostgreSQL schema (`{hub}` in the SQL below), so hubs in
//! one database never see each other. Migrations run in one transaction under an advisory lock:
//! processes that start together wait for the first one and then find the schema current.
//! History is stored one row per committed turn, as on SQLite.

use durable_store::{StoreError, StoreResult};
use tokio_postgres::Client;

use crate::error::db;
use crate::hub::Hub;

/// Bump when the schema changes and append the step to [`STEPS`].
pub(crate) const VERSION: i32 = 1;

/// The advisory lock key held while migrating (any hub): "durable" in ASCII.
const MIGRATION_LOCK: i64 = 0x0064_7572_6162_6c65;

/// Step `n` (1-based) brings the schema from version `n - 1` to `n`.
const STEPS: [&str; VERSION as usize] = [V1];

const V1: &str = r#"
CREATE TABLE {hub}.instances (
    instance_id        text PRIMARY KEY,
    name               text NOT NULL,
    version            text,
    execution_id       text NOT NULL,
    status             text NOT NULL,
    input              text,
    output             text,
    custom_status      text,
    failure            text,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    completed_at       timestamptz,
    scheduled_start_at timestamptz,
    parent             text,
    parent_instance_id text,
    tags               text,
    history_len        integer NOT NULL DEFAULT 0,
    epoch              bigint NOT NULL DEFAULT 0,
    locked_until       timestamptz
);
CREATE INDEX instances_by_created ON {hub}.instances (created_at, instance_id);
CREATE INDEX instances_by_status ON {hub}.instances (status, created_at);
CREATE INDEX instances_by_parent ON {hub}.instances (parent_instance_id)
    WHERE parent_instance_id IS NOT NULL;

CREATE TABLE {hub}.history (
    instance_id text NOT NULL,
    seq         integer NOT NULL,
    events      text NOT NULL,
    PRIMARY KEY (instance_id, seq)
);

CREATE TABLE {hub}.messages (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id    text NOT NULL,
    execution_id   text,
    timer_id       integer,
    event          text NOT NULL,
    visible_at     timestamptz NOT NULL,
    delivery_count integer NOT NULL DEFAULT 0
);
CREATE INDEX messages_by_instance ON {hub}.messages (instance_id, id);
CREATE INDEX messages_by_visible ON {hub}.messages (visible_at);

CREATE TABLE {hub}.activities (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id    text NOT NULL,
    execution_id   text NOT NULL,
    task_id        integer NOT NULL,
    name           text NOT NULL,
    version        text,
    input          text,
    tags           text,
    trace_context  text,
    visible_at     timestamptz NOT NULL,
    locked_until   timestamptz,
    epoch          bigint NOT NULL DEFAULT 0,
    delivery_count integer NOT NULL DEFAULT 0
);
CREATE INDEX activities_by_instance ON {hub}.activities (instance_id);
CREATE INDEX activities_by_visible ON {hub}.activities (visible_at);

-- Aborts the transaction of a commit whose lease is no longer held, so the rest of a pipelined
-- commit changes nothing.
CREATE FUNCTION {hub}.require_lease(held boolean, instance text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT held THEN
        RAISE EXCEPTION 'the lease on % is no longer held', instance USING ERRCODE = 'DU001';
    END IF;
END
$$;
"#;

/// The version recorded in the hub's schema, or 0 if it has none yet.
async fn stored_version(client: &Client, hub: &Hub) -> Result<i32, tokio_postgres::Error> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("{}.schema_version", hub.schema())],
        )
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_one(
            &*hub.sql("SELECT coalesce(max(version), 0) FROM {hub}.schema_version"),
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// Brings the hub's schema to [`VERSION`]. A current schema costs two reads and takes no lock.
pub(crate) async fn migrate(client: &mut Client, hub: &Hub) -> StoreResult<()> {
    let newer = |found: i32| {
        StoreError::Internal(format!(
            "schema '{}' has version {found}, newer than this build understands ({VERSION}); upgrade durable",
            hub.schema()
        ))
    };
    let found = stored_version(client, hub).await.map_err(db)?;
    if found == VERSION {
        return Ok(());
    }
    if found > VERSION {
        return Err(newer(found));
    }
    let tx = client.transaction().await.map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db)?;
    tx.batch_execute(&hub.sql(
        "CREATE SCHEMA IF NOT EXISTS {hub};
         CREATE TABLE IF NOT EXISTS {hub}.schema_version (version integer NOT NULL);",
    ))
    .await
    .map_err(db)?;
    // Read again under the lock: another process may have migrated meanwhile.
    let found: i32 = tx
        .query_one(
            &*hub.sql("SELECT coalesce(max(version), 0) FROM {hub}.schema_version"),
            &[],
        )
        .await
        .map_err(db)?
        .get(0);
    if found > VERSION {
        return Err(newer(found));
    }
    for (step, sql) in STEPS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(&hub.sql(sql)).await.map_err(db)?;
        tracing::info!(schema = %hub.schema(), version = step + 1, "migrated the task hub schema");
    }
    tx.execute(&*hub.sql("DELETE FROM {hub}.schema_version"), &[])
        .await
        .map_err(db)?;
    tx.execute(
        &*hub.sql("INSERT INTO {hub}.schema_version (version) VALUES ($1)"),
        &[&VERSION],
    )
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)
}
