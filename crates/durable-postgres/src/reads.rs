//! Reads: history, instances, listings, queue statistics and the next due time.

use chrono::{DateTime, Utc};
use durable_core::event::HistoryEvent;
use durable_core::instance::{InstanceQuery, InstanceState, Page, decode_cursor};
use durable_core::work::QueueStats;
use durable_store::StoreResult;

use crate::PostgresStore;
use crate::error::db;
use crate::rows::{instance, instance_columns, status};

const HISTORY: &str = "SELECT events FROM {hub}.history WHERE instance_id = $1 ORDER BY seq";

pub(crate) async fn read_history(
    store: &PostgresStore,
    id: &str,
) -> StoreResult<Vec<HistoryEvent>> {
    let client = store.conn().await?;
    let statement = store.prepare(&client, HISTORY).await?;
    let rows = client.query(&statement, &[&id]).await.map_err(db)?;
    let mut events = Vec::new();
    for row in rows {
        events.append(&mut durable_store::decode_history_row(row.get(0))?);
    }
    Ok(events)
}

const INSTANCE: &str = concat!(
    "SELECT ",
    instance_columns!(),
    " FROM {hub}.instances WHERE instance_id = $1"
);

pub(crate) async fn get_instance(
    store: &PostgresStore,
    id: &str,
) -> StoreResult<Option<InstanceState>> {
    let client = store.conn().await?;
    let statement = store.prepare(&client, INSTANCE).await?;
    let row = client.query_opt(&statement, &[&id]).await.map_err(db)?;
    row.map(|r| instance(&r, 0)).transpose()
}

/// Every filter is an argument that may be NULL, so one prepared statement serves all queries.
/// `starts_with` keeps the prefix exact (LIKE would treat `%` and `_` as wildcards).
const QUERY: &str = concat!(
    "SELECT ",
    instance_columns!(),
    " FROM {hub}.instances
    WHERE ($1::text[] IS NULL OR status = ANY($1))
      AND ($2::timestamptz IS NULL OR created_at >= $2)
      AND ($3::timestamptz IS NULL OR created_at < $3)
      AND ($4::text IS NULL OR name = $4)
      AND ($5::text IS NULL OR starts_with(instance_id, $5))
      AND ($6::timestamptz IS NULL OR (created_at, instance_id) > ($6, $7::text))
      AND ($9::boolean IS NULL OR (instance_id ~ '^@[^@]+@') = $9)
    ORDER BY created_at, instance_id
    LIMIT $8"
);

pub(crate) async fn query_instances(
    store: &PostgresStore,
    q: &InstanceQuery,
) -> StoreResult<Page<InstanceState>> {
    let statuses: Option<Vec<String>> = (!q.statuses.is_empty())
        .then(|| q.statuses.iter().map(|s| s.as_str().to_string()).collect());
    let (after_at, after_id) = match q.continuation_token.as_deref().and_then(decode_cursor) {
        Some((at, id)) => (Some(at), Some(id)),
        None => (None, None),
    };
    let size = q.page_size.unwrap_or(100).max(1);
    let limit = size.saturating_add(1).min(i64::MAX as usize) as i64;
    let client = store.conn().await?;
    let statement = store.prepare(&client, QUERY).await?;
    let rows = client
        .query(
            &statement,
            &[
                &statuses,
                &q.created_from,
                &q.created_to,
                &q.name,
                &q.instance_id_prefix,
                &after_at,
                &after_id,
                &limit,
                &q.entities,
            ],
        )
        .await
        .map_err(db)?;
    let items = rows
        .iter()
        .map(|r| instance(r, 0))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::of_instances(items, size, q.fetch_payloads))
}

const STATS: &str = "
    SELECT
        (SELECT count(DISTINCT m.instance_id) FROM {hub}.messages m
         JOIN {hub}.instances i ON i.instance_id = m.instance_id
         WHERE m.visible_at <= $1 AND (i.locked_until IS NULL OR i.locked_until <= $1)),
        (SELECT min(m.visible_at) FROM {hub}.messages m
         JOIN {hub}.instances i ON i.instance_id = m.instance_id
         WHERE m.visible_at <= $1 AND (i.locked_until IS NULL OR i.locked_until <= $1)),
        (SELECT count(*) FROM {hub}.messages WHERE visible_at > $1),
        (SELECT count(*) FROM {hub}.activities
         WHERE visible_at <= $1 AND (locked_until IS NULL OR locked_until <= $1)),
        (SELECT min(visible_at) FROM {hub}.activities
         WHERE visible_at <= $1 AND (locked_until IS NULL OR locked_until <= $1))";

/// Counts by status, with entities (the same test as the entity filter of [`QUERY`]) apart.
const BY_STATUS: &str = "SELECT status, count(*), instance_id ~ '^@[^@]+@' AS entity
    FROM {hub}.instances GROUP BY status, entity";

pub(crate) async fn queue_stats(store: &PostgresStore) -> StoreResult<QueueStats> {
    let now = store.now();
    let client = store.conn().await?;
    let stats = store.prepare(&client, STATS).await?;
    let by_status = store.prepare(&client, BY_STATUS).await?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&now];
    let (row, counts) = futures::try_join!(
        client.query_one(&stats, &params),
        client.query(&by_status, &[])
    )
    .map_err(db)?;
    let (entity_rows, orchestration_rows): (Vec<_>, Vec<_>) =
        counts.iter().partition(|r| r.get::<_, bool>(2));
    let entities = entity_rows.iter().map(|r| r.get::<_, i64>(1) as u64).sum();
    let mut instances_by_status = orchestration_rows
        .iter()
        .map(|r| Ok((status(r.get(0))?, r.get::<_, i64>(1) as u64)))
        .collect::<StoreResult<Vec<_>>>()?;
    instances_by_status.sort();
    Ok(QueueStats {
        orchestration_backlog: row.get::<_, i64>(0) as u64,
        oldest_orchestration_message_at: row.get(1),
        pending_timers: row.get::<_, i64>(2) as u64,
        activity_backlog: row.get::<_, i64>(3) as u64,
        oldest_activity_at: row.get(4),
        instances_by_status,
        entities,
    })
}

const NEXT_DUE: &str = "
    SELECT least(
        (SELECT min(visible_at) FROM {hub}.messages WHERE visible_at > $1),
        (SELECT min(visible_at) FROM {hub}.activities WHERE visible_at > $1))";

pub(crate) async fn next_due(store: &PostgresStore) -> StoreResult<Option<DateTime<Utc>>> {
    let now = store.now();
    let client = store.conn().await?;
    let statement = store.prepare(&client, NEXT_DUE).await?;
    let row = client.query_one(&statement, &[&now]).await.map_err(db)?;
    Ok(row.get(0))
}
