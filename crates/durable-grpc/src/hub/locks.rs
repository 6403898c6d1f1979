//! Entity locks of remote orchestrations that end: the engine's `unlocks_owed`, as the native
//! worker applies it, added to the ending turn.

use chrono::Utc;
use durable::StoreError;
use durable::core::action::{Action, ActionKind};
use durable::core::entity::unlocks_owed;
use durable::core::event::HistoryEvent;
use durable::core::work::OrchestrationItem;

use super::Hub;

/// Whether a turn's actions end the execution (completion, failure, termination, continue-as-new).
pub(super) fn ends(actions: &[Action]) -> bool {
    actions
        .iter()
        .any(|a| matches!(a.kind, ActionKind::CompleteOrchestration { .. }))
}

impl Hub {
    /// The unlocks an ending execution still owes: one per entity of every critical section it
    /// requested (in its history or in this turn) and did not release, numbered after every id
    /// in use. The Python worker releases the sections it holds itself; a lock request still
    /// travelling when the orchestration ends is only released here.
    pub(super) async fn owed_unlocks(
        &self,
        item: &OrchestrationItem,
        actions: &[Action],
    ) -> Result<Vec<Action>, StoreError> {
        let id = &item.lease.instance_id;
        let mut events = if item.history_len > 0 {
            self.store.read_history(id).await?
        } else {
            Vec::new()
        };
        let now = Utc::now();
        events.extend(actions.iter().filter_map(|a| match &a.kind {
            ActionKind::SendEntityMessage { event } => {
                let mut e = HistoryEvent::unnumbered(now, event.clone());
                e.event_id = a.id;
                Some(e)
            }
            _ => None,
        }));
        let mut owed = unlocks_owed(&events, id);
        let next = events
            .iter()
            .map(|e| e.event_id)
            .chain(actions.iter().map(|a| a.id))
            .max()
            .unwrap_or(-1)
            + 1;
        for (i, action) in owed.iter_mut().enumerate() {
            action.id = next + i as i32;
        }
        Ok(owed)
    }
}
