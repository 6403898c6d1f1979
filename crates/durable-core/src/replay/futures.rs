//! Durable futures: they resolve only from history, in history order.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use parking_lot::Mutex;
use serde::de::DeserializeOwned;

use super::state::{Outcome, State};
use crate::failure::FailureDetails;

/// What kind of task a [`TaskError`] comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskKind {
    Activity,
    SubOrchestration,
    ExternalEvent,
    /// A call to an entity operation.
    Entity,
}

/// A task (activity, sub-orchestration) failed, or its result could not be decoded.
///
/// Its message follows the Durable Task SDKs: `Activity task #3 failed: <message>`.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskError {
    pub kind: TaskKind,
    /// The scheduling action's id (0 for external events).
    pub id: i32,
    /// The activity, sub-orchestration or event name.
    pub name: String,
    /// The failure as the task reported it.
    pub details: FailureDetails,
}

impl TaskError {
    /// The details recorded when this error fails an orchestration: a `TaskFailedError` whose
    /// inner failure is the task's own.
    pub fn to_details(&self) -> FailureDetails {
        FailureDetails {
            error_type: "TaskFailedError".into(),
            error_message: self.to_string(),
            stack_trace: self.details.stack_trace.clone(),
            inner_failure: Some(Box::new(self.details.clone())),
            is_non_retriable: false,
            properties: Default::default(),
        }
    }

    /// The error message as the task reported it.
    pub fn message(&self) -> &str {
        &self.details.error_message
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TaskKind::Activity => write!(f, "Activity task #{} failed: ", self.id)?,
            TaskKind::SubOrchestration => {
                write!(f, "Sub-orchestration task #{} failed: ", self.id)?
            }
            TaskKind::ExternalEvent => {
                write!(f, "External event '{}' could not be read: ", self.name)?
            }
            TaskKind::Entity => write!(f, "Entity operation {} failed: ", self.name)?,
        }
        f.write_str(&self.details.error_message)
    }
}

impl std::error::Error for TaskError {}

pub(crate) fn decode<T: DeserializeOwned>(payload: Option<&str>) -> Result<T, FailureDetails> {
    serde_json::from_str(payload.unwrap_or("null"))
        .map_err(|e| FailureDetails::new("DeserializationError", e.to_string()))
}

/// The result of an activity or sub-orchestration.
#[must_use = "durable futures do nothing unless awaited"]
pub struct TaskFuture<O> {
    pub(crate) state: Arc<Mutex<State>>,
    pub(crate) id: i32,
    pub(crate) kind: TaskKind,
    pub(crate) name: String,
    /// Set when the call could not even be issued (e.g. its input did not serialize).
    pub(crate) early: Option<FailureDetails>,
    pub(crate) _out: PhantomData<fn() -> O>,
}

impl<O> TaskFuture<O> {
    /// The action id of this call.
    pub fn id(&self) -> i32 {
        self.id
    }
}

impl<O> fmt::Debug for TaskFuture<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskFuture")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish()
    }
}

impl<O: DeserializeOwned> Future for TaskFuture<O> {
    type Output = Result<O, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let error = |details| TaskError {
            kind: this.kind,
            id: this.id,
            name: this.name.clone(),
            details,
        };
        if let Some(details) = this.early.take() {
            return Poll::Ready(Err(error(details)));
        }
        let outcome = this.state.lock().take_outcome(this.id, cx.waker());
        match outcome {
            None => Poll::Pending,
            Some(Outcome::Completed(result)) => {
                Poll::Ready(decode(result.as_deref()).map_err(error))
            }
            Some(Outcome::Failed(details)) => Poll::Ready(Err(error(details))),
            Some(Outcome::Fired) => Poll::Ready(Err(error(FailureDetails::new(
                "NonDeterminismError",
                "a timer event completed a task",
            )))),
        }
    }
}

impl<O> Drop for TaskFuture<O> {
    fn drop(&mut self) {
        if self.early.is_none() {
            self.state.lock().drop_task(self.id);
        }
    }
}

/// A durable timer. Dropping it before it fires cancels it.
#[must_use = "durable futures do nothing unless awaited"]
pub struct TimerFuture {
    pub(crate) state: Arc<Mutex<State>>,
    pub(crate) id: i32,
}

impl TimerFuture {
    pub fn id(&self) -> i32 {
        self.id
    }
}

impl fmt::Debug for TimerFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerFuture").field("id", &self.id).finish()
    }
}

impl Future for TimerFuture {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.state.lock().take_outcome(self.id, cx.waker()) {
            Some(_) => Poll::Ready(()),
            None => Poll::Pending,
        }
    }
}

impl Drop for TimerFuture {
    fn drop(&mut self) {
        self.state.lock().drop_task(self.id);
    }
}

/// The next external event of a name (matched without regard to letter case).
#[must_use = "durable futures do nothing unless awaited"]
pub struct EventFuture<T> {
    pub(crate) state: Arc<Mutex<State>>,
    pub(crate) waiter: u64,
    pub(crate) name: String,
    pub(crate) done: bool,
    pub(crate) _out: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for EventFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventFuture")
            .field("name", &self.name)
            .finish()
    }
}

impl<T: DeserializeOwned> Future for EventFuture<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut state = this.state.lock();
        let Some(waiter) = state.waiters.get_mut(&this.waiter) else {
            return Poll::Pending;
        };
        match waiter.value.take() {
            None => {
                waiter.waker = Some(cx.waker().clone());
                Poll::Pending
            }
            Some(data) => {
                state.waiters.remove(&this.waiter);
                this.done = true;
                Poll::Ready(decode(data.as_deref()).map_err(|details| TaskError {
                    kind: TaskKind::ExternalEvent,
                    id: 0,
                    name: this.name.clone(),
                    details,
                }))
            }
        }
    }
}

impl<T> Drop for EventFuture<T> {
    fn drop(&mut self) {
        if !self.done {
            self.state.lock().drop_waiter(self.waiter);
        }
    }
}

/// Returned by `continue_as_new`: never resolves; the turn ends and a new execution starts.
#[must_use = "await it (or return) to continue as new"]
pub struct ContinueAsNewFuture<T> {
    pub(crate) _out: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for ContinueAsNewFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContinueAsNewFuture")
    }
}

impl<T> Future for ContinueAsNewFuture<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<T> {
        Poll::Pending
    }
}

/// Resolves when every entity of a critical section is locked for this orchestration.
#[must_use = "durable futures do nothing unless awaited"]
pub struct LockFuture {
    pub(crate) state: Arc<Mutex<State>>,
    pub(crate) id: i32,
    pub(crate) section: Option<super::CriticalSection>,
}

impl fmt::Debug for LockFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockFuture").field("id", &self.id).finish()
    }
}

impl Future for LockFuture {
    type Output = super::CriticalSection;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.state.lock().take_outcome(this.id, cx.waker()) {
            Some(_) => Poll::Ready(this.section.take().expect("a lock resolves once")),
            None => Poll::Pending,
        }
    }
}
