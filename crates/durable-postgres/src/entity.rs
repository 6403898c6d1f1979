//! Entity rows: created when first addressed, removed when they hold nothing.
//!
//! A sender creates the row and queues its message in separate statements, so removal must not
//! slip in between. Every sender therefore holds a lock on the entity row from creating it until
//! its message is in: [`ENSURE`] locks an existing row (`DO UPDATE ... WHERE false` locks without
//! writing), and a lone send locks it in the statement that queues the message. The removal locks
//! the row first and only then looks for messages, in a later statement that sees every sender
//! that held the lock.

use durable_core::entity::EntityId;
use durable_store::StoreResult;

use crate::error::db;
use crate::{Effects, PostgresStore};

/// Creates the entities `$1` (names `$2`, ids sorted so that senders lock in one order) and locks
/// the ones that exist until the transaction ends.
pub(crate) const ENSURE: &str = "
    INSERT INTO {hub}.instances (instance_id, name, execution_id, status, created_at, updated_at)
    SELECT id, name, '', 'Running', $3, $3 FROM unnest($1::text[], $2::text[]) AS e(id, name)
    ORDER BY id
    ON CONFLICT (instance_id) DO UPDATE SET name = EXCLUDED.name WHERE false";

/// The entity ids among message targets, sorted and without repeats, with their names, for
/// [`ENSURE`].
pub(crate) fn targets<'a>(targets: impl Iterator<Item = &'a str>) -> (Vec<String>, Vec<String>) {
    let mut found: Vec<(String, String)> = targets
        .filter_map(|t| EntityId::parse(t).map(|e| (t.to_string(), e.name)))
        .collect();
    found.sort();
    found.dedup_by(|a, b| a.0 == b.0);
    found.into_iter().unzip()
}

/// Locks the entity row if it holds no state, no schedule and no live lease.
const LOCK_IF_BARE: &str = "
    SELECT 1 FROM {hub}.instances
    WHERE instance_id = $1 AND custom_status IS NULL AND input IS NULL
      AND (locked_until IS NULL OR locked_until <= $2)
    FOR UPDATE";

const HAS_MESSAGES: &str = "SELECT EXISTS (SELECT 1 FROM {hub}.messages WHERE instance_id = $1)";

const DELETE: &str = "DELETE FROM {hub}.instances WHERE instance_id = $1";

pub(crate) async fn remove_if_empty(
    store: &PostgresStore,
    id: &str,
) -> StoreResult<(bool, Effects)> {
    if EntityId::parse(id).is_none() {
        return Ok((false, Effects::default()));
    }
    let now = store.now();
    let mut client = store.conn().await?;
    let has_messages = store.prepare(&client, HAS_MESSAGES).await?;
    // Busy entities are never locked: a claim skips locked rows.
    let busy = |row: tokio_postgres::Row| row.get::<_, bool>(0);
    if busy(client.query_one(&has_messages, &[&id]).await.map_err(db)?) {
        return Ok((false, Effects::default()));
    }
    let lock = store.prepare(&client, LOCK_IF_BARE).await?;
    let delete = store.prepare(&client, DELETE).await?;
    // Read committed: the second message check runs after the lock, so it sees every message
    // queued by a sender that held the lock before us.
    let tx = client.transaction().await.map_err(db)?;
    if tx
        .query_opt(&lock, &[&id, &now])
        .await
        .map_err(db)?
        .is_none()
    {
        tx.rollback().await.map_err(db)?;
        return Ok((false, Effects::default()));
    }
    if busy(tx.query_one(&has_messages, &[&id]).await.map_err(db)?) {
        tx.rollback().await.map_err(db)?;
        // A dispatcher may have skipped the entity while it was locked here.
        return Ok((false, Effects::work()));
    }
    tx.execute(&delete, &[&id]).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok((true, Effects::default().changed(id)))
}
