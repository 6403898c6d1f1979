//! The replay engine: feeds history to an orchestration's future, one event at a time, and
//! collects the actions it issues.
//!
//! Determinism rests on three rules. Durable futures resolve only when the engine delivers their
//! history event. Events are delivered in history order, and the future is polled after each one
//! (and again while it wakes itself), so the interleaving of a `join` or a `select` is the same on
//! every replay. Every action the code issues is matched by sequence number against the events
//! that confirmed it the first time; a mismatch is a non-determinism failure that names both.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use parking_lot::Mutex;

use super::context::OrchestrationContext;
use super::state::{ContinueAsNewRequest, Outcome, State};
use crate::action::{Action, ActionKind, TurnOutput};
use crate::event::{EventKind, HistoryEvent};
use crate::failure::FailureDetails;
use crate::registry::{BoxFuture, HandlerResult, OrchestrationHandler};
use crate::status::OrchestrationStatus;

/// How the execution ended.
#[derive(Debug, Clone)]
enum Ending {
    Returned(HandlerResult),
    Terminated(Option<String>),
    ContinueAsNew(ContinueAsNewRequest),
    NonDeterminism(FailureDetails),
}

/// Sets a flag when woken, so the engine knows to poll again.
#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// One live execution of an orchestration. Keep it between turns (it is what the runtime caches)
/// and feed it only the new events; or build a fresh one and [`Replayer::replay`] the history.
pub struct Replayer {
    state: Arc<Mutex<State>>,
    handler: Arc<dyn OrchestrationHandler>,
    future: Option<BoxFuture<HandlerResult>>,
    flag: Arc<Flag>,
    waker: Waker,
    ending: Option<Ending>,
    /// The ending was already returned as an action.
    reported: bool,
    suspended: bool,
    held: Vec<HistoryEvent>,
    /// What the replayed history records for each call number, for error messages.
    recorded: std::collections::HashMap<i32, String>,
}

impl std::fmt::Debug for Replayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.lock();
        f.debug_struct("Replayer")
            .field("instance_id", &s.instance_id)
            .field("name", &s.name)
            .field("finished", &self.ending.is_some())
            .finish()
    }
}

impl Replayer {
    pub fn new(
        handler: Arc<dyn OrchestrationHandler>,
        instance_id: &str,
        execution_id: &str,
        name: &str,
    ) -> Self {
        let flag = Arc::new(Flag::default());
        Replayer {
            state: Arc::new(Mutex::new(State::new(
                instance_id.to_string(),
                execution_id.to_string(),
                name.to_string(),
            ))),
            handler,
            future: None,
            waker: Waker::from(flag.clone()),
            flag,
            ending: None,
            reported: false,
            suspended: false,
            held: Vec::new(),
            recorded: std::collections::HashMap::new(),
        }
    }

    /// Replays committed history (a cold start: restart, eviction, another worker's instance).
    pub fn replay(&mut self, past: &[HistoryEvent]) {
        self.recorded = past
            .iter()
            .filter(|e| {
                matches!(
                    e.kind,
                    EventKind::TaskScheduled { .. }
                        | EventKind::TimerCreated { .. }
                        | EventKind::SubOrchestrationInstanceCreated { .. }
                        | EventKind::EventSent { .. }
                )
            })
            .map(|e| (e.event_id, describe_event(&e.kind)))
            .collect();
        self.state.lock().replaying = true;
        for event in past {
            self.apply(event, true);
        }
    }

    /// Runs one turn over the new events (the first should be `OrchestratorStarted`) and returns
    /// what the orchestration asks for. Actions returned are considered committed afterwards:
    /// if the commit fails, drop this replayer and replay from history.
    pub fn run_turn(&mut self, new_events: &[HistoryEvent]) -> TurnOutput {
        self.check_confirmed();
        self.state.lock().replaying = false;
        for event in new_events {
            self.apply(event, false);
        }
        self.take_output()
    }

    /// When the execution started and the trace context it was started in, once its
    /// `ExecutionStarted` has been seen.
    pub fn execution_start(
        &self,
    ) -> Option<(
        chrono::DateTime<chrono::Utc>,
        Option<crate::event::TraceContext>,
    )> {
        self.state.lock().started.clone()
    }

    /// True once the execution has ended (returned, failed, terminated or continued as new).
    pub fn is_finished(&self) -> bool {
        self.ending.is_some()
    }

    fn apply(&mut self, event: &HistoryEvent, past: bool) {
        if self.ending.is_some() {
            // Events that arrive after the end are carried over by continue-as-new.
            if let EventKind::EventRaised { name, input } = &event.kind {
                self.state.lock().raise(name, input.clone());
            }
            return;
        }
        if past && matches!(event.kind, EventKind::OrchestratorStarted) {
            self.check_confirmed();
        }
        match &event.kind {
            EventKind::OrchestratorStarted => {
                self.state.lock().current_time = event.timestamp;
            }
            EventKind::ExecutionStarted {
                name,
                version,
                input,
                parent_instance,
                orchestration_instance,
                parent_trace_context,
                ..
            } => {
                if self.future.is_some() {
                    return;
                }
                {
                    let mut s = self.state.lock();
                    if s.current_time == chrono::DateTime::<chrono::Utc>::UNIX_EPOCH {
                        s.current_time = event.timestamp;
                    }
                    s.name = name.clone();
                    s.version = version.clone();
                    s.started = Some((event.timestamp, parent_trace_context.clone()));
                    s.parent = parent_instance.clone();
                    if let Some(exec) = &orchestration_instance.execution_id {
                        s.execution_id = exec.clone();
                    }
                }
                let ctx = OrchestrationContext::new(self.state.clone());
                self.future = Some(self.handler.start(ctx, input.clone()));
                self.flag.0.store(true, Ordering::SeqCst);
                self.poll();
            }
            EventKind::ExecutionTerminated { input, .. } => {
                self.end(Ending::Terminated(input.clone()));
            }
            EventKind::ExecutionSuspended { .. } => self.suspended = true,
            EventKind::ExecutionResumed { .. } => {
                self.suspended = false;
                for held in std::mem::take(&mut self.held) {
                    self.deliver(&held);
                }
            }
            EventKind::TaskScheduled { .. }
            | EventKind::TimerCreated { .. }
            | EventKind::SubOrchestrationInstanceCreated { .. }
            | EventKind::EventSent { .. } => self.confirm(event),
            EventKind::EntityOperationSignaled { .. }
            | EventKind::EntityOperationCalled { .. }
            | EventKind::EntityLockRequested { .. }
            | EventKind::EntityUnlockSent { .. }
                if event.event_id >= 0 =>
            {
                self.confirm(event)
            }
            EventKind::TaskCompleted { .. }
            | EventKind::TaskFailed { .. }
            | EventKind::SubOrchestrationInstanceCompleted { .. }
            | EventKind::SubOrchestrationInstanceFailed { .. }
            | EventKind::TimerFired { .. }
            | EventKind::EventRaised { .. }
            | EventKind::EntityOperationCompleted { .. }
            | EventKind::EntityOperationFailed { .. }
            | EventKind::EntityLockGranted { .. } => {
                if self.suspended {
                    self.held.push(event.clone());
                } else {
                    self.deliver(event);
                }
            }
            // Bookkeeping events that carry nothing for the code.
            _ => {}
        }
    }

    /// Delivers a result or an external event, then lets the code run.
    fn deliver(&mut self, event: &HistoryEvent) {
        {
            let mut s = self.state.lock();
            match &event.kind {
                EventKind::TaskCompleted {
                    task_scheduled_id,
                    result,
                }
                | EventKind::SubOrchestrationInstanceCompleted {
                    task_scheduled_id,
                    result,
                } => {
                    s.resolve(*task_scheduled_id, Outcome::Completed(result.clone()));
                }
                EventKind::TaskFailed {
                    task_scheduled_id,
                    failure_details,
                }
                | EventKind::SubOrchestrationInstanceFailed {
                    task_scheduled_id,
                    failure_details,
                } => {
                    s.resolve(*task_scheduled_id, Outcome::Failed(failure_details.clone()));
                }
                EventKind::TimerFired { timer_id, .. } => {
                    s.resolve(*timer_id, Outcome::Fired);
                }
                EventKind::EventRaised { name, input } => s.raise(name, input.clone()),
                EventKind::EntityOperationCompleted { request_id, output } => {
                    if let Some(id) = s.entity_requests.remove(request_id) {
                        s.resolve(id, Outcome::Completed(output.clone()));
                    }
                }
                EventKind::EntityOperationFailed {
                    request_id,
                    failure_details,
                } => {
                    if let Some(id) = s.entity_requests.remove(request_id) {
                        s.resolve(id, Outcome::Failed(failure_details.clone()));
                    }
                }
                EventKind::EntityLockGranted {
                    critical_section_id,
                } => {
                    if let Some(id) = s.entity_requests.remove(critical_section_id) {
                        if let Some(section) = s.sections.get_mut(critical_section_id) {
                            section.1 = true;
                        }
                        s.resolve(id, Outcome::Fired);
                    }
                }
                _ => {}
            }
        }
        self.poll();
    }

    /// Polls the orchestration until it stops waking itself.
    fn poll(&mut self) {
        while self.ending.is_none() && self.flag.0.swap(false, Ordering::SeqCst) {
            let Some(future) = self.future.as_mut() else {
                return;
            };
            let mut cx = Context::from_waker(&self.waker);
            let polled = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx)));
            let can = self.state.lock().continue_as_new.clone();
            match (polled, can) {
                (Ok(_), Some(request)) => self.end(Ending::ContinueAsNew(request)),
                (Ok(Poll::Ready(result)), None) => self.end(Ending::Returned(result)),
                (Ok(Poll::Pending), None) => {}
                (Err(panic), _) => {
                    let failure = FailureDetails::panicked("orchestration code", &*panic);
                    self.end(Ending::Returned(Err(failure)));
                }
            }
        }
    }

    fn end(&mut self, ending: Ending) {
        if self.ending.is_none() {
            self.ending = Some(ending);
            // Dropping the future cancels its timers and waiters; do it outside the state lock.
            self.future = None;
        }
    }

    /// Checks a confirmation event from history against the action the code issued.
    fn confirm(&mut self, event: &HistoryEvent) {
        let id = event.event_id;
        let (issued, last_call) = {
            let mut s = self.state.lock();
            (s.issued.remove(&id), s.last_call.clone())
        };
        let recorded = describe_event(&event.kind);
        let mismatch = match issued {
            None => Some(match last_call {
                Some((n, last)) => format!(
                    "history records {recorded} as call #{id}, but the orchestration made no call #{id} at this point (its last call was {last}, #{n})"
                ),
                None => format!(
                    "history records {recorded} as call #{id}, but the orchestration made no call at this point"
                ),
            }),
            Some(actual) if !same_call(&event.kind, &actual) => Some(format!(
                "history records {recorded} as call #{id}, but the orchestration now makes {}",
                actual.describe()
            )),
            Some(_) => None,
        };
        if let Some(message) = mismatch {
            self.non_determinism(message);
        }
    }

    /// At a turn boundary every issued action must have been confirmed by history.
    fn check_confirmed(&mut self) {
        let (unconfirmed, replaying) = {
            let s = self.state.lock();
            (
                s.issued.iter().next().map(|(id, a)| (*id, a.describe())),
                s.replaying,
            )
        };
        if !replaying {
            return;
        }
        if let Some((id, actual)) = unconfirmed {
            let message = match self.recorded.get(&id) {
                Some(recorded) => format!(
                    "the orchestration made {actual} as call #{id} earlier than history, which records {recorded} as call #{id} in a later turn"
                ),
                None => format!(
                    "the orchestration made {actual} as call #{id}, but history records no call #{id}"
                ),
            };
            self.non_determinism(message);
        }
    }

    fn non_determinism(&mut self, message: String) {
        let name = self.state.lock().name.clone();
        self.end(Ending::NonDeterminism(FailureDetails::new(
            "NonDeterminismError",
            format!(
                "non-deterministic orchestration '{name}': {message}. Orchestration code must make the same calls in the same order on every replay"
            ),
        )));
    }

    fn take_output(&mut self) -> TurnOutput {
        let mut s = self.state.lock();
        let mut actions: Vec<Action> = std::mem::take(&mut s.issued)
            .into_iter()
            .map(|(id, kind)| Action { id, kind })
            .collect();
        if self.ending.is_some() && !self.reported && !s.sections.is_empty() {
            // Locks still held when the execution ends are released.
            let sections: Vec<String> = s.sections.keys().cloned().collect();
            drop(s);
            let ctx = OrchestrationContext::new(self.state.clone());
            for section in sections {
                ctx.release_section(&section);
            }
            s = self.state.lock();
            actions.extend(
                std::mem::take(&mut s.issued)
                    .into_iter()
                    .map(|(id, kind)| Action { id, kind }),
            );
        }
        if let Some(ending) = self.ending.as_ref().filter(|_| !self.reported) {
            let id = s.next_id;
            s.next_id += 1;
            let complete = |status, result, failure_details| ActionKind::CompleteOrchestration {
                orchestration_status: status,
                result,
                details: None,
                new_version: None,
                carryover_events: Vec::new(),
                failure_details,
                tags: Default::default(),
            };
            let kind = match ending.clone() {
                Ending::Returned(Ok(output)) => {
                    complete(OrchestrationStatus::Completed, output, None)
                }
                Ending::Returned(Err(details)) | Ending::NonDeterminism(details) => {
                    complete(OrchestrationStatus::Failed, None, Some(details))
                }
                Ending::Terminated(output) => {
                    complete(OrchestrationStatus::Terminated, output, None)
                }
                Ending::ContinueAsNew(request) => {
                    let now = s.current_time;
                    let carryover = s
                        .buffered
                        .drain(..)
                        .map(|b| {
                            HistoryEvent::unnumbered(
                                now,
                                EventKind::EventRaised {
                                    name: b.name,
                                    input: b.data,
                                },
                            )
                        })
                        .chain(self.held.drain(..))
                        .collect();
                    ActionKind::CompleteOrchestration {
                        orchestration_status: OrchestrationStatus::ContinuedAsNew,
                        result: request.input,
                        details: None,
                        new_version: request.version,
                        carryover_events: carryover,
                        failure_details: None,
                        tags: Default::default(),
                    }
                }
            };
            actions.push(Action { id, kind });
            self.reported = true;
        }
        TurnOutput {
            actions,
            custom_status: s.custom_status.clone(),
            cancelled_timers: std::mem::take(&mut s.cancelled_timers),
            open_tasks: Some(s.open_tasks.len()),
        }
    }
}

fn describe_event(kind: &EventKind) -> String {
    match kind {
        EventKind::TaskScheduled { name, .. } => format!("activity '{name}'"),
        EventKind::SubOrchestrationInstanceCreated { name, .. } => {
            format!("sub-orchestration '{name}'")
        }
        EventKind::TimerCreated { .. } => "timer".into(),
        EventKind::EventSent {
            name, instance_id, ..
        } => format!("send event '{name}' to '{instance_id}'"),
        other => crate::action::ActionKind::SendEntityMessage {
            event: other.clone(),
        }
        .describe(),
    }
}

fn same_call(recorded: &EventKind, issued: &ActionKind) -> bool {
    match (recorded, issued) {
        (EventKind::TaskScheduled { name: a, .. }, ActionKind::ScheduleTask { name: b, .. }) => {
            a == b
        }
        (
            EventKind::SubOrchestrationInstanceCreated { name: a, .. },
            ActionKind::CreateSubOrchestration { name: b, .. },
        ) => a == b,
        (EventKind::TimerCreated { .. }, ActionKind::CreateTimer { .. }) => true,
        (
            EventKind::EventSent {
                name: a,
                instance_id: ia,
                ..
            },
            ActionKind::SendEvent {
                name: b, instance, ..
            },
        ) => a.eq_ignore_ascii_case(b) && *ia == instance.instance_id,
        (recorded, ActionKind::SendEntityMessage { event }) => {
            recorded.type_name() == event.type_name()
                && entity_target(recorded) == entity_target(event)
        }
        _ => false,
    }
}

/// The entity and operation an entity message is about, for comparing calls.
fn entity_target(kind: &EventKind) -> (Option<&str>, Option<&str>) {
    match kind {
        EventKind::EntityOperationSignaled {
            operation,
            target_instance_id,
            ..
        }
        | EventKind::EntityOperationCalled {
            operation,
            target_instance_id,
            ..
        } => (target_instance_id.as_deref(), Some(operation)),
        EventKind::EntityLockRequested { lock_set, .. } => {
            (lock_set.first().map(String::as_str), None)
        }
        EventKind::EntityUnlockSent {
            target_instance_id, ..
        } => (target_instance_id.as_deref(), None),
        _ => (None, None),
    }
}
