//! Claiming work: one statement each, `FOR UPDATE SKIP LOCKED` so concurrent claimers pass
//! over each other's candidates instead of waiting for them.

use std::time::Duration;

use durable_core::work::{
    ActivityItem, ActivityLease, InboxMessage, Lease, NameFilter, NewActivity, OrchestrationItem,
};
use durable_store::StoreResult;
use tokio_postgres::Row;

use crate::PostgresStore;
use crate::error::db;
use crate::rows::{INSTANCE_WIDTH, from_json, instance, instance_columns, json_column, terminal};

/// A name filter as statement arguments: a mode (0 all, 1 only, 2 except) and the names. The
/// statements test `($mode = 0 OR ($mode = 1) = (name = ANY($names)))`.
fn filter_args(filter: &NameFilter) -> (i32, Vec<String>) {
    match filter {
        NameFilter::All => (0, Vec::new()),
        NameFilter::Only(names) => (1, names.clone()),
        NameFilter::Except(names) => (2, names.clone()),
    }
}

/// Runs a claim statement: `$1` now, `$2` the most rows, `$3` the lease end, `$4`/`$5` the
/// name filter.
async fn claim(
    store: &PostgresStore,
    template: &'static str,
    max: usize,
    lock_for: Duration,
    filter: &NameFilter,
) -> StoreResult<Vec<Row>> {
    if max == 0 || filter.is_empty() {
        return Ok(Vec::new());
    }
    let (now, until) = (store.now(), store.until(lock_for));
    let (mode, names) = filter_args(filter);
    let limit = max.min(i64::MAX as usize) as i64;
    let client = store.conn().await?;
    let statement = store.prepare(&client, template).await?;
    client
        .query(&statement, &[&now, &limit, &until, &mode, &names])
        .await
        .map_err(db)
}

/// Instances with visible messages and no live lease, oldest message first. The claim, the
/// epoch bump and the delivery counts are one statement; the result has one row per message
/// (`LEFT JOIN`: a claimed instance whose messages a concurrent commit just consumed comes back
/// with none, and the runtime releases it at once).
const FETCH_ORCHESTRATIONS: &str = concat!(
    "WITH ready AS (
        SELECT i.instance_id AS ready_id, m.first
        FROM (SELECT instance_id, min(id) AS first FROM {hub}.messages
              WHERE visible_at <= $1 GROUP BY instance_id) m
        JOIN {hub}.instances i ON i.instance_id = m.instance_id
        WHERE (i.locked_until IS NULL OR i.locked_until <= $1)
          AND i.status NOT IN ",
    terminal!(),
    "
          AND NOT (i.status = 'Pending' AND i.scheduled_start_at IS NOT NULL
                   AND i.scheduled_start_at > $1)
          AND ($4::integer = 0 OR ($4::integer = 1) = (i.name = ANY($5::text[])))
        ORDER BY m.first
        LIMIT $2
        FOR UPDATE OF i SKIP LOCKED
    ), claimed AS (
        UPDATE {hub}.instances SET epoch = epoch + 1, locked_until = $3
        FROM ready WHERE instance_id = ready.ready_id
        RETURNING ",
    instance_columns!(),
    ", epoch, history_len, ready.first
    ), delivered AS (
        UPDATE {hub}.messages m SET delivery_count = m.delivery_count + 1
        FROM claimed c WHERE m.instance_id = c.instance_id AND m.visible_at <= $1
        RETURNING m.instance_id AS target, m.id, m.execution_id AS message_execution, m.event,
                  m.delivery_count
    )
    SELECT c.*, d.id, d.message_execution, d.event, d.delivery_count
    FROM claimed c LEFT JOIN delivered d ON d.target = c.instance_id
    ORDER BY c.first, d.id"
);

pub(crate) async fn orchestrations(
    store: &PostgresStore,
    max: usize,
    lock_for: Duration,
    filter: &NameFilter,
) -> StoreResult<Vec<OrchestrationItem>> {
    let rows = claim(store, FETCH_ORCHESTRATIONS, max, lock_for, filter).await?;
    let w = INSTANCE_WIDTH;
    let mut items: Vec<OrchestrationItem> = Vec::new();
    for row in rows {
        let id: &str = row.get(0);
        if items.last().is_none_or(|i| i.lease.instance_id != id) {
            items.push(OrchestrationItem {
                lease: Lease {
                    instance_id: id.to_string(),
                    epoch: row.get::<_, i64>(w) as u64,
                },
                instance: instance(&row, 0)?,
                history_len: row.get::<_, i32>(w + 1) as u32,
                messages: Vec::new(),
            });
        }
        if let Some(message_id) = row.get::<_, Option<i64>>(w + 3) {
            let item = items.last_mut().expect("pushed above");
            item.messages.push(InboxMessage {
                id: message_id,
                execution_id: row.get(w + 4),
                event: from_json(row.get(w + 5))?,
                delivery_count: row.get::<_, i32>(w + 6) as u32,
            });
        }
    }
    Ok(items)
}

const FETCH_ACTIVITIES: &str = "
    WITH ready AS (
        SELECT id AS ready_id FROM {hub}.activities
        WHERE visible_at <= $1 AND (locked_until IS NULL OR locked_until <= $1)
          AND ($4::integer = 0 OR ($4::integer = 1) = (name = ANY($5::text[])))
        ORDER BY id
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    )
    UPDATE {hub}.activities
    SET epoch = epoch + 1, delivery_count = delivery_count + 1, locked_until = $3
    FROM ready WHERE id = ready.ready_id
    RETURNING id, epoch, delivery_count, instance_id, execution_id, task_id, name, version, input,
              tags, trace_context";

pub(crate) async fn activities(
    store: &PostgresStore,
    max: usize,
    lock_for: Duration,
    filter: &NameFilter,
) -> StoreResult<Vec<ActivityItem>> {
    let rows = claim(store, FETCH_ACTIVITIES, max, lock_for, filter).await?;
    let mut items = rows
        .iter()
        .map(|row| {
            Ok(ActivityItem {
                lease: ActivityLease {
                    activity_id: row.get(0),
                    epoch: row.get::<_, i64>(1) as u64,
                },
                delivery_count: row.get::<_, i32>(2) as u32,
                activity: NewActivity {
                    instance_id: row.get(3),
                    execution_id: row.get(4),
                    task_id: row.get(5),
                    name: row.get(6),
                    version: row.get(7),
                    input: row.get(8),
                    tags: json_column(row, 9)?.unwrap_or_default(),
                    trace_context: json_column(row, 10)?,
                },
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    items.sort_by_key(|i| i.lease.activity_id);
    Ok(items)
}
