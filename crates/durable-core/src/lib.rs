//! The pure core of `durable`: the event model, actions, statuses, limits, error codes, the
//! deterministic replay engine and the turn planner. No I/O and no async runtime live here.

pub mod action;
pub mod clock;
pub mod entity;
pub mod error;
pub mod event;
pub mod failure;
pub mod ids;
pub mod instance;
pub mod limits;
pub mod metrics;
pub mod registry;
pub mod replay;
pub mod status;
pub mod timeline;
pub mod trace;
pub mod turn;
pub mod work;

pub use action::{Action, ActionKind, TurnOutput};
pub use error::{Error, ErrorCode};
pub use event::{
    EventKind, HistoryEvent, OrchestrationInstance, ParentInstance, Tags, TraceContext,
};
pub use failure::FailureDetails;
pub use instance::{IfExists, InstanceQuery, InstanceState, NewInstance, Page, PurgeFilter};
pub use registry::{Activity, ActivityContext, Orchestration, Registry};
pub use replay::{OrchestrationContext, Replayer, RetryPolicy, SubOrchestrationOptions, TaskError};
pub use status::{OrchestrationStatus, RuntimeStatus};
