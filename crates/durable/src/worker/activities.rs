//! The activity dispatcher: claims activity invocations, runs them (renewing their leases while
//! they run) and records their results.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use durable_core::failure::FailureDetails;
use durable_core::metrics;
use durable_core::registry::ActivityContext;
use durable_core::trace::{self, SpanRef};
use durable_core::work::{ActivityItem, ActivityResult};
use durable_store::StoreError;
use futures::FutureExt;
use tokio::sync::{mpsc, watch};

use super::{Shared, idle_wait};

const BATCH: usize = 64;

pub(crate) async fn run(
    shared: Arc<Shared>,
    mut handoff: mpsc::UnboundedReceiver<ActivityItem>,
    mut stopped: watch::Receiver<bool>,
) {
    let limit = shared.options.activity_concurrency.max(1);
    let permits = shared.activity_permits.clone();
    let mut backoff = Duration::from_millis(50);
    let (abandon_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let spawn = |item: ActivityItem, permit: tokio::sync::OwnedSemaphorePermit| {
        let shared = shared.clone();
        let abandon = abandon_tx.subscribe();
        tokio::spawn(async move {
            execute(&shared, item, abandon).await;
            drop(permit);
        });
    };
    while !*stopped.borrow() {
        // Activities claimed in-process by a turn commit come first: they are already leased.
        while let Ok(item) = handoff.try_recv() {
            let permit = permits.clone().acquire_owned().await.expect("never closed");
            spawn(item, permit);
        }
        let available = permits.available_permits();
        if available == 0 {
            tokio::select! {
                p = permits.clone().acquire_owned() => drop(p),
                _ = stopped.changed() => {}
            }
            continue;
        }
        let lock = shared.options.lock_duration;
        match shared
            .store
            .fetch_activity_items(available.min(BATCH), lock, &shared.activity_filter)
            .await
        {
            Ok(items) if items.is_empty() => {
                let notifier = shared.store.notifier();
                idle_wait(&shared, &mut stopped, notifier.wait_activity_work()).await;
            }
            Ok(items) => {
                backoff = Duration::from_millis(50);
                for item in items {
                    let permit = permits.clone().acquire_owned().await.expect("never closed");
                    spawn(item, permit);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "fetching activity work failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    // Hand-offs that never started go back to the store for another worker.
    handoff.close();
    while let Ok(item) = handoff.try_recv() {
        let _ = shared.store.abandon_activity_item(&item.lease, None).await;
    }
    let grace = shared.options.shutdown_grace;
    if tokio::time::timeout(grace, permits.acquire_many(limit as u32))
        .await
        .is_err()
    {
        // Still running after the grace period: give their leases back so others take over now.
        let _ = abandon_tx.send(());
        let _ =
            tokio::time::timeout(Duration::from_secs(5), permits.acquire_many(limit as u32)).await;
    }
}

async fn execute(
    shared: &Shared,
    item: ActivityItem,
    mut abandon: tokio::sync::broadcast::Receiver<()>,
) {
    let a = &item.activity;
    let max = shared.options.max_deliveries;
    let began = std::time::Instant::now();
    if item.delivery_count > 1 {
        metrics::global().lease_takeovers.inc();
    }
    let result = if item.delivery_count > max {
        metrics::global().poisoned_activities.inc();
        tracing::error!(
            target: "durable::lifecycle",
            instance_id = %a.instance_id,
            execution_id = %a.execution_id,
            name = %a.name,
            seq = a.task_id,
            is_replay = false,
            event = "poisoned",
            delivery = item.delivery_count,
            "activity poisoned"
        );
        ActivityResult::Failed(
            FailureDetails::new(
                "PoisonMessage",
                format!(
                    "activity '{}' was delivered {} times without completing (the worker crashed or timed out each time); it was failed after {max} deliveries",
                    a.name, item.delivery_count
                ),
            )
            .non_retriable(),
        )
    } else if let Some(handler) = shared.registry.activity(&a.name) {
        let ctx = ActivityContext {
            instance_id: a.instance_id.clone(),
            execution_id: a.execution_id.clone(),
            task_id: a.task_id,
            name: a.name.clone(),
            delivery: item.delivery_count,
        };
        let run = AssertUnwindSafe(handler.run(ctx, a.input.clone())).catch_unwind();
        let renew_every = shared.options.lock_duration / 3;
        let mut renew =
            tokio::time::interval_at(tokio::time::Instant::now() + renew_every, renew_every);
        tokio::pin!(run);
        loop {
            tokio::select! {
                out = &mut run => break match out {
                    Ok(Ok(result)) => ActivityResult::Completed(result),
                    Ok(Err(details)) => ActivityResult::Failed(details),
                    Err(panic) => ActivityResult::Failed(FailureDetails::panicked(&format!("activity '{}'", a.name), &*panic)),
                },
                _ = renew.tick() => {
                    if let Err(e) = shared.store.renew_activity_lease(&item.lease, shared.options.lock_duration).await {
                        tracing::warn!(activity = %a.name, error = %e, "could not renew the activity lease");
                    }
                }
                _ = abandon.recv() => {
                    tracing::info!(activity = %a.name, instance_id = %a.instance_id, "shutting down: giving the activity back");
                    let _ = shared.store.abandon_activity_item(&item.lease, None).await;
                    return;
                }
            }
        }
    } else {
        let names = shared.registry.activity_names().join(", ");
        ActivityResult::Failed(
            FailureDetails::new(
                "ActivityNotFound",
                format!(
                    "no activity named '{}' is registered (registered: {names})",
                    a.name
                ),
            )
            .non_retriable(),
        )
    };
    if let Some(exporter) = &shared.options.spans {
        exporter.export(activity_span(&item, &result, began.elapsed()));
    }
    let m = metrics::global();
    m.activity_seconds.observe_duration(began.elapsed());
    let (counter, event) = match &result {
        ActivityResult::Completed(_) => (&m.activities_completed, "activity_completed"),
        ActivityResult::Failed(_) => (&m.activities_failed, "activity_failed"),
    };
    counter.inc();
    tracing::debug!(
        target: "durable::lifecycle",
        instance_id = %a.instance_id,
        execution_id = %a.execution_id,
        name = %a.name,
        seq = a.task_id,
        is_replay = false,
        event,
        "activity finished"
    );
    match shared.store.complete_activity(&item.lease, result).await {
        Ok(()) => {}
        Err(StoreError::StaleLease(_)) => {
            tracing::info!(activity = %a.name, instance_id = %a.instance_id, "activity result dropped: its lease was taken over");
        }
        Err(e) => {
            tracing::warn!(activity = %a.name, error = %e, "could not record the activity result; it will run again");
            let _ = shared
                .store
                .abandon_activity_item(&item.lease, Some(Duration::from_secs(1)))
                .await;
        }
    }
}

/// The span of one activity run, a child of the span that scheduled it.
fn activity_span(
    item: &ActivityItem,
    result: &ActivityResult,
    took: Duration,
) -> crate::spans::FinishedSpan {
    let a = &item.activity;
    let parent = a.trace_context.as_ref().and_then(SpanRef::from_context);
    let end = std::time::SystemTime::now();
    crate::spans::FinishedSpan {
        span: SpanRef {
            trace_id: parent.map_or_else(
                || trace::execution_trace_id(&a.instance_id, &a.execution_id),
                |p| p.trace_id,
            ),
            span_id: trace::random_span_id(),
            sampled: parent.is_none_or(|p| p.sampled),
        },
        parent_span_id: parent.map(|p| p.span_id),
        name: format!("activity {}", a.name),
        start: end - took,
        end,
        attributes: vec![
            ("durable.instance_id", a.instance_id.clone()),
            ("durable.task_id", a.task_id.to_string()),
            ("durable.delivery", item.delivery_count.to_string()),
        ],
        error: match result {
            ActivityResult::Failed(f) => Some(f.to_string()),
            ActivityResult::Completed(_) => None,
        },
    }
}
