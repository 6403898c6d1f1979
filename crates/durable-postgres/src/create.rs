//! Creating instances: client starts and sub-orchestrations share one statement.

use chrono::{DateTime, Utc};
use durable_core::event::EventKind;
use durable_core::instance::{IfExists, NewInstance};
use durable_core::work::NewMessage;
use durable_store::{StoreError, StoreResult};
use tokio_postgres::types::ToSql;

use crate::error::db;
use crate::rows::{opt_json, terminal, to_json};
use crate::{Effects, PostgresStore};

/// Inserts the instance, or replaces an existing one whose status `$11` allows (in place, so
/// its epoch keeps growing and an old lease can never match the new instance), and queues its
/// start. When nothing was created and `$14` names a live instance, `on_conflict` goes there
/// instead. Returns how many instances were created (0 or 1).
///
/// All parts see the statement's snapshot: the deletes of the old instance's rows cannot touch
/// the start message inserted beside them.
pub(crate) const CREATE: &str = concat!(
    "WITH created AS (
        INSERT INTO {hub}.instances AS i (instance_id, name, version, execution_id, status, input,
            created_at, updated_at, scheduled_start_at, parent, parent_instance_id, tags)
        VALUES ($1, $2, $3, $4, 'Pending', $5, $6, $6, $7, $8, $9, $10)
        ON CONFLICT (instance_id) DO UPDATE SET name = EXCLUDED.name,
            version = EXCLUDED.version, execution_id = EXCLUDED.execution_id, status = 'Pending',
            input = EXCLUDED.input, output = NULL, custom_status = NULL, failure = NULL,
            created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
            completed_at = NULL, scheduled_start_at = EXCLUDED.scheduled_start_at,
            parent = EXCLUDED.parent, parent_instance_id = EXCLUDED.parent_instance_id,
            tags = EXCLUDED.tags, history_len = 0, epoch = i.epoch + 1, locked_until = NULL
        WHERE i.status = ANY($11::text[])
        RETURNING i.instance_id
    ), old_history AS (
        DELETE FROM {hub}.history WHERE instance_id IN (SELECT instance_id FROM created)
    ), old_messages AS (
        DELETE FROM {hub}.messages WHERE instance_id IN (SELECT instance_id FROM created)
    ), old_activities AS (
        DELETE FROM {hub}.activities WHERE instance_id IN (SELECT instance_id FROM created)
    ), started AS (
        INSERT INTO {hub}.messages (instance_id, execution_id, event, visible_at)
        SELECT instance_id, $4::text, $12::text, $13::timestamptz FROM created
    ), conflict_target AS (
        SELECT instance_id FROM {hub}.instances
        WHERE instance_id = $14::text AND status NOT IN ",
    terminal!(),
    " FOR SHARE
    ), conflict AS (
        INSERT INTO {hub}.messages (instance_id, execution_id, timer_id, event, visible_at)
        SELECT instance_id, $15::text, $16::integer, $17::text, $18::timestamptz
        FROM conflict_target WHERE NOT EXISTS (SELECT 1 FROM created)
    )
    SELECT count(*) FROM created"
);

/// The arguments of [`CREATE`], owned so a pipeline can borrow them.
#[derive(Debug)]
pub(crate) struct CreateArgs {
    instance_id: String,
    name: String,
    version: Option<String>,
    execution_id: String,
    input: Option<String>,
    now: DateTime<Utc>,
    scheduled_start_at: Option<DateTime<Utc>>,
    parent: Option<String>,
    parent_instance_id: Option<String>,
    tags: Option<String>,
    replace: Vec<String>,
    start_event: String,
    start_visible_at: DateTime<Utc>,
    conflict: MessageArgs,
}

/// One message as statement arguments (all `None` for "no message").
#[derive(Debug, Default)]
pub(crate) struct MessageArgs {
    pub instance_id: Option<String>,
    pub execution_id: Option<String>,
    pub timer_id: Option<i32>,
    pub event: Option<String>,
    pub visible_at: Option<DateTime<Utc>>,
}

/// The timer a `TimerFired` message is for, kept in a column so cancelling it is a lookup.
pub(crate) fn timer_id(message: &NewMessage) -> Option<i32> {
    match message.event.kind {
        EventKind::TimerFired { timer_id, .. } => Some(timer_id),
        _ => None,
    }
}

impl MessageArgs {
    pub fn new(message: &NewMessage, now: DateTime<Utc>) -> Self {
        MessageArgs {
            instance_id: Some(message.instance_id.clone()),
            execution_id: message.execution_id.clone(),
            timer_id: timer_id(message),
            event: Some(to_json(&message.event)),
            visible_at: Some(message.visible_at.unwrap_or(now)),
        }
    }
}

impl CreateArgs {
    pub fn new(new: &NewInstance, now: DateTime<Utc>, on_conflict: Option<&NewMessage>) -> Self {
        let replace = match &new.if_exists {
            IfExists::Fail => Vec::new(),
            IfExists::ReplaceIf(statuses) => statuses.iter().map(|s| s.as_str().into()).collect(),
        };
        CreateArgs {
            instance_id: new.instance_id.clone(),
            name: new.name.clone(),
            version: new.version.clone(),
            execution_id: new.execution_id.clone(),
            input: new.input.clone(),
            now,
            scheduled_start_at: new.scheduled_start_at,
            parent: opt_json(&new.parent),
            parent_instance_id: new
                .parent
                .as_ref()
                .map(|p| p.orchestration_instance.instance_id.clone()),
            tags: (!new.tags.is_empty()).then(|| to_json(&new.tags)),
            replace,
            start_event: to_json(&new.started_event(now)),
            start_visible_at: new.scheduled_start_at.unwrap_or(now),
            conflict: on_conflict
                .map(|m| MessageArgs::new(m, now))
                .unwrap_or_default(),
        }
    }

    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    pub fn params(&self) -> [&(dyn ToSql + Sync); 18] {
        let c = &self.conflict;
        [
            &self.instance_id,
            &self.name,
            &self.version,
            &self.execution_id,
            &self.input,
            &self.now,
            &self.scheduled_start_at,
            &self.parent,
            &self.parent_instance_id,
            &self.tags,
            &self.replace,
            &self.start_event,
            &self.start_visible_at,
            &c.instance_id,
            &c.execution_id,
            &c.timer_id,
            &c.event,
            &c.visible_at,
        ]
    }
}

pub(crate) async fn create_instance(
    store: &PostgresStore,
    new: NewInstance,
) -> StoreResult<((), Effects)> {
    let args = CreateArgs::new(&new, store.now(), None);
    let client = store.conn().await?;
    let statement = store.prepare(&client, CREATE).await?;
    let created: i64 = client
        .query_one(&statement, &args.params())
        .await
        .map_err(db)?
        .get(0);
    if created == 0 {
        return Err(StoreError::AlreadyExists(new.instance_id));
    }
    Ok(((), Effects::work().changed(&new.instance_id)))
}
