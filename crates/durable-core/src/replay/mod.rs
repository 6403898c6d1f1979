//! The deterministic replay engine and the orchestration API.

mod context;
mod engine;
mod futures;
mod retry;
mod state;

pub use context::{CriticalSection, OrchestrationContext, ReplaySafeLog, SubOrchestrationOptions};
pub use engine::Replayer;
pub use futures::{
    ContinueAsNewFuture, EventFuture, LockFuture, TaskError, TaskFuture, TaskKind, TimerFuture,
};
pub use retry::RetryPolicy;

#[cfg(test)]
mod tests;
