//! The single-statement writes: messages, activity results, leases, rewind and purge.

use std::time::Duration;

use durable_core::event::{EventKind, HistoryEvent};
use durable_core::instance::PurgeFilter;
use durable_core::status::RuntimeStatus;
use durable_core::work::{ActivityLease, ActivityResult, Lease, NewMessage, SendOutcome};
use durable_store::{StoreError, StoreResult};

use crate::create::MessageArgs;
use crate::error::db;
use crate::pipeline::{self, step};
use crate::rows::{status, terminal, to_json};
use crate::{Effects, PostgresStore, entity};

/// Queues a message unless the target is finished. `FOR SHARE` holds off a concurrent commit
/// that would finish the target (and empty its inbox) until this message is in.
const SEND: &str = concat!(
    "WITH target AS (
        SELECT status FROM {hub}.instances WHERE instance_id = $1 FOR SHARE
    ), queued AS (
        INSERT INTO {hub}.messages (instance_id, execution_id, timer_id, event, visible_at)
        SELECT $1::text, $2::text, $3::integer, $4::text, $5::timestamptz
        FROM target WHERE status NOT IN ",
    terminal!(),
    "
    )
    SELECT status FROM target"
);

/// A terminate also makes a scheduled start visible now, so it can run before its time.
const TERMINATE: &str = concat!(
    "WITH target AS (
        SELECT status FROM {hub}.instances WHERE instance_id = $1 FOR NO KEY UPDATE
    ), queued AS (
        INSERT INTO {hub}.messages (instance_id, execution_id, timer_id, event, visible_at)
        SELECT $1::text, $2::text, $3::integer, $4::text, $5::timestamptz
        FROM target WHERE status NOT IN ",
    terminal!(),
    "
    ), start_now AS (
        UPDATE {hub}.instances SET scheduled_start_at = NULL
        WHERE instance_id = $1 AND EXISTS (SELECT 1 FROM target WHERE status = 'Pending')
    ), visible_now AS (
        UPDATE {hub}.messages SET visible_at = least(visible_at, $6)
        WHERE instance_id = $1 AND EXISTS (SELECT 1 FROM target WHERE status = 'Pending')
    )
    SELECT status FROM target"
);

pub(crate) async fn send_message(
    store: &PostgresStore,
    message: NewMessage,
) -> StoreResult<(SendOutcome, Effects)> {
    let now = store.now();
    let m = MessageArgs::new(&message, now);
    let terminate = matches!(message.event.kind, EventKind::ExecutionTerminated { .. });
    let client = store.conn().await?;
    let (ids, names) = entity::targets(std::iter::once(message.instance_id.as_str()));
    let statement = store
        .prepare(&client, if terminate { TERMINATE } else { SEND })
        .await?;
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![
        &m.instance_id,
        &m.execution_id,
        &m.timer_id,
        &m.event,
        &m.visible_at,
    ];
    if terminate {
        params.push(&now);
    }
    // The statement locks the target's row while it queues the message, which a removal
    // respects (see `entity`).
    let mut row = client.query_opt(&statement, &params).await.map_err(db)?;
    if row.is_none() && !ids.is_empty() {
        // An entity addressed the first time, or just removed: created and sent to in one
        // transaction, so a removal cannot slip in between; pipelined, so one round trip.
        let lock = store.prepare(&client, entity::LOCK_FOR_SEND).await?;
        let ensure = store.prepare(&client, entity::ENSURE).await?;
        let pg: &tokio_postgres::Client = &client;
        let steps = vec![
            step(pg, lock, vec![&ids]),
            step(pg, ensure, vec![&ids, &names, &now]),
            step(pg, statement, params),
        ];
        let mut rows = pipeline::transaction(pg, steps).await.map_err(db)?;
        row = rows.pop().and_then(|r| r.into_iter().next());
    }
    let Some(row) = row else {
        return Err(StoreError::NotFound(message.instance_id));
    };
    if status(row.get(0))?.is_terminal() {
        return Ok((SendOutcome::InstanceTerminal, Effects::default()));
    }
    Ok((SendOutcome::Queued, Effects::work()))
}

/// The result event for an activity, split around its task id: the lease does not carry the
/// id, so the statement splices in the one stored with the activity (`$3 || task_id || $4`).
fn result_event_parts(
    result: ActivityResult,
    now: chrono::DateTime<chrono::Utc>,
) -> (String, String) {
    const MARK: i32 = i32::MIN;
    let kind = match result {
        ActivityResult::Completed(result) => EventKind::TaskCompleted {
            task_scheduled_id: MARK,
            result,
        },
        ActivityResult::Failed(failure_details) => EventKind::TaskFailed {
            task_scheduled_id: MARK,
            failure_details,
        },
    };
    let json = to_json(&HistoryEvent::unnumbered(now, kind));
    // Payloads are escaped JSON strings, so the field itself is the only unescaped match.
    let field = format!("\"taskScheduledId\":{MARK}");
    let (before, after) = json
        .split_once(&field)
        .expect("result events carry taskScheduledId");
    (format!("{before}\"taskScheduledId\":"), after.to_string())
}

/// Deletes the activity if the lease is current and queues its result for the owner, unless
/// the owner finished. Returns (activities deleted, results queued).
const COMPLETE: &str = concat!(
    "WITH done AS (
        DELETE FROM {hub}.activities WHERE id = $1 AND epoch = $2
        RETURNING instance_id, execution_id, task_id
    ), owner AS (
        SELECT instance_id FROM {hub}.instances
        WHERE instance_id = (SELECT instance_id FROM done) AND status NOT IN ",
    terminal!(),
    " FOR SHARE
    ), queued AS (
        INSERT INTO {hub}.messages (instance_id, execution_id, event, visible_at)
        SELECT d.instance_id, d.execution_id, $3::text || d.task_id::text || $4::text,
               $5::timestamptz
        FROM done d WHERE d.instance_id IN (SELECT instance_id FROM owner)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM done), (SELECT count(*) FROM queued)"
);

fn stale_activity(lease: &ActivityLease) -> StoreError {
    StoreError::StaleLease(format!("activity {}", lease.activity_id))
}

pub(crate) async fn complete_activity(
    store: &PostgresStore,
    lease: &ActivityLease,
    result: ActivityResult,
) -> StoreResult<((), Effects)> {
    let now = store.now();
    let (before, after) = result_event_parts(result, now);
    let epoch = lease.epoch as i64;
    let client = store.conn().await?;
    let statement = store.prepare(&client, COMPLETE).await?;
    let row = client
        .query_one(
            &statement,
            &[&lease.activity_id, &epoch, &before, &after, &now],
        )
        .await
        .map_err(db)?;
    let (deleted, queued): (i64, i64) = (row.get(0), row.get(1));
    if deleted == 0 {
        return Err(stale_activity(lease));
    }
    let effects = if queued > 0 {
        Effects::work()
    } else {
        Effects::default()
    };
    Ok(((), effects))
}

const ACTIVITY_LEASE: &str = "
    UPDATE {hub}.activities SET locked_until = $3, visible_at = coalesce($4, visible_at)
    WHERE id = $1 AND epoch = $2";

/// Renews (`locked_until` set) or gives back (`None`, with a new visibility time) an activity.
pub(crate) async fn update_activity_lease(
    store: &PostgresStore,
    lease: &ActivityLease,
    locked_until: Option<chrono::DateTime<chrono::Utc>>,
    visible_at: Option<chrono::DateTime<chrono::Utc>>,
) -> StoreResult<((), Effects)> {
    let epoch = lease.epoch as i64;
    let client = store.conn().await?;
    let statement = store.prepare(&client, ACTIVITY_LEASE).await?;
    let n = client
        .execute(
            &statement,
            &[&lease.activity_id, &epoch, &locked_until, &visible_at],
        )
        .await
        .map_err(db)?;
    if n == 0 {
        return Err(stale_activity(lease));
    }
    let effects = Effects {
        activities: locked_until.is_none(),
        ..Default::default()
    };
    Ok(((), effects))
}

/// A retry delay keeps the instance locked until then; its messages keep their order and
/// visibility (delaying them could let a later event overtake the instance's start).
const ABANDON: &str = "
    UPDATE {hub}.instances SET locked_until = $3
    WHERE instance_id = $1 AND epoch = $2
    RETURNING instance_id";

pub(crate) async fn abandon_orchestration_item(
    store: &PostgresStore,
    lease: &Lease,
    retry_after: Option<Duration>,
) -> StoreResult<((), Effects)> {
    let retry_at = retry_after.map(|d| store.until(d));
    let epoch = lease.epoch as i64;
    let client = store.conn().await?;
    let statement = store.prepare(&client, ABANDON).await?;
    let released = client
        .execute(&statement, &[&lease.instance_id, &epoch, &retry_at])
        .await
        .map_err(db)?;
    if released == 0 {
        return Err(StoreError::StaleLease(lease.instance_id.clone()));
    }
    Ok(((), Effects::work()))
}

const RENEW: &str =
    "UPDATE {hub}.instances SET locked_until = $3 WHERE instance_id = $1 AND epoch = $2";

pub(crate) async fn renew_orchestration_lease(
    store: &PostgresStore,
    lease: &Lease,
    lock_for: Duration,
) -> StoreResult<()> {
    let until = store.until(lock_for);
    let epoch = lease.epoch as i64;
    let client = store.conn().await?;
    let statement = store.prepare(&client, RENEW).await?;
    let n = client
        .execute(&statement, &[&lease.instance_id, &epoch, &until])
        .await
        .map_err(db)?;
    if n == 0 {
        return Err(StoreError::StaleLease(lease.instance_id.clone()));
    }
    Ok(())
}

const REWIND: &str = "
    WITH target AS (
        SELECT status FROM {hub}.instances WHERE instance_id = $1 FOR NO KEY UPDATE
    ), rewound AS (
        UPDATE {hub}.instances SET status = 'Running', output = NULL, failure = NULL,
            completed_at = NULL, updated_at = $2
        WHERE instance_id = $1 AND EXISTS (SELECT 1 FROM target WHERE status = 'Failed')
        RETURNING execution_id
    ), queued AS (
        INSERT INTO {hub}.messages (instance_id, execution_id, event, visible_at)
        SELECT $1::text, execution_id, $3::text, $2::timestamptz FROM rewound
    )
    SELECT status FROM target";

pub(crate) async fn rewind_instance(
    store: &PostgresStore,
    id: &str,
    event: HistoryEvent,
) -> StoreResult<((), Effects)> {
    let now = store.now();
    let event = to_json(&event);
    let client = store.conn().await?;
    let statement = store.prepare(&client, REWIND).await?;
    let row = client
        .query_opt(&statement, &[&id, &now, &event])
        .await
        .map_err(db)?
        .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
    let found = status(row.get(0))?;
    if found != RuntimeStatus::Failed {
        return Err(StoreError::InvalidState(format!(
            "instance '{id}' is {found}; only a Failed instance can be rewound"
        )));
    }
    Ok(((), Effects::work().changed(id)))
}

/// Deletes the instances in `doomed` (locked, still finished) with their rows; returns how
/// many instances went. Appended to a statement that defines `doomed_ids`.
macro_rules! delete_doomed {
    () => {
        concat!(
            ", doomed AS (
                SELECT instance_id FROM {hub}.instances
                WHERE instance_id IN (SELECT instance_id FROM doomed_ids)
                  AND status IN ",
            terminal!(),
            " FOR UPDATE
            ), purged_history AS (
                DELETE FROM {hub}.history WHERE instance_id IN (SELECT instance_id FROM doomed)
            ), purged_messages AS (
                DELETE FROM {hub}.messages WHERE instance_id IN (SELECT instance_id FROM doomed)
            ), purged_activities AS (
                DELETE FROM {hub}.activities
                WHERE instance_id IN (SELECT instance_id FROM doomed)
            ), gone AS (
                DELETE FROM {hub}.instances WHERE instance_id IN (SELECT instance_id FROM doomed)
                RETURNING 1
            )
            SELECT count(*) FROM gone"
        )
    };
}

/// The instance and, with `$2`, its finished descendants (through finished parents only).
const PURGE: &str = concat!(
    "WITH RECURSIVE doomed_ids AS (
        SELECT instance_id FROM {hub}.instances
        WHERE instance_id = $1 AND status IN ",
    terminal!(),
    "
        UNION
        SELECT c.instance_id FROM {hub}.instances c
        JOIN doomed_ids p ON c.parent_instance_id = p.instance_id
        WHERE $2 AND c.status IN ",
    terminal!(),
    "
    )",
    delete_doomed!()
);

const PURGE_BY: &str = concat!(
    "WITH doomed_ids AS (
        SELECT instance_id FROM {hub}.instances
        WHERE status = ANY($1::text[])
          AND ($2::timestamptz IS NULL OR created_at >= $2)
          AND ($3::timestamptz IS NULL OR created_at < $3)
    )",
    delete_doomed!()
);

pub(crate) async fn purge_instance(
    store: &PostgresStore,
    id: &str,
    recursive: bool,
) -> StoreResult<(u64, Effects)> {
    let client = store.conn().await?;
    let statement = store.prepare(&client, PURGE).await?;
    let n: i64 = client
        .query_one(&statement, &[&id, &recursive])
        .await
        .map_err(db)?
        .get(0);
    Ok((n as u64, Effects::default().changed(id)))
}

pub(crate) async fn purge_instances(
    store: &PostgresStore,
    filter: &PurgeFilter,
) -> StoreResult<(u64, Effects)> {
    let statuses: Vec<String> = RuntimeStatus::ALL
        .into_iter()
        .filter(|s| s.is_terminal())
        .filter(|s| filter.statuses.is_empty() || filter.statuses.contains(s))
        .map(|s| s.as_str().to_string())
        .collect();
    if statuses.is_empty() {
        return Ok((0, Effects::default()));
    }
    let client = store.conn().await?;
    let statement = store.prepare(&client, PURGE_BY).await?;
    let n: i64 = client
        .query_one(
            &statement,
            &[&statuses, &filter.created_from, &filter.created_to],
        )
        .await
        .map_err(db)?
        .get(0);
    Ok((n as u64, Effects::default()))
}
