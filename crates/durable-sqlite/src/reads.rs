//! Read-only queries; they run on a reader connection (or on the writer for in-memory
//! databases).

use chrono::{DateTime, Utc};
use durable_core::event::HistoryEvent;
use durable_core::instance::{InstanceQuery, InstanceState, Page, PurgeFilter, decode_cursor};
use durable_core::status::RuntimeStatus;
use durable_core::work::QueueStats;
use durable_store::StoreResult;
use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};

use crate::codec::{INSTANCE_COLUMNS, from_json, instance_row, micros, sql, time};

pub(crate) fn read_history(conn: &Connection, id: &str) -> StoreResult<Vec<HistoryEvent>> {
    let chunks: Vec<String> = conn
        .prepare_cached("SELECT events FROM history WHERE instance_id = ?1 ORDER BY seq")
        .and_then(|mut s| s.query_map([id], |r| r.get(0))?.collect())
        .map_err(sql)?;
    let mut events = Vec::new();
    for chunk in chunks {
        let mut part: Vec<HistoryEvent> = from_json(&chunk)?;
        events.append(&mut part);
    }
    Ok(events)
}

fn status_list(statuses: &[RuntimeStatus]) -> String {
    let quoted: Vec<String> = statuses
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    quoted.join(",")
}

pub(crate) fn query_instances(
    conn: &Connection,
    q: &InstanceQuery,
) -> StoreResult<Page<InstanceState>> {
    let mut sql_text = format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE 1=1");
    let mut args: Vec<Value> = Vec::new();
    if !q.statuses.is_empty() {
        sql_text += &format!(" AND status IN ({})", status_list(&q.statuses));
    }
    if let Some(from) = q.created_from {
        args.push(Value::Integer(micros(from)));
        sql_text += &format!(" AND created_at >= ?{}", args.len());
    }
    if let Some(to) = q.created_to {
        args.push(Value::Integer(micros(to)));
        sql_text += &format!(" AND created_at < ?{}", args.len());
    }
    if let Some(name) = &q.name {
        args.push(Value::Text(name.clone()));
        sql_text += &format!(" AND name = ?{}", args.len());
    }
    if let Some(prefix) = &q.instance_id_prefix {
        args.push(Value::Text(prefix.clone()));
        let n = args.len();
        // substr keeps the comparison exact (LIKE would treat % and _ as wildcards).
        sql_text += &format!(" AND substr(instance_id, 1, length(?{n})) = ?{n}");
    }
    if let Some((at, id)) = q.continuation_token.as_deref().and_then(decode_cursor) {
        args.push(Value::Integer(micros(at)));
        args.push(Value::Text(id));
        let n = args.len();
        sql_text += &format!(" AND (created_at, instance_id) > (?{}, ?{n})", n - 1);
    }
    let size = q.page_size.unwrap_or(100).max(1);
    sql_text += &format!(" ORDER BY created_at, instance_id LIMIT {}", size + 1);
    let rows: Vec<StoreResult<InstanceState>> = conn
        .prepare(&sql_text)
        .and_then(|mut s| s.query_map(params_from_iter(args), instance_row)?.collect())
        .map_err(sql)?;
    let items = rows.into_iter().collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::of_instances(items, size, q.fetch_payloads))
}

pub(crate) fn purge_candidates(conn: &Connection, f: &PurgeFilter) -> StoreResult<Vec<String>> {
    let statuses: Vec<RuntimeStatus> = if f.statuses.is_empty() {
        RuntimeStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect()
    } else {
        f.statuses
            .iter()
            .copied()
            .filter(|s| s.is_terminal())
            .collect()
    };
    if statuses.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql_text = format!(
        "SELECT instance_id FROM instances WHERE status IN ({})",
        status_list(&statuses)
    );
    let mut args: Vec<Value> = Vec::new();
    if let Some(from) = f.created_from {
        args.push(Value::Integer(micros(from)));
        sql_text += &format!(" AND created_at >= ?{}", args.len());
    }
    if let Some(to) = f.created_to {
        args.push(Value::Integer(micros(to)));
        sql_text += &format!(" AND created_at < ?{}", args.len());
    }
    conn.prepare(&sql_text)
        .and_then(|mut s| s.query_map(params_from_iter(args), |r| r.get(0))?.collect())
        .map_err(sql)
}

pub(crate) fn queue_stats(conn: &Connection, now: DateTime<Utc>) -> StoreResult<QueueStats> {
    let now_us = micros(now);
    let (backlog, oldest): (i64, Option<i64>) = conn
        .query_row(
            "SELECT COUNT(DISTINCT m.instance_id), MIN(m.visible_at) FROM messages m \
             JOIN instances i ON i.instance_id = m.instance_id \
             WHERE m.visible_at <= ?1 AND (i.locked_until IS NULL OR i.locked_until <= ?1)",
            [now_us],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(sql)?;
    let timers: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM messages WHERE visible_at > ?1",
            [now_us],
            |r| r.get(0),
        )
        .map_err(sql)?;
    let (activities, oldest_activity): (i64, Option<i64>) = conn
        .query_row(
            "SELECT COUNT(*), MIN(visible_at) FROM activities WHERE visible_at <= ?1 \
             AND (locked_until IS NULL OR locked_until <= ?1)",
            [now_us],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(sql)?;
    let by_status: Vec<(String, i64)> = conn
        .prepare_cached("SELECT status, COUNT(*) FROM instances GROUP BY status")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .map_err(sql)?;
    Ok(QueueStats {
        orchestration_backlog: backlog as u64,
        oldest_orchestration_message_at: oldest.map(time),
        activity_backlog: activities as u64,
        oldest_activity_at: oldest_activity.map(time),
        pending_timers: timers as u64,
        instances_by_status: by_status
            .into_iter()
            .filter_map(|(s, n)| Some((s.parse().ok()?, n as u64)))
            .collect(),
    })
}

pub(crate) fn next_due(
    conn: &Connection,
    now: DateTime<Utc>,
) -> StoreResult<Option<DateTime<Utc>>> {
    let now_us = micros(now);
    let next: Option<i64> = conn
        .query_row(
            "SELECT MIN(t) FROM (SELECT MIN(visible_at) AS t FROM messages WHERE visible_at > ?1 \
             UNION ALL SELECT MIN(visible_at) FROM activities WHERE visible_at > ?1)",
            [now_us],
            |r| r.get(0),
        )
        .map_err(sql)?;
    Ok(next.map(time))
}
