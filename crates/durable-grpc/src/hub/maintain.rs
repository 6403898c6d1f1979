//! Keeps held items alive: renews their leases while remote workers have them, and gives back
//! the items of closed streams once their grace period is over.

use std::sync::Arc;
use std::time::{Duration, Instant};

use durable::StoreError;

use super::{HeldLease, Hub};

pub(crate) async fn run(hub: Arc<Hub>) {
    let lock = hub.options.lock_duration;
    let renew_every = lock / 3;
    let tick = renew_every.clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut last_renewal = Instant::now();
    let mut shutdown = hub.shutdown_signal();
    while !hub.is_shutting_down() {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.changed() => break,
        }
        for work in hub.reap_orphans() {
            tracing::info!(
                "a closed stream's work item was not completed in time; re-dispatching it"
            );
            hub.give_back(work, None).await;
        }
        if last_renewal.elapsed() < renew_every {
            continue;
        }
        last_renewal = Instant::now();
        for (token, lease) in hub.leases() {
            let renewed = match &lease {
                HeldLease::Turn(l) => hub.store.renew_orchestration_lease(l, lock).await,
                HeldLease::Activity(l) => hub.store.renew_activity_lease(l, lock).await,
            };
            match renewed {
                Ok(()) => {}
                Err(StoreError::StaleLease(_)) => {
                    // Someone else owns the item now; a late completion of ours would be refused.
                    hub.take(&token);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not renew a lease held for a remote worker")
                }
            }
        }
    }
}
