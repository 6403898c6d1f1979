//! Structured lifecycle events: every step of an instance is a `tracing` event (target
//! `durable::lifecycle`) with the instance id, execution id, name, sequence number and
//! `is_replay` (always false: the runtime reports only what it commits, never replayed steps).

use durable_core::event::EventKind;
use durable_core::status::RuntimeStatus;
use durable_core::work::{OrchestrationItem, TurnCommit};
use tracing::Level;

const TARGET: &str = "durable::lifecycle";

macro_rules! step {
    ($level:ident, $item:expr, $event:expr, $seq:expr, $($rest:tt)*) => {
        tracing::$level!(
            target: TARGET,
            instance_id = %$item.instance.instance_id,
            execution_id = %$item.instance.execution_id,
            name = %$item.instance.name,
            seq = $seq,
            is_replay = false,
            event = $event,
            $($rest)*
        )
    };
}

/// Reports what a committed turn did.
pub(crate) fn turn_committed(
    item: &OrchestrationItem,
    events: &[durable_core::HistoryEvent],
    commit: &TurnCommit,
) {
    let detailed = tracing::enabled!(target: TARGET, Level::DEBUG);
    if detailed {
        for e in events {
            match &e.kind {
                EventKind::ExecutionStarted { .. } => {
                    step!(debug, item, "started", -1, "orchestration started")
                }
                EventKind::TimerFired { timer_id, .. } => {
                    step!(debug, item, "timer_fired", *timer_id, "timer fired")
                }
                EventKind::EventRaised { name, .. } => {
                    step!(debug, item, "event_raised", -1, event_name = %name, "event raised")
                }
                EventKind::ExecutionSuspended { .. } => {
                    step!(info, item, "suspended", -1, "suspended")
                }
                EventKind::ExecutionResumed { .. } => step!(info, item, "resumed", -1, "resumed"),
                _ => {}
            }
        }
        for a in &commit.activities {
            step!(debug, item, "activity_scheduled", a.task_id, activity = %a.name, "activity scheduled");
        }
        for m in &commit.messages {
            if let EventKind::TimerFired { timer_id, fire_at } = &m.event.kind
                && m.instance_id == item.instance.instance_id
            {
                step!(debug, item, "timer_created", *timer_id, fire_at = %fire_at, "timer created");
            }
        }
        for c in &commit.children {
            step!(debug, item, "sub_orchestration_created", -1, child = %c.instance.instance_id, "sub-orchestration created");
        }
    }
    let status = commit.instance.status;
    if status == item.instance.status && !status.is_terminal() {
        return;
    }
    match status {
        RuntimeStatus::Completed => step!(debug, item, "completed", -1, "orchestration completed"),
        RuntimeStatus::Failed => {
            let reason = commit
                .instance
                .failure
                .as_ref()
                .map(|f| f.to_string())
                .unwrap_or_default();
            step!(warn, item, "failed", -1, failure = %reason, "orchestration failed")
        }
        RuntimeStatus::Terminated => {
            step!(info, item, "terminated", -1, "orchestration terminated")
        }
        RuntimeStatus::ContinuedAsNew => {
            step!(debug, item, "continued_as_new", -1, "continued as new")
        }
        _ => {}
    }
}

pub(crate) fn lease_taken_over(item: &OrchestrationItem) {
    step!(
        info,
        item,
        "lease_taken_over",
        -1,
        delivery = item.delivery_count(),
        "claimed again after an earlier delivery did not finish"
    );
}

pub(crate) fn lease_lost(item: &OrchestrationItem) {
    step!(
        info,
        item,
        "lease_lost",
        -1,
        "commit refused: another worker took the instance over"
    );
}

pub(crate) fn poisoned(item: &OrchestrationItem) {
    step!(
        error,
        item,
        "poisoned",
        -1,
        delivery = item.delivery_count(),
        "orchestration turn poisoned"
    );
}
