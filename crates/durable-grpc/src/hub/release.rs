//! Giving held items back to the store, or ending them with a failure.

use std::time::Duration;

use chrono::Utc;
use durable::FailureDetails;
use durable::RuntimeStatus;
use durable::core::action::TurnOutput;
use durable::core::turn::plan_turn;
use durable::core::work::{ActivityItem, ActivityResult};

use super::{Hub, Turn, Work, WorkKey};

/// Declined deliveries remembered at most (soft state: forgetting only makes poison stricter).
const MAX_DECLINED: usize = 100_000;

impl Hub {
    /// Gives an item back that was not run: a worker declined it (abandon), or it never reached
    /// one (no stream accepts it any more, the server stops). Unlike [`Hub::give_back`], this
    /// delivery does not count towards the poison limit, so a worker that rejects a version
    /// during a rolling upgrade does not fail the instance.
    pub async fn decline(&self, work: Work, delay: Option<Duration>) {
        {
            let mut declined = self.declined.lock();
            if declined.len() >= MAX_DECLINED {
                declined.clear();
            }
            *declined.entry(work.key()).or_default() += 1;
        }
        self.give_back(work, delay).await;
    }

    /// Deliveries of an item that count towards the poison limit.
    pub fn counted_deliveries(&self, key: &WorkKey, deliveries: u32) -> u32 {
        let declined = self.declined.lock().get(key).copied().unwrap_or(0);
        deliveries.saturating_sub(declined)
    }

    /// The item is done: its declined deliveries need no remembering.
    pub fn finished(&self, key: &WorkKey) {
        self.declined.lock().remove(key);
    }

    /// Releases the lease so the item is fetched again (after `delay`).
    pub async fn give_back(&self, work: Work, delay: Option<Duration>) {
        let result = match &work {
            Work::Turn(t) => {
                self.store
                    .abandon_orchestration_item(&t.item.lease, delay)
                    .await
            }
            Work::Activity(a) => self.store.abandon_activity_item(&a.lease, delay).await,
            Work::Entity(e) => {
                self.store
                    .abandon_orchestration_item(&e.item.lease, delay)
                    .await
            }
        };
        if let Err(e) = result {
            // The lease expires on its own; the item is fetched again then.
            tracing::debug!(error = %e, "could not give a work item back");
        }
    }

    /// Ends the instance with a failure instead of running the turn remotely (poison items, work
    /// items over the message limit), releasing the entity locks it still holds.
    pub async fn fail_turn(&self, turn: &Turn, error_type: &str, message: String) {
        let now = Utc::now();
        let details = FailureDetails::new(error_type, message).non_retriable();
        let mut output = TurnOutput::ending(-1, RuntimeStatus::Failed, None, Some(details));
        match self.owed_unlocks(&turn.item, &[]).await {
            Ok(unlocks) => drop(output.actions.splice(0..0, unlocks)),
            Err(e) => {
                tracing::warn!(instance_id = %turn.item.lease.instance_id, error = %e, "could not read the history for the locks to release")
            }
        }
        let planned = plan_turn(&turn.item, &turn.prepared, output, now, Default::default());
        let committed = match planned {
            Ok(commit) => self
                .store
                .commit_turn(commit)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = committed {
            tracing::warn!(instance_id = %turn.item.lease.instance_id, error = %e, "could not fail the instance");
        }
    }

    /// Ends an activity with a failure the orchestration receives as a task failure.
    pub async fn fail_activity(&self, item: &ActivityItem, error_type: &str, message: String) {
        let details = FailureDetails::new(error_type, message).non_retriable();
        if let Err(e) = self
            .store
            .complete_activity(&item.lease, ActivityResult::Failed(details))
            .await
        {
            tracing::warn!(activity = %item.activity.name, error = %e, "could not fail the activity");
        }
    }
}
