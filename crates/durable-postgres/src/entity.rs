//! Entity rows: created when first addressed, removed when they hold nothing.
//!
//! A removal must never delete a row a message is on its way to. Two kinds of sender:
//! * A lone send queues the message in the statement that locks the target row (`FOR SHARE`).
//!   A removal locks the row `NOWAIT` (a locked row is busy: not removed) and only then looks for
//!   messages, in a statement that sees all the lock holders before it committed. A send that
//!   finds no row creates it in a transaction as turns do.
//! * A turn, or a send that creates the entity, creates the row and queues in separate
//!   statements. Each entity has an advisory lock (transaction-scoped): such senders share it
//!   from before they create the row until they commit ([`LOCK_FOR_SEND`], then [`ENSURE`], then
//!   the message), so they never wait for each other; a removal takes it exclusively first.
//!
//! A removal never waits for a row lock, so it cannot deadlock with a commit that holds the row
//! and wants the advisory lock.

use durable_core::entity::EntityId;
use durable_store::StoreResult;
use tokio_postgres::error::SqlState;

use crate::error::db;
use crate::{Effects, PostgresStore};

/// Takes the shared advisory locks of the entities `$1`.
pub(crate) const LOCK_FOR_SEND: &str = "
    SELECT pg_advisory_xact_lock_shared(hashtext('{hub}'), hashtext(id))
    FROM unnest($1::text[]) AS e(id)";

/// Creates the entities `$1` with the names `$2` unless they exist.
pub(crate) const ENSURE: &str = "
    INSERT INTO {hub}.instances (instance_id, name, execution_id, status, created_at, updated_at)
    SELECT id, name, '', 'Running', $3, $3 FROM unnest($1::text[], $2::text[]) AS e(id, name)
    ON CONFLICT (instance_id) DO NOTHING";

/// The entity ids among message targets, without repeats, with their names, for [`ENSURE`].
pub(crate) fn targets<'a>(targets: impl Iterator<Item = &'a str>) -> (Vec<String>, Vec<String>) {
    let mut ids = Vec::new();
    let mut names = Vec::new();
    for target in targets {
        if let Some(entity) = EntityId::parse(target)
            && !ids.iter().any(|i| i == target)
        {
            ids.push(target.to_string());
            names.push(entity.name);
        }
    }
    (ids, names)
}

const LOCK_FOR_REMOVAL: &str = "SELECT pg_advisory_xact_lock(hashtext('{hub}'), hashtext($1))";

/// Locks the entity's row if it holds no state, no schedule and no live lease; fails at once
/// (lock not available) if someone else holds it.
const LOCK_IF_BARE: &str = "
    SELECT 1 FROM {hub}.instances
    WHERE instance_id = $1 AND custom_status IS NULL AND input IS NULL
      AND (locked_until IS NULL OR locked_until <= $2)
    FOR UPDATE NOWAIT";

const HAS_MESSAGES: &str = "SELECT EXISTS (SELECT 1 FROM {hub}.messages WHERE instance_id = $1)";

const DELETE: &str = "DELETE FROM {hub}.instances WHERE instance_id = $1";

pub(crate) async fn remove_if_empty(
    store: &PostgresStore,
    id: &str,
) -> StoreResult<(bool, Effects)> {
    if !EntityId::is_entity(id) {
        return Ok((false, Effects::default()));
    }
    let now = store.now();
    let mut client = store.conn().await?;
    let has_messages = store.prepare(&client, HAS_MESSAGES).await?;
    let busy = |row: tokio_postgres::Row| row.get::<_, bool>(0);
    // A busy entity is left alone without holding up its senders.
    if busy(client.query_one(&has_messages, &[&id]).await.map_err(db)?) {
        return Ok((false, Effects::default()));
    }
    let lock = store.prepare(&client, LOCK_FOR_REMOVAL).await?;
    let bare = store.prepare(&client, LOCK_IF_BARE).await?;
    let delete = store.prepare(&client, DELETE).await?;
    let tx = client.transaction().await.map_err(db)?;
    tx.query(&lock, &[&id]).await.map_err(db)?;
    let locked = match tx.query_opt(&bare, &[&id, &now]).await {
        Ok(row) => row.is_some(),
        Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => false,
        Err(e) => return Err(db(e)),
    };
    // Read committed: this check's snapshot is taken after both locks were granted.
    if !locked || busy(tx.query_one(&has_messages, &[&id]).await.map_err(db)?) {
        // Dropping the transaction would roll it back too, but only once the connection is
        // used again; the locks go now.
        tx.rollback().await.map_err(db)?;
        return Ok((false, Effects::default()));
    }
    tx.execute(&delete, &[&id]).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok((true, Effects::default().changed(id)))
}
