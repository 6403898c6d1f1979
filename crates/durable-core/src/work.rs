//! Work items, leases and commits: the values that cross the store boundary on the hot path.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{HistoryEvent, Tags, TraceContext};
use crate::failure::FailureDetails;
use crate::instance::{InstanceState, NewInstance};
use crate::status::RuntimeStatus;

/// A claim on one instance's orchestration work. A commit carrying an epoch that is no longer the
/// instance's current one is refused: another worker has taken the instance over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub instance_id: String,
    pub epoch: u64,
}

/// A claim on one activity work item.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ActivityLease {
    pub activity_id: i64,
    pub epoch: u64,
}

/// Which orchestration or activity names a fetch may claim. Native workers claim the names they
/// registered and remote (gRPC) workers the rest, so both can share one task hub.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NameFilter {
    #[default]
    All,
    Only(Vec<String>),
    Except(Vec<String>),
}

impl NameFilter {
    pub fn matches(&self, name: &str) -> bool {
        match self {
            NameFilter::All => true,
            NameFilter::Only(names) => names.iter().any(|n| n == name),
            NameFilter::Except(names) => !names.iter().any(|n| n == name),
        }
    }

    /// Nothing can match (an empty `Only`).
    pub fn is_empty(&self) -> bool {
        matches!(self, NameFilter::Only(names) if names.is_empty())
    }
}

/// An event waiting in an instance's inbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InboxMessage {
    /// The store's key for the message; commits name the messages they consumed by it.
    pub id: i64,
    /// The execution the message belongs to; `None` follows the instance across executions.
    pub execution_id: Option<String>,
    pub event: HistoryEvent,
    /// How many times this message has been handed out, this time included.
    pub delivery_count: u32,
}

/// A message to put into an instance's inbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewMessage {
    pub instance_id: String,
    /// Deliver only to this execution (results, timers); `None` for external events.
    pub execution_id: Option<String>,
    pub event: HistoryEvent,
    /// Invisible until then (durable timers, delayed starts); `None` means now.
    pub visible_at: Option<DateTime<Utc>>,
}

/// One claimed orchestration turn: an instance and the new messages for it.
#[derive(Clone, Debug, PartialEq)]
pub struct OrchestrationItem {
    pub lease: Lease,
    pub instance: InstanceState,
    /// Number of events committed to the current execution's history.
    pub history_len: u32,
    /// Visible messages, in commit order.
    pub messages: Vec<InboxMessage>,
}

impl OrchestrationItem {
    /// The highest delivery count among the messages: how often this turn has been attempted.
    pub fn delivery_count(&self) -> u32 {
        self.messages
            .iter()
            .map(|m| m.delivery_count)
            .max()
            .unwrap_or(0)
    }
}

/// An activity invocation to enqueue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewActivity {
    pub instance_id: String,
    pub execution_id: String,
    /// The scheduling action's id; the result event points back to it.
    pub task_id: i32,
    pub name: String,
    pub version: Option<String>,
    pub input: Option<String>,
    pub tags: Tags,
    pub trace_context: Option<TraceContext>,
}

/// A claimed activity invocation.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivityItem {
    pub lease: ActivityLease,
    pub activity: NewActivity,
    pub delivery_count: u32,
}

/// The outcome of an activity run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ActivityResult {
    Completed(Option<String>),
    Failed(FailureDetails),
}

/// How a commit changes the history of the instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum HistoryWrite {
    /// Append to the current execution; `from` must equal the number of events already stored.
    Append {
        from: u32,
        events: Vec<HistoryEvent>,
    },
    /// Start a new execution (continue-as-new, rewind): the old history is discarded.
    Replace {
        execution_id: String,
        events: Vec<HistoryEvent>,
    },
}

/// The instance row after a turn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceUpdate {
    pub status: RuntimeStatus,
    pub execution_id: String,
    pub version: Option<String>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub custom_status: Option<String>,
    pub failure: Option<FailureDetails>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// A sub-orchestration to create with a turn. If an instance with its id exists and may not be
/// replaced, `on_conflict` is delivered instead (it tells the parent the child failed to start).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewChild {
    pub instance: NewInstance,
    pub on_conflict: NewMessage,
}

/// Everything one orchestration turn changes, committed atomically (see the `Store` contract).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TurnCommit {
    pub lease: Lease,
    /// Inbox messages this turn consumed (by [`InboxMessage::id`]).
    pub consumed: Vec<i64>,
    pub history: HistoryWrite,
    pub instance: InstanceUpdate,
    pub activities: Vec<NewActivity>,
    /// Messages for this and other instances: timers (with `visible_at`), events sent, results
    /// for a parent, terminations of children, carried-over events after continue-as-new.
    pub messages: Vec<NewMessage>,
    pub children: Vec<NewChild>,
    /// Timer ids (of the current execution) whose pending firings should be removed.
    pub cancelled_timers: Vec<i32>,
    /// Terminate every non-terminal instance whose parent is this one, with this reason.
    pub terminate_children: Option<Option<String>>,
}

/// How the store answered a message sent to an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    Queued,
    /// The instance is finished; the message was dropped.
    InstanceTerminal,
}

/// Queue depths and ages: the scale signal.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueStats {
    /// Instances with visible, unclaimed work.
    pub orchestration_backlog: u64,
    pub oldest_orchestration_message_at: Option<DateTime<Utc>>,
    /// Activity invocations waiting to run.
    pub activity_backlog: u64,
    pub oldest_activity_at: Option<DateTime<Utc>>,
    /// Durable timers not yet due.
    pub pending_timers: u64,
    /// Orchestration instances by status (entities are not in these counts).
    pub instances_by_status: Vec<(RuntimeStatus, u64)>,
    /// Entities (instances whose id is `@name@key`).
    #[serde(default)]
    pub entities: u64,
}
