//! Committing a turn: one transaction, its statements pipelined (one round trip).
//!
//! The first statement updates the instance row only if the lease epoch (and, for an append,
//! the history length) still match, and raises `DU001` otherwise. The error aborts the
//! transaction, so the statements already sent behind it fail too and `COMMIT` rolls back:
//! a stale commit changes nothing. Multi-row parts (activities, messages) are single
//! statements over arrays.

use chrono::{DateTime, Utc};
use durable_core::event::{EventKind, HistoryEvent};
use durable_core::work::{HistoryWrite, NewActivity, NewMessage, TurnCommit};
use durable_store::{StoreError, StoreResult};
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use crate::create::{CREATE, CreateArgs, timer_id};
use crate::entity;
use crate::error::{db, is_stale};
use crate::pipeline::{self, Step, step};
use crate::rows::{opt_json, terminal, to_json};
use crate::{Effects, PostgresStore};

const FENCE_AND_UPDATE: &str = "
    WITH updated AS (
        UPDATE {hub}.instances SET status = $3, execution_id = $4, version = $5, input = $6,
            output = $7, custom_status = $8, failure = $9, completed_at = $10, updated_at = $11,
            history_len = $12, locked_until = NULL
        WHERE instance_id = $1 AND epoch = $2 AND ($13::integer IS NULL OR history_len = $13)
        RETURNING 1
    )
    SELECT {hub}.require_lease(EXISTS (SELECT 1 FROM updated), $1)";

const CLEAR_HISTORY: &str = "DELETE FROM {hub}.history WHERE instance_id = $1";

const APPEND_HISTORY: &str =
    "INSERT INTO {hub}.history (instance_id, seq, events) VALUES ($1, $2, $3)";

const CONSUME: &str = "DELETE FROM {hub}.messages WHERE instance_id = $1 AND id = ANY($2)";

/// `ORDER BY ord` keeps the ids (the claim order) in the order the turn scheduled them.
const INSERT_ACTIVITIES: &str = "
    INSERT INTO {hub}.activities (instance_id, execution_id, task_id, name, version, input, tags,
        trace_context, visible_at)
    SELECT a.instance_id, a.execution_id, a.task_id, a.name, a.version, a.input, a.tags,
        a.trace_context, $9::timestamptz
    FROM unnest($1::text[], $2::text[], $3::integer[], $4::text[], $5::text[], $6::text[],
                $7::text[], $8::text[])
        WITH ORDINALITY AS a(instance_id, execution_id, task_id, name, version, input, tags,
                             trace_context, ord)
    ORDER BY a.ord";

/// Messages to live targets, in order. Targets are share-locked (in id order, against
/// deadlocks between commits) so none finishes and empties its inbox underneath.
const INSERT_MESSAGES: &str = concat!(
    "WITH m AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::text[],
                             $5::timestamptz[])
            WITH ORDINALITY AS m(instance_id, execution_id, timer_id, event, visible_at, ord)
    ), live AS (
        SELECT instance_id FROM {hub}.instances
        WHERE instance_id IN (SELECT instance_id FROM m) AND status NOT IN ",
    terminal!(),
    "
        ORDER BY instance_id FOR SHARE
    )
    INSERT INTO {hub}.messages (instance_id, execution_id, timer_id, event, visible_at)
    SELECT m.instance_id, m.execution_id, m.timer_id, m.event, m.visible_at FROM m
    WHERE m.instance_id IN (SELECT instance_id FROM live)
    ORDER BY m.ord"
);

const CANCEL_TIMERS: &str = "
    DELETE FROM {hub}.messages
    WHERE instance_id = $1 AND execution_id = $2 AND timer_id = ANY($3)";

const TERMINATE_CHILDREN: &str = concat!(
    "WITH children AS (
        SELECT instance_id FROM {hub}.instances
        WHERE parent_instance_id = $1 AND status NOT IN ",
    terminal!(),
    "
        ORDER BY instance_id FOR SHARE
    )
    INSERT INTO {hub}.messages (instance_id, event, visible_at)
    SELECT instance_id, $2::text, $3::timestamptz FROM children ORDER BY instance_id"
);

/// A finished instance's inbox is emptied and its never-claimed activities dropped.
const FINISH: &str = "
    WITH dropped AS (
        DELETE FROM {hub}.activities WHERE instance_id = $1 AND locked_until IS NULL
    )
    DELETE FROM {hub}.messages WHERE instance_id = $1";

/// Activities as column arrays for [`INSERT_ACTIVITIES`].
#[derive(Debug, Default)]
struct ActivityColumns {
    instance_id: Vec<String>,
    execution_id: Vec<String>,
    task_id: Vec<i32>,
    name: Vec<String>,
    version: Vec<Option<String>>,
    input: Vec<Option<String>>,
    tags: Vec<Option<String>>,
    trace_context: Vec<Option<String>>,
}

impl ActivityColumns {
    fn new(activities: &[NewActivity]) -> Self {
        let mut c = ActivityColumns::default();
        for a in activities {
            c.instance_id.push(a.instance_id.clone());
            c.execution_id.push(a.execution_id.clone());
            c.task_id.push(a.task_id);
            c.name.push(a.name.clone());
            c.version.push(a.version.clone());
            c.input.push(a.input.clone());
            c.tags.push((!a.tags.is_empty()).then(|| to_json(&a.tags)));
            c.trace_context.push(opt_json(&a.trace_context));
        }
        c
    }
}

/// Messages as column arrays for [`INSERT_MESSAGES`].
#[derive(Debug, Default)]
struct MessageColumns {
    instance_id: Vec<String>,
    execution_id: Vec<Option<String>>,
    timer_id: Vec<Option<i32>>,
    event: Vec<String>,
    visible_at: Vec<DateTime<Utc>>,
}

impl MessageColumns {
    fn new(messages: &[NewMessage], now: DateTime<Utc>) -> Self {
        let mut c = MessageColumns::default();
        for m in messages {
            c.instance_id.push(m.instance_id.clone());
            c.execution_id.push(m.execution_id.clone());
            c.timer_id.push(timer_id(m));
            c.event.push(to_json(&m.event));
            c.visible_at.push(m.visible_at.unwrap_or(now));
        }
        c
    }
}

pub(crate) async fn commit_turn(
    store: &PostgresStore,
    commit: TurnCommit,
) -> StoreResult<((), Effects)> {
    let now = store.now();
    let id = commit.lease.instance_id.as_str();
    let u = &commit.instance;
    let epoch = commit.lease.epoch as i64;
    let (expected_len, clear, events, seq) = match &commit.history {
        HistoryWrite::Append { from, events } => (Some(*from as i32), false, events, *from as i32),
        HistoryWrite::Replace { events, .. } => (None, true, events, 0),
    };
    let history_len = seq + events.len() as i32;
    let history = (!events.is_empty()).then(|| durable_store::encode_history_row(events));
    let status = u.status.as_str();
    let failure = opt_json(&u.failure);
    let activities = ActivityColumns::new(&commit.activities);
    let messages = MessageColumns::new(&commit.messages, now);
    let (entity_ids, entity_names) =
        entity::targets(commit.messages.iter().map(|m| m.instance_id.as_str()));
    let children: Vec<CreateArgs> = commit
        .children
        .iter()
        .map(|c| CreateArgs::new(&c.instance, now, Some(&c.on_conflict)))
        .collect();
    let terminate = commit.terminate_children.as_ref().map(|reason| {
        let kind = EventKind::ExecutionTerminated {
            input: reason.clone(),
            recurse: true,
        };
        to_json(&HistoryEvent::unnumbered(now, kind))
    });
    let finished = u.status.is_terminal();

    let client = store.conn().await?;
    let pg: &Client = &client;
    let mut steps: Vec<Step<'_>> = Vec::new();
    let mut children_at = Vec::new();
    let fence = store.prepare(&client, FENCE_AND_UPDATE).await?;
    steps.push(step(
        pg,
        fence,
        vec![
            &id,
            &epoch,
            &status,
            &u.execution_id,
            &u.version,
            &u.input,
            &u.output,
            &u.custom_status,
            &failure,
            &u.completed_at,
            &now,
            &history_len,
            &expected_len,
        ],
    ));
    if clear {
        let st = store.prepare(&client, CLEAR_HISTORY).await?;
        steps.push(step(pg, st, vec![&id]));
    }
    if let Some(events) = &history {
        let st = store.prepare(&client, APPEND_HISTORY).await?;
        steps.push(step(pg, st, vec![&id, &seq, events]));
    }
    if !commit.consumed.is_empty() {
        let st = store.prepare(&client, CONSUME).await?;
        steps.push(step(pg, st, vec![&id, &commit.consumed]));
    }
    if !commit.activities.is_empty() {
        let a = &activities;
        let st = store.prepare(&client, INSERT_ACTIVITIES).await?;
        let params: Vec<&(dyn ToSql + Sync)> = vec![
            &a.instance_id,
            &a.execution_id,
            &a.task_id,
            &a.name,
            &a.version,
            &a.input,
            &a.tags,
            &a.trace_context,
            &now,
        ];
        steps.push(step(pg, st, params));
    }
    if !children.is_empty() {
        let st = store.prepare(&client, CREATE).await?;
        for child in &children {
            children_at.push(steps.len());
            steps.push(step(pg, st.clone(), child.params().to_vec()));
        }
    }
    if !entity_ids.is_empty() {
        let st = store.prepare(&client, entity::LOCK_FOR_SEND).await?;
        steps.push(step(pg, st, vec![&entity_ids]));
        let st = store.prepare(&client, entity::ENSURE).await?;
        steps.push(step(pg, st, vec![&entity_ids, &entity_names, &now]));
    }
    if !commit.messages.is_empty() {
        let m = &messages;
        let st = store.prepare(&client, INSERT_MESSAGES).await?;
        let params: Vec<&(dyn ToSql + Sync)> = vec![
            &m.instance_id,
            &m.execution_id,
            &m.timer_id,
            &m.event,
            &m.visible_at,
        ];
        steps.push(step(pg, st, params));
    }
    if !commit.cancelled_timers.is_empty() {
        let st = store.prepare(&client, CANCEL_TIMERS).await?;
        let params: Vec<&(dyn ToSql + Sync)> = vec![&id, &u.execution_id, &commit.cancelled_timers];
        steps.push(step(pg, st, params));
    }
    if let Some(event) = &terminate {
        let st = store.prepare(&client, TERMINATE_CHILDREN).await?;
        steps.push(step(pg, st, vec![&id, event, &now]));
    }
    if finished {
        let st = store.prepare(&client, FINISH).await?;
        steps.push(step(pg, st, vec![&id]));
    }

    let results = pipeline::transaction(pg, steps).await.map_err(|e| {
        if is_stale(&e) {
            StoreError::StaleLease(id.to_string())
        } else {
            db(e)
        }
    })?;

    let mut effects = Effects {
        // Messages that arrived during the turn are claimable again now that it is released.
        orchestrations: true,
        shared_orchestrations: !commit.messages.is_empty()
            || !commit.children.is_empty()
            || terminate.is_some(),
        activities: !commit.activities.is_empty(),
        changed: vec![id.to_string()],
    };
    for (child, at) in children.iter().zip(children_at) {
        let created: i64 = results[at].first().map_or(0, |r| r.get(0));
        if created > 0 {
            effects.changed.push(child.instance_id().to_string());
        }
    }
    Ok(((), effects))
}
