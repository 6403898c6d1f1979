//! `GET /stats`: counts by status and work counters, for dashboards that poll and chart them.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use durable::RuntimeStatus;
use durable::core::metrics;

use super::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::model::{ProcessCounters, Stats};

/// Instances by status and queue depths (from the store, so every process sharing it counts),
/// and the work this process has done since it started. Poll it twice and divide the
/// difference of a counter by the time between to get a rate.
#[utoipa::path(
    get,
    path = "/runtime/webhooks/durabletask/stats",
    tag = "instances",
    responses(
        (status = 200, description = "Counts now", body = Stats),
        (status = 503, description = "The store is unreachable", body = ErrorBody),
    )
)]
pub(crate) async fn stats(State(state): State<AppState>) -> Result<Json<Stats>, ApiError> {
    let queues = state
        .client
        .store()
        .queue_stats()
        .await
        .map_err(durable::ClientError::from)?;
    // Every status is present, so a chart's series never appear or vanish.
    let mut by_status: BTreeMap<String, u64> = RuntimeStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), 0))
        .collect();
    for (status, count) in queues.instances_by_status {
        *by_status.entry(status.as_str().to_string()).or_default() += count;
    }
    let m = metrics::global();
    Ok(Json(Stats {
        instances_by_status: by_status,
        entities: queues.entities,
        orchestration_backlog: queues.orchestration_backlog,
        activity_backlog: queues.activity_backlog,
        pending_timers: queues.pending_timers,
        process: ProcessCounters {
            turns: m.turns.get(),
            activities_completed: m.activities_completed.get(),
            activities_failed: m.activities_failed.get(),
        },
    }))
}
