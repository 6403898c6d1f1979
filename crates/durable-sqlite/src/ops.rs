//! Write operations, each run by the writer thread inside the batch transaction.

use chrono::{DateTime, Utc};
use durable_core::event::{EventKind, HistoryEvent};
use durable_core::instance::NewInstance;
use durable_core::status::RuntimeStatus;
use durable_core::work::{
    ActivityItem, ActivityLease, ActivityResult, HistoryWrite, InboxMessage, Lease, NameFilter,
    NewActivity, NewMessage, OrchestrationItem, SendOutcome, TurnCommit,
};
use durable_store::{StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension, params};

use crate::codec::{from_json, instance_columns, instance_row, micros, opt_json, sql, to_json};
use crate::writer::{Effects, Outcome};

const TERMINAL: &str = "('Completed','Failed','Terminated')";

fn status_of(conn: &Connection, id: &str) -> StoreResult<Option<RuntimeStatus>> {
    let status: Option<String> = conn
        .prepare_cached("SELECT status FROM instances WHERE instance_id = ?1")
        .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
        .map_err(sql)?;
    Ok(status.map(|s| s.parse().unwrap_or(RuntimeStatus::Running)))
}

pub(crate) fn delete_instance(conn: &Connection, id: &str) -> StoreResult<()> {
    for statement in [
        "DELETE FROM instances WHERE instance_id = ?1",
        "DELETE FROM history WHERE instance_id = ?1",
        "DELETE FROM messages WHERE instance_id = ?1",
        "DELETE FROM activities WHERE instance_id = ?1",
    ] {
        conn.prepare_cached(statement)
            .and_then(|mut s| s.execute([id]))
            .map_err(sql)?;
    }
    Ok(())
}

fn insert_message(conn: &Connection, msg: &NewMessage, now: DateTime<Utc>) -> StoreResult<()> {
    let timer_id = match msg.event.kind {
        EventKind::TimerFired { timer_id, .. } => Some(timer_id),
        _ => None,
    };
    conn.prepare_cached(
        "INSERT INTO messages (instance_id, execution_id, timer_id, event, visible_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            msg.instance_id,
            msg.execution_id,
            timer_id,
            to_json(&msg.event),
            micros(msg.visible_at.unwrap_or(now)),
        ])
    })
    .map_err(sql)?;
    Ok(())
}

/// Inserts a message unless its target is unknown or finished. Returns whether it was kept.
fn deliver(conn: &Connection, msg: &NewMessage, now: DateTime<Utc>) -> StoreResult<bool> {
    match status_of(conn, &msg.instance_id)? {
        Some(status) if !status.is_terminal() => {
            insert_message(conn, msg, now)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

fn create(conn: &Connection, new: &NewInstance, now: DateTime<Utc>) -> StoreResult<()> {
    if let Some(existing) = status_of(conn, &new.instance_id)? {
        if !new.if_exists.allows(existing) {
            return Err(StoreError::AlreadyExists(new.instance_id.clone()));
        }
        delete_instance(conn, &new.instance_id)?;
    }
    conn.prepare_cached(
        "INSERT INTO instances (instance_id, name, version, execution_id, status, input, created_at, \
         updated_at, scheduled_start_at, parent, parent_instance_id, tags) \
         VALUES (?1, ?2, ?3, ?4, 'Pending', ?5, ?6, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut s| {
        s.execute(params![
            new.instance_id,
            new.name,
            new.version,
            new.execution_id,
            new.input,
            micros(now),
            new.scheduled_start_at.map(micros),
            opt_json(&new.parent),
            new.parent
                .as_ref()
                .map(|p| p.orchestration_instance.instance_id.clone()),
            (!new.tags.is_empty()).then(|| to_json(&new.tags)),
        ])
    })
    .map_err(sql)?;
    insert_message(
        conn,
        &NewMessage {
            instance_id: new.instance_id.clone(),
            execution_id: Some(new.execution_id.clone()),
            event: new.started_event(now),
            visible_at: Some(new.scheduled_start_at.unwrap_or(now)),
        },
        now,
    )
}

pub(crate) fn create_instance(
    conn: &Connection,
    new: NewInstance,
    now: DateTime<Utc>,
) -> Outcome<()> {
    create(conn, &new, now)?;
    Ok(((), Effects::orchestrations().changed(&new.instance_id)))
}

pub(crate) fn send_message(
    conn: &Connection,
    msg: NewMessage,
    now: DateTime<Utc>,
) -> Outcome<SendOutcome> {
    let status = status_of(conn, &msg.instance_id)?
        .ok_or_else(|| StoreError::NotFound(msg.instance_id.clone()))?;
    if status.is_terminal() {
        return Ok((SendOutcome::InstanceTerminal, Effects::default()));
    }
    if status == RuntimeStatus::Pending
        && matches!(msg.event.kind, EventKind::ExecutionTerminated { .. })
    {
        conn.execute(
            "UPDATE instances SET scheduled_start_at = NULL WHERE instance_id = ?1",
            [&msg.instance_id],
        )
        .map_err(sql)?;
        conn.execute(
            "UPDATE messages SET visible_at = MIN(visible_at, ?2) WHERE instance_id = ?1",
            params![msg.instance_id, micros(now)],
        )
        .map_err(sql)?;
    }
    insert_message(conn, &msg, now)?;
    Ok((SendOutcome::Queued, Effects::orchestrations()))
}

/// An SQL condition on `column` for a name filter, with its arguments starting at `?first`.
fn name_condition(column: &str, filter: &NameFilter, first: usize) -> (String, Vec<String>) {
    let (op, names) = match filter {
        NameFilter::All => return ("1=1".into(), Vec::new()),
        NameFilter::Only(names) if names.is_empty() => return ("0=1".into(), Vec::new()),
        NameFilter::Except(names) if names.is_empty() => return ("1=1".into(), Vec::new()),
        NameFilter::Only(names) => ("IN", names),
        NameFilter::Except(names) => ("NOT IN", names),
    };
    let params: Vec<String> = (0..names.len())
        .map(|i| format!("?{}", first + i))
        .collect();
    (
        format!("{column} {op} ({})", params.join(",")),
        names.clone(),
    )
}

pub(crate) fn fetch_orchestration_items(
    conn: &Connection,
    max: usize,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
    filter: &NameFilter,
) -> Outcome<Vec<OrchestrationItem>> {
    let now_us = micros(now);
    let (names, name_args) = name_condition("i.name", filter, 3);
    let mut args: Vec<rusqlite::types::Value> = vec![now_us.into(), (max as i64).into()];
    args.extend(name_args.into_iter().map(Into::into));
    let ids: Vec<String> = conn
        .prepare_cached(&format!(
            "SELECT m.instance_id FROM messages m JOIN instances i ON i.instance_id = m.instance_id \
             WHERE m.visible_at <= ?1 \
               AND (i.locked_until IS NULL OR i.locked_until <= ?1) \
               AND i.status NOT IN {TERMINAL} \
               AND NOT (i.status = 'Pending' AND IFNULL(i.scheduled_start_at, 0) > ?1) \
               AND {names} \
             GROUP BY m.instance_id ORDER BY MIN(m.id) LIMIT ?2"
        ))
        .and_then(|mut s| {
            s.query_map(rusqlite::params_from_iter(args), |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(sql)?;
    let mut items = Vec::with_capacity(ids.len());
    for id in ids {
        let (instance, epoch, history_len) = conn
            .prepare_cached(concat!(
                "UPDATE instances SET epoch = epoch + 1, locked_until = ?2 WHERE instance_id = ?1 RETURNING ",
                instance_columns!(),
                ", epoch, history_len"
            ))
            .and_then(|mut s| {
                s.query_row(params![id, micros(until)], |r| {
                    Ok((instance_row(r)?, r.get::<_, i64>(15)?, r.get::<_, i64>(16)?))
                })
            })
            .map_err(sql)?;
        let mut messages: Vec<InboxMessage> = conn
            .prepare_cached(
                "UPDATE messages SET delivery_count = delivery_count + 1 \
                 WHERE instance_id = ?1 AND visible_at <= ?2 \
                 RETURNING id, execution_id, event, delivery_count",
            )
            .and_then(|mut s| {
                s.query_map(params![id, now_us], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, u32>(3)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(sql)?
            .into_iter()
            .map(|(id, execution_id, event, delivery_count)| {
                Ok(InboxMessage {
                    id,
                    execution_id,
                    event: from_json(&event)?,
                    delivery_count,
                })
            })
            .collect::<StoreResult<_>>()?;
        messages.sort_by_key(|m| m.id);
        items.push(OrchestrationItem {
            lease: Lease {
                instance_id: id,
                epoch: epoch as u64,
            },
            instance: instance?,
            history_len: history_len as u32,
            messages,
        });
    }
    Ok((items, Effects::default()))
}

fn check_lease(conn: &Connection, lease: &Lease) -> StoreResult<(u32, RuntimeStatus)> {
    let row: Option<(i64, i64, String)> = conn
        .prepare_cached("SELECT epoch, history_len, status FROM instances WHERE instance_id = ?1")
        .and_then(|mut s| {
            s.query_row([&lease.instance_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
        })
        .map_err(sql)?;
    match row {
        Some((epoch, len, status)) if epoch as u64 == lease.epoch => {
            Ok((len as u32, status.parse().unwrap_or(RuntimeStatus::Running)))
        }
        _ => Err(StoreError::StaleLease(lease.instance_id.clone())),
    }
}

fn insert_activity(conn: &Connection, a: &NewActivity, now: DateTime<Utc>) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO activities (instance_id, execution_id, task_id, name, version, input, tags, \
         trace_context, visible_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut s| {
        s.execute(params![
            a.instance_id,
            a.execution_id,
            a.task_id,
            a.name,
            a.version,
            a.input,
            (!a.tags.is_empty()).then(|| to_json(&a.tags)),
            opt_json(&a.trace_context),
            micros(now),
        ])
    })
    .map_err(sql)?;
    Ok(())
}

fn insert_history(
    conn: &Connection,
    id: &str,
    seq: u32,
    events: &[HistoryEvent],
) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    conn.prepare_cached("INSERT INTO history (instance_id, seq, events) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute(params![id, seq, to_json(&events)]))
        .map_err(sql)?;
    Ok(())
}

pub(crate) fn commit_turn(
    conn: &Connection,
    commit: TurnCommit,
    now: DateTime<Utc>,
) -> Outcome<()> {
    let id = commit.lease.instance_id.as_str();
    let (stored_len, _) = check_lease(conn, &commit.lease)?;
    let history_len = match &commit.history {
        HistoryWrite::Append { from, events } => {
            if *from != stored_len {
                return Err(StoreError::StaleLease(id.to_string()));
            }
            insert_history(conn, id, *from, events)?;
            from + events.len() as u32
        }
        HistoryWrite::Replace { events, .. } => {
            conn.execute("DELETE FROM history WHERE instance_id = ?1", [id])
                .map_err(sql)?;
            insert_history(conn, id, 0, events)?;
            events.len() as u32
        }
    };
    {
        let mut delete = conn
            .prepare_cached("DELETE FROM messages WHERE id = ?1 AND instance_id = ?2")
            .map_err(sql)?;
        for key in &commit.consumed {
            delete.execute(params![key, id]).map_err(sql)?;
        }
    }
    let u = &commit.instance;
    conn.prepare_cached(
        "UPDATE instances SET status = ?2, execution_id = ?3, version = ?4, input = ?5, output = ?6, \
         custom_status = ?7, failure = ?8, completed_at = ?9, updated_at = ?10, history_len = ?11, \
         locked_until = NULL WHERE instance_id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            id,
            u.status.as_str(),
            u.execution_id,
            u.version,
            u.input,
            u.output,
            u.custom_status,
            opt_json(&u.failure),
            u.completed_at.map(micros),
            micros(now),
            history_len,
        ])
    })
    .map_err(sql)?;

    let mut effects = Effects::default().changed(id);
    effects.activities = !commit.activities.is_empty();
    for a in &commit.activities {
        insert_activity(conn, a, now)?;
    }
    for child in &commit.children {
        match create(conn, &child.instance, now) {
            Ok(()) => effects.changed.push(child.instance.instance_id.clone()),
            Err(StoreError::AlreadyExists(_)) => {
                deliver(conn, &child.on_conflict, now)?;
            }
            Err(e) => return Err(e),
        }
    }
    effects.orchestrations = !commit.children.is_empty() || !commit.messages.is_empty();
    for msg in &commit.messages {
        deliver(conn, msg, now)?;
    }
    if !commit.cancelled_timers.is_empty() {
        let mut delete = conn
            .prepare_cached(
                "DELETE FROM messages WHERE instance_id = ?1 AND execution_id = ?2 AND timer_id = ?3",
            )
            .map_err(sql)?;
        for timer in &commit.cancelled_timers {
            delete
                .execute(params![id, u.execution_id, timer])
                .map_err(sql)?;
        }
    }
    if let Some(reason) = &commit.terminate_children {
        let children: Vec<String> = conn
            .prepare_cached(&format!(
                "SELECT instance_id FROM instances WHERE parent_instance_id = ?1 AND status NOT IN {TERMINAL}"
            ))
            .and_then(|mut s| s.query_map([id], |r| r.get(0))?.collect())
            .map_err(sql)?;
        for child in children {
            let terminate = EventKind::ExecutionTerminated {
                input: reason.clone(),
                recurse: true,
            };
            insert_message(
                conn,
                &NewMessage {
                    instance_id: child,
                    execution_id: None,
                    event: HistoryEvent::unnumbered(now, terminate),
                    visible_at: None,
                },
                now,
            )?;
            effects.orchestrations = true;
        }
    }
    if u.status.is_terminal() {
        conn.execute("DELETE FROM messages WHERE instance_id = ?1", [id])
            .map_err(sql)?;
        conn.execute(
            "DELETE FROM activities WHERE instance_id = ?1 AND locked_until IS NULL",
            [id],
        )
        .map_err(sql)?;
    }
    Ok(((), effects))
}

pub(crate) fn abandon_orchestration_item(
    conn: &Connection,
    lease: &Lease,
    retry_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Outcome<()> {
    check_lease(conn, lease)?;
    conn.execute(
        "UPDATE instances SET locked_until = NULL WHERE instance_id = ?1",
        [&lease.instance_id],
    )
    .map_err(sql)?;
    if let Some(at) = retry_at {
        conn.execute(
            "UPDATE messages SET visible_at = ?3 WHERE instance_id = ?1 AND visible_at <= ?2",
            params![lease.instance_id, micros(now), micros(at)],
        )
        .map_err(sql)?;
    }
    Ok(((), Effects::orchestrations()))
}

pub(crate) fn renew_orchestration_lease(
    conn: &Connection,
    lease: &Lease,
    until: DateTime<Utc>,
) -> Outcome<()> {
    let n = conn
        .prepare_cached(
            "UPDATE instances SET locked_until = ?3 WHERE instance_id = ?1 AND epoch = ?2",
        )
        .and_then(|mut s| {
            s.execute(params![
                lease.instance_id,
                lease.epoch as i64,
                micros(until)
            ])
        })
        .map_err(sql)?;
    if n == 0 {
        return Err(StoreError::StaleLease(lease.instance_id.clone()));
    }
    Ok(((), Effects::default()))
}

pub(crate) fn fetch_activity_items(
    conn: &Connection,
    max: usize,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
    filter: &NameFilter,
) -> Outcome<Vec<ActivityItem>> {
    let (names, name_args) = name_condition("name", filter, 4);
    let mut args: Vec<rusqlite::types::Value> = vec![
        micros(now).into(),
        (max as i64).into(),
        micros(until).into(),
    ];
    args.extend(name_args.into_iter().map(Into::into));
    let mut items: Vec<ActivityItem> = conn
        .prepare_cached(&format!(
            "UPDATE activities SET epoch = epoch + 1, delivery_count = delivery_count + 1, locked_until = ?3 \
             WHERE id IN (SELECT id FROM activities WHERE visible_at <= ?1 \
                          AND (locked_until IS NULL OR locked_until <= ?1) AND {names} \
                          ORDER BY id LIMIT ?2) \
             RETURNING id, epoch, delivery_count, instance_id, execution_id, task_id, name, version, \
                       input, tags, trace_context"
        ))
        .and_then(|mut s| {
            s.query_map(rusqlite::params_from_iter(args), |r| {
                let tags: Option<String> = r.get(9)?;
                let trace: Option<String> = r.get(10)?;
                Ok((
                    ActivityItem {
                        lease: ActivityLease {
                            activity_id: r.get(0)?,
                            epoch: r.get::<_, i64>(1)? as u64,
                        },
                        delivery_count: r.get(2)?,
                        activity: NewActivity {
                            instance_id: r.get(3)?,
                            execution_id: r.get(4)?,
                            task_id: r.get(5)?,
                            name: r.get(6)?,
                            version: r.get(7)?,
                            input: r.get(8)?,
                            tags: Default::default(),
                            trace_context: None,
                        },
                    },
                    tags,
                    trace,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(sql)?
        .into_iter()
        .map(|(mut item, tags, trace)| {
            item.activity.tags = tags.as_deref().map(from_json).transpose()?.unwrap_or_default();
            item.activity.trace_context = trace.as_deref().map(from_json).transpose()?;
            Ok(item)
        })
        .collect::<StoreResult<_>>()?;
    items.sort_by_key(|i| i.lease.activity_id);
    Ok((items, Effects::default()))
}

pub(crate) fn complete_activity(
    conn: &Connection,
    lease: &ActivityLease,
    result: ActivityResult,
    now: DateTime<Utc>,
) -> Outcome<()> {
    let row: Option<(String, String, i32)> = conn
        .prepare_cached(
            "DELETE FROM activities WHERE id = ?1 AND epoch = ?2 RETURNING instance_id, execution_id, task_id",
        )
        .and_then(|mut s| {
            s.query_row(params![lease.activity_id, lease.epoch as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
        })
        .map_err(sql)?;
    let (instance_id, execution_id, task_scheduled_id) =
        row.ok_or_else(|| StoreError::StaleLease(format!("activity {}", lease.activity_id)))?;
    let kind = match result {
        ActivityResult::Completed(result) => EventKind::TaskCompleted {
            task_scheduled_id,
            result,
        },
        ActivityResult::Failed(failure_details) => EventKind::TaskFailed {
            task_scheduled_id,
            failure_details,
        },
    };
    let msg = NewMessage {
        instance_id,
        execution_id: Some(execution_id),
        event: HistoryEvent::unnumbered(now, kind),
        visible_at: None,
    };
    let kept = deliver(conn, &msg, now)?;
    let effects = Effects {
        orchestrations: kept,
        ..Default::default()
    };
    Ok(((), effects))
}

pub(crate) fn update_activity_lease(
    conn: &Connection,
    lease: &ActivityLease,
    locked_until: Option<DateTime<Utc>>,
    visible_at: Option<DateTime<Utc>>,
) -> Outcome<()> {
    let n = conn
        .prepare_cached(
            "UPDATE activities SET locked_until = ?3, visible_at = IFNULL(?4, visible_at) \
             WHERE id = ?1 AND epoch = ?2",
        )
        .and_then(|mut s| {
            s.execute(params![
                lease.activity_id,
                lease.epoch as i64,
                locked_until.map(micros),
                visible_at.map(micros)
            ])
        })
        .map_err(sql)?;
    if n == 0 {
        return Err(StoreError::StaleLease(format!(
            "activity {}",
            lease.activity_id
        )));
    }
    let effects = Effects {
        activities: locked_until.is_none(),
        ..Default::default()
    };
    Ok(((), effects))
}

pub(crate) fn rewind_instance(
    conn: &Connection,
    id: &str,
    event: HistoryEvent,
    now: DateTime<Utc>,
) -> Outcome<()> {
    let status = status_of(conn, id)?.ok_or_else(|| StoreError::NotFound(id.to_string()))?;
    if status != RuntimeStatus::Failed {
        return Err(StoreError::InvalidState(format!(
            "instance '{id}' is {status}; only a Failed instance can be rewound"
        )));
    }
    let execution_id: String = conn
        .query_row(
            "UPDATE instances SET status = 'Running', output = NULL, failure = NULL, completed_at = NULL, \
             updated_at = ?2 WHERE instance_id = ?1 RETURNING execution_id",
            params![id, micros(now)],
            |r| r.get(0),
        )
        .map_err(sql)?;
    insert_message(
        conn,
        &NewMessage {
            instance_id: id.to_string(),
            execution_id: Some(execution_id),
            event,
            visible_at: None,
        },
        now,
    )?;
    Ok(((), Effects::orchestrations().changed(id)))
}

/// Deletes a finished instance (and its children, recursively). Returns how many.
pub(crate) fn purge(conn: &Connection, id: &str, recursive: bool) -> StoreResult<u64> {
    match status_of(conn, id)? {
        Some(s) if s.is_terminal() => {}
        _ => return Ok(0),
    }
    let mut count = 1;
    if recursive {
        let children: Vec<String> = conn
            .prepare_cached("SELECT instance_id FROM instances WHERE parent_instance_id = ?1")
            .and_then(|mut s| s.query_map([id], |r| r.get(0))?.collect())
            .map_err(sql)?;
        for child in children {
            count += purge(conn, &child, true)?;
        }
    }
    delete_instance(conn, id)?;
    Ok(count)
}

pub(crate) fn instance_by_id(
    conn: &Connection,
    id: &str,
) -> StoreResult<Option<durable_core::instance::InstanceState>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        instance_columns!(),
        " FROM instances WHERE instance_id = ?1"
    ))
    .and_then(|mut s| s.query_row([id], instance_row).optional())
    .map_err(sql)?
    .transpose()
}
