//! The orchestration dispatcher: claims turns, runs them on cached or replayed orchestrations and
//! commits the result.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use durable_core::Replayer;
use durable_core::action::{Action, ActionKind, TurnOutput};
use durable_core::event::{EventKind, HistoryEvent};
use durable_core::failure::FailureDetails;
use durable_core::status::OrchestrationStatus;
use durable_core::turn::{consume_only, plan_turn, prepare_turn, rewind_history};
use durable_core::work::OrchestrationItem;
use durable_store::StoreError;
use tokio::sync::{Semaphore, watch};

use durable_core::metrics;
use durable_core::trace::{self, SpanRef};

use crate::spans::FinishedSpan;

use super::cache::Live;
use super::lifecycle;
use super::{Shared, UnknownOrchestrations, idle_wait};

/// Items claimed per store round trip.
const BATCH: usize = 64;

pub(crate) async fn run(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let limit = shared.options.orchestration_concurrency.max(1);
    let permits = Arc::new(Semaphore::new(limit));
    let mut backoff = Duration::from_millis(50);
    while !*stopped.borrow() {
        let available = permits.available_permits();
        if available == 0 {
            tokio::select! {
                p = permits.clone().acquire_owned() => drop(p),
                _ = stopped.changed() => {}
            }
            continue;
        }
        shared.cache.expire();
        let lock = shared.options.lock_duration;
        match shared
            .store
            .fetch_orchestration_items(available.min(BATCH), lock, &shared.orchestration_filter)
            .await
        {
            Ok(items) if items.is_empty() => {
                let notifier = shared.store.notifier();
                idle_wait(&shared, &mut stopped, notifier.wait_orchestration_work()).await;
            }
            Ok(items) => {
                backoff = Duration::from_millis(50);
                for item in items {
                    let permit = permits.clone().acquire_owned().await.expect("never closed");
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        process(&shared, item).await;
                        drop(permit);
                    });
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "fetching orchestration work failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    let grace = shared.options.shutdown_grace;
    let _ = tokio::time::timeout(grace, permits.acquire_many(limit as u32)).await;
}

fn complete(
    status: OrchestrationStatus,
    result: Option<String>,
    failure: Option<FailureDetails>,
) -> TurnOutput {
    TurnOutput::ending(-1, status, result, failure)
}

fn fail(error_type: &str, message: String) -> TurnOutput {
    let details = FailureDetails::new(error_type, message).non_retriable();
    complete(OrchestrationStatus::Failed, None, Some(details))
}

/// What a turn produced, and whether its replayer can be cached afterwards.
struct Ran {
    output: TurnOutput,
    live: Option<Replayer>,
    rewind_children: Vec<String>,
    span: Option<ExecutionSpan>,
}

impl Ran {
    fn output(output: TurnOutput) -> Self {
        Ran {
            output,
            live: None,
            rewind_children: Vec::new(),
            span: None,
        }
    }
}

/// The span of the execution a turn ran in: its id is derived from the instance and
/// execution, so every process and every replay agree on it.
struct ExecutionSpan {
    span: SpanRef,
    parent: Option<[u8; 8]>,
    start: chrono::DateTime<Utc>,
}

impl ExecutionSpan {
    fn of(replayer: &Replayer, instance_id: &str, execution_id: &str) -> Option<Self> {
        let (start, context) = replayer.execution_start()?;
        let parent = context.as_ref().and_then(SpanRef::from_context);
        let span = SpanRef {
            trace_id: parent.map_or_else(
                || trace::execution_trace_id(instance_id, execution_id),
                |p| p.trace_id,
            ),
            span_id: trace::execution_span_id(instance_id, execution_id),
            sampled: parent.is_none_or(|p| p.sampled),
        };
        Some(ExecutionSpan {
            span,
            parent: parent.map(|p| p.span_id),
            start,
        })
    }

    /// Calls this turn schedules carry the execution's span as their parent.
    fn stamp(&self, output: &mut TurnOutput) {
        for action in &mut output.actions {
            match &mut action.kind {
                ActionKind::ScheduleTask {
                    parent_trace_context,
                    ..
                }
                | ActionKind::CreateSubOrchestration {
                    parent_trace_context,
                    ..
                } if parent_trace_context.is_none() => {
                    *parent_trace_context = Some(self.span.to_context());
                }
                _ => {}
            }
        }
    }

    fn finish(
        self,
        shared: &Shared,
        item: &OrchestrationItem,
        update: &durable_core::work::InstanceUpdate,
    ) {
        let Some(exporter) = &shared.options.spans else {
            return;
        };
        let inst = &item.instance;
        exporter.export(FinishedSpan {
            span: self.span,
            parent_span_id: self.parent,
            name: format!("orchestration {}", inst.name),
            start: self.start.into(),
            end: std::time::SystemTime::now(),
            attributes: vec![
                ("durable.instance_id", inst.instance_id.clone()),
                ("durable.execution_id", inst.execution_id.clone()),
                ("durable.status", update.status.to_string()),
            ],
            error: update.failure.as_ref().map(|f| f.to_string()),
        });
    }
}

async fn process(shared: &Shared, item: OrchestrationItem) {
    if durable_core::entity::EntityId::is_entity(&item.lease.instance_id) {
        return super::entities::process(shared, item).await;
    }
    let id = item.lease.instance_id.clone();
    let now = Utc::now();
    let began = std::time::Instant::now();
    if item.delivery_count() > 1 {
        metrics::global().lease_takeovers.inc();
        lifecycle::lease_taken_over(&item);
    }
    let prepared = prepare_turn(&item, now);
    if prepared.new_events.is_empty() && prepared.consumed.is_empty() {
        // Nothing can be delivered yet (a first turn whose start is not visible): retry later.
        let _ = shared
            .store
            .abandon_orchestration_item(&item.lease, Some(Duration::from_millis(250)))
            .await;
        return;
    }
    let commit = if prepared.new_events.is_empty() {
        Ok((consume_only(&item, &prepared), None, Vec::new(), None))
    } else {
        match run_turn(shared, &item, &prepared.new_events).await {
            Err(e) => Err(e),
            Ok(None) => return,
            Ok(Some(ran)) => {
                let planned = plan_turn(&item, &prepared, ran.output, now, shared.options.limits)
                    .or_else(|e| {
                        let output = fail(
                            "EngineError",
                            format!("the turn could not be recorded: {e}"),
                        );
                        plan_turn(&item, &prepared, output, now, shared.options.limits)
                    });
                match planned {
                    Ok(commit) => Ok((commit, ran.live, ran.rewind_children, ran.span)),
                    Err(e) => Err(StoreError::Internal(e.to_string())),
                }
            }
        }
    };
    let (commit, live, rewind_children, span) = match commit {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(instance_id = %id, error = %e, "turn not run; releasing the instance");
            let _ = shared
                .store
                .abandon_orchestration_item(&item.lease, Some(Duration::from_secs(1)))
                .await;
            return;
        }
    };
    let execution_id = commit.instance.execution_id.clone();
    let history_len = match &commit.history {
        durable_core::work::HistoryWrite::Append { from, events } => from + events.len() as u32,
        durable_core::work::HistoryWrite::Replace { events, .. } => events.len() as u32,
    };
    lifecycle::turn_committed(&item, &prepared.new_events, &commit);
    let status = commit.instance.status;
    let ended = (status.is_terminal() || status == OrchestrationStatus::ContinuedAsNew)
        .then(|| commit.instance.clone());
    let claim = if commit.activities.is_empty() {
        0
    } else {
        shared
            .activity_permits
            .available_permits()
            .min(commit.activities.len())
    };
    let lock = shared.options.lock_duration;
    let committed = shared
        .store
        .commit_turn_and_claim(commit, claim, &shared.activity_filter, lock)
        .await;
    match committed {
        Ok(claimed) => {
            let m = metrics::global();
            m.turns.inc();
            m.turn_seconds.observe_duration(began.elapsed());
            if !claimed.is_empty() {
                for item in claimed {
                    let _ = shared.handoff.send(item);
                }
                shared.store.notifier().activity_work();
            }
            tracing::trace!(instance_id = %id, %status, "turn committed");
            if let (Some(span), Some(update)) = (span, &ended) {
                span.finish(shared, &item, update);
            }
            if let Some(replayer) = live.filter(|r| !r.is_finished()) {
                shared.cache.put(
                    id,
                    Live {
                        replayer,
                        execution_id,
                        history_len,
                    },
                );
            }
            for child in rewind_children {
                if let Err(e) = shared.client.rewind(&child, Some("parent rewound")).await {
                    tracing::warn!(instance_id = %child, error = %e, "could not rewind a failed sub-orchestration");
                }
            }
        }
        Err(StoreError::StaleLease(_)) => {
            metrics::global().stale_commits.inc();
            lifecycle::lease_lost(&item);
        }
        Err(e) => {
            tracing::warn!(instance_id = %id, error = %e, "commit failed; the turn will be retried");
            let _ = shared
                .store
                .abandon_orchestration_item(&item.lease, Some(Duration::from_millis(200)))
                .await;
        }
    }
}

/// Adds the unlocks of critical sections still open to an ending the orchestration's code did
/// not reach (its code would have released them).
async fn release_locks(
    shared: &Shared,
    item: &OrchestrationItem,
    mut output: TurnOutput,
) -> Result<TurnOutput, StoreError> {
    if item.history_len > 0 {
        let history = shared
            .store
            .read_history(&item.instance.instance_id)
            .await?;
        let unlocks = durable_core::entity::unlocks_owed(&history, &item.instance.instance_id);
        output.actions.splice(0..0, unlocks);
    }
    Ok(output)
}

/// Runs the orchestration over the new events. `Ok(None)` means the item was handed back.
async fn run_turn(
    shared: &Shared,
    item: &OrchestrationItem,
    new_events: &[HistoryEvent],
) -> Result<Option<Ran>, StoreError> {
    let inst = &item.instance;
    let max = shared.options.max_deliveries;
    if item.delivery_count() > max {
        shared.cache.remove(&inst.instance_id);
        metrics::global().poisoned_orchestrations.inc();
        lifecycle::poisoned(item);
        let reason = format!(
            "this turn was attempted {} times without completing (the process crashed, timed out or could not read the history each time); the instance was failed after {max} deliveries",
            item.delivery_count()
        );
        let output = fail("PoisonMessage", reason.clone());
        // A history that cannot be read (a corrupted row) must not keep the instance from
        // failing: it fails without the entity unlocks its history would have named.
        let output = match release_locks(shared, item, output).await {
            Ok(output) => output,
            Err(e) => fail(
                "PoisonMessage",
                format!("{reason}; its history cannot be read: {e}"),
            ),
        };
        return Ok(Some(Ran::output(output)));
    }
    for event in new_events {
        match &event.kind {
            EventKind::ExecutionTerminated { input, .. } => {
                shared.cache.remove(&inst.instance_id);
                let output = complete(OrchestrationStatus::Terminated, input.clone(), None);
                return Ok(Some(Ran::output(
                    release_locks(shared, item, output).await?,
                )));
            }
            EventKind::ExecutionRewound { .. } => {
                shared.cache.remove(&inst.instance_id);
                let past = shared.store.read_history(&inst.instance_id).await?;
                let (new_history, children) = rewind_history(&past, new_events);
                let output = TurnOutput {
                    actions: vec![Action {
                        id: -1,
                        kind: ActionKind::RewindOrchestration { new_history },
                    }],
                    ..Default::default()
                };
                return Ok(Some(Ran {
                    output,
                    live: None,
                    rewind_children: children,
                    span: None,
                }));
            }
            _ => {}
        }
    }
    let Some(handler) = shared.registry.orchestration(&inst.name) else {
        if shared.options.unknown_orchestrations == UnknownOrchestrations::Leave
            || shared.options.only_registered
        {
            let _ = shared
                .store
                .abandon_orchestration_item(&item.lease, Some(Duration::from_secs(5)))
                .await;
            return Ok(None);
        }
        let names = shared.registry.orchestration_names().join(", ");
        return Ok(Some(Ran::output(fail(
            "OrchestrationNotFound",
            format!(
                "no orchestration named '{}' is registered (registered: {names})",
                inst.name
            ),
        ))));
    };
    let mut replayer =
        match shared
            .cache
            .take(&inst.instance_id, &inst.execution_id, item.history_len)
        {
            Some(live) => live.replayer,
            None => {
                let history = if item.history_len == 0 {
                    Vec::new()
                } else {
                    shared.store.read_history(&inst.instance_id).await?
                };
                let mut r = Replayer::new(
                    handler.clone(),
                    &inst.instance_id,
                    &inst.execution_id,
                    &inst.name,
                );
                r.replay(&history);
                r
            }
        };
    let mut output = replayer.run_turn(new_events);
    let span = ExecutionSpan::of(&replayer, &inst.instance_id, &inst.execution_id);
    if let Some(span) = &span {
        span.stamp(&mut output);
    }
    Ok(Some(Ran {
        output,
        live: Some(replayer),
        rewind_children: Vec::new(),
        span,
    }))
}
