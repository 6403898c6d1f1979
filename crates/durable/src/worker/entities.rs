//! Entity turns: a batch of operations on one entity, committed like an orchestration turn.

use std::time::Duration;

use chrono::Utc;
use durable_core::entity;
use durable_core::metrics;
use durable_core::work::OrchestrationItem;
use durable_store::StoreError;

use super::Shared;
use super::lifecycle;

pub(crate) async fn process(shared: &Shared, item: OrchestrationItem) {
    let began = std::time::Instant::now();
    if item.delivery_count() > 1 {
        metrics::global().lease_takeovers.inc();
        lifecycle::lease_taken_over(&item);
    }
    let known = shared.registry.entity(&item.instance.name).is_some();
    if !known && shared.options.only_registered {
        // Another worker of the task hub (another language) may run this entity.
        let _ = shared
            .store
            .abandon_orchestration_item(&item.lease, Some(Duration::from_secs(5)))
            .await;
        return;
    }
    let poisoned = item.delivery_count() > shared.options.max_deliveries;
    if poisoned {
        metrics::global().poisoned_orchestrations.inc();
        lifecycle::poisoned(&item);
    }
    let (commit, stats) = entity::execute(&shared.registry, &item, Utc::now(), poisoned);
    tracing::trace!(
        entity = %item.instance.instance_id,
        operations = stats.operations,
        failed = stats.failed,
        "entity batch"
    );
    match shared.store.commit_turn(commit).await {
        Ok(()) => {
            let m = metrics::global();
            m.turns.inc();
            m.turn_seconds.observe_duration(began.elapsed());
        }
        Err(StoreError::StaleLease(_)) => {
            metrics::global().stale_commits.inc();
            lifecycle::lease_lost(&item);
        }
        Err(e) => {
            tracing::warn!(entity = %item.instance.instance_id, error = %e, "entity commit failed; the batch will be retried");
            let _ = shared
                .store
                .abandon_orchestration_item(&item.lease, Some(Duration::from_millis(200)))
                .await;
        }
    }
}
