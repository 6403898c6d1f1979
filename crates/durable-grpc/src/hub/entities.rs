//! Entity batches for remote workers: planned by the engine's [`entity::prepare`], sent as
//! `entityRequestV2`, and committed from the worker's `EntityBatchResult` by [`entity::apply`],
//! the same two halves the native worker runs its Rust entities between.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use durable::FailureDetails;
use durable::StoreError;
use durable::core::entity::{self, BatchOutcome};
use durable::core::limits::DEFAULT_MAX_DELIVERIES;
use durable::core::work::OrchestrationItem;

use super::{EntityTurn, Hub, Kind, Work, WorkKey, parse_token};
use crate::convert::{entity_outcome, event_to_proto};
use crate::error::{RpcError, RpcResult};
use crate::proto;

/// A rejected batch is offered again after this delay.
const RETRY_REJECTED: Duration = Duration::from_secs(1);

/// Plans a claimed entity's batch and offers it to the streams; batches with nothing to run
/// (only lock traffic, or everything waits for a lock) and poison are committed here.
pub(super) fn dispatch(hub: &Arc<Hub>, item: OrchestrationItem) {
    let batch = entity::prepare(&item, Utc::now());
    let turn = Box::new(EntityTurn { item, batch });
    let key = WorkKey::Instance(turn.item.lease.instance_id.clone());
    let deliveries = hub.counted_deliveries(&key, turn.item.delivery_count());
    let hub = hub.clone();
    if deliveries > DEFAULT_MAX_DELIVERIES {
        tokio::spawn(async move {
            hub.fail_entity(*turn, entity::poison_failure(deliveries))
                .await;
            hub.finished(&key);
        });
        return;
    }
    if turn.batch.operations.is_empty() {
        tokio::spawn(async move {
            let outcome = BatchOutcome::unchanged(&turn.batch);
            if let Err(e) = hub.commit_entity(*turn, outcome).await {
                tracing::debug!(error = %e, "could not commit an entity batch without operations");
            }
        });
        return;
    }
    super::dispatch::offer(hub, Work::Entity(turn));
}

/// The work item of a held batch.
pub(super) fn request(turn: &EntityTurn) -> proto::EntityRequest {
    proto::EntityRequest {
        instance_id: turn.item.instance.instance_id.clone(),
        execution_id: turn.item.instance.execution_id.clone(),
        entity_state: turn.batch.state.clone(),
        operation_requests: turn
            .batch
            .operations
            .iter()
            .map(|op| event_to_proto(&op.event))
            .collect(),
    }
}

/// `CompleteEntityTask`: the worker's results become the batch's commit. A result that does not
/// fit its batch is INVALID_ARGUMENT, changes nothing, and the batch is dispatched again.
pub(crate) async fn complete_entity(hub: &Arc<Hub>, r: proto::EntityBatchResult) -> RpcResult<()> {
    parse_token(&r.completion_token, Kind::Entity)?;
    let Some(Work::Entity(turn)) = hub.take(&r.completion_token) else {
        return Ok(());
    };
    let outcome = match entity_outcome(r, &turn.batch, Utc::now()) {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::warn!(error = ?e, entity = %turn.batch.id, "rejected an entity batch result; the batch will be dispatched again");
            hub.give_back(Work::Entity(turn), Some(RETRY_REJECTED))
                .await;
            return Err(e);
        }
    };
    let key = WorkKey::Instance(turn.item.lease.instance_id.clone());
    match hub.commit_entity(*turn, outcome).await {
        Ok(()) | Err(CommitError::Store(StoreError::StaleLease(_), _)) => {
            hub.finished(&key);
            Ok(())
        }
        Err(CommitError::Store(e, turn)) => {
            hub.give_back(Work::Entity(turn), Some(Duration::from_millis(200)))
                .await;
            Err(e.into())
        }
        Err(CommitError::Mismatch(e)) => Err(RpcError::bad(e.to_string())),
    }
}

#[derive(Debug, thiserror::Error)]
pub(super) enum CommitError {
    #[error("{0}")]
    Store(StoreError, Box<EntityTurn>),
    #[error("{0}")]
    Mismatch(#[from] entity::ResultCountMismatch),
}

impl Hub {
    /// Commits a batch with its outcome.
    pub(super) async fn commit_entity(
        &self,
        turn: EntityTurn,
        outcome: BatchOutcome,
    ) -> Result<(), CommitError> {
        let (commit, stats) = entity::apply(&turn.item, turn.batch.clone(), outcome, Utc::now())?;
        tracing::trace!(entity = %turn.batch.id, operations = stats.operations, failed = stats.failed, "remote entity batch");
        self.store
            .commit_turn(commit)
            .await
            .map_err(|e| CommitError::Store(e, Box::new(turn)))
    }

    /// Fails every operation of a batch without running it (poison, a work item over the
    /// message limit): callers receive the failure, the state stays as it was.
    pub(super) async fn fail_entity(&self, turn: EntityTurn, failure: FailureDetails) {
        let outcome = BatchOutcome::all_failed(&turn.batch, failure);
        let id = turn.batch.id.to_string();
        if let Err(e) = self.commit_entity(turn, outcome).await {
            tracing::warn!(entity = %id, error = %e, "could not fail an entity batch");
        }
    }
}
