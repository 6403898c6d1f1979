//! Turns: which inbox messages a claimed item delivers ([`prepare_turn`]) and how a turn's
//! actions become one atomic commit ([`plan_turn`]). Pure functions shared by the native runtime
//! and the gRPC sidecar, so both write the same history for the same actions.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::action::{ActionKind, TurnOutput};
use crate::event::{EventKind, HistoryEvent, OrchestrationInstance, ParentInstance};
use crate::failure::FailureDetails;
use crate::ids::{new_execution_id, sub_orchestration_id};
use crate::instance::{IfExists, InstanceState, NewInstance};
use crate::status::OrchestrationStatus;
use crate::work::{
    HistoryWrite, InstanceUpdate, NewActivity, NewChild, NewMessage, OrchestrationItem, TurnCommit,
};

/// The events one claimed item delivers to the orchestration.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedTurn {
    /// `OrchestratorStarted(now)` followed by the deliverable messages; empty if none are
    /// deliverable (then the turn only consumes its messages).
    pub new_events: Vec<HistoryEvent>,
    pub consumed: Vec<i64>,
}

/// Picks the deliverable events out of an item's messages. Results and timers of another
/// execution and duplicate starts are consumed without delivery. On an execution's first turn its
/// own messages (the start and carried-over events) come before events from outside.
pub fn prepare_turn(item: &OrchestrationItem, now: DateTime<Utc>) -> PreparedTurn {
    let current = &item.instance.execution_id;
    let first_turn = item.history_len == 0;
    let consumed = item.messages.iter().map(|m| m.id).collect();
    let mut own = Vec::new();
    let mut other = Vec::new();
    for msg in &item.messages {
        if msg.execution_id.as_ref().is_some_and(|e| e != current) {
            continue;
        }
        if let EventKind::ExecutionStarted {
            orchestration_instance,
            ..
        } = &msg.event.kind
        {
            let same_execution = orchestration_instance
                .execution_id
                .as_ref()
                .is_none_or(|e| e == current);
            if !first_turn || !same_execution {
                continue;
            }
        }
        if first_turn && msg.execution_id.is_some() {
            own.push(msg.event.clone());
        } else {
            other.push(msg.event.clone());
        }
    }
    let starts = own
        .iter()
        .any(|e| matches!(e.kind, EventKind::ExecutionStarted { .. }));
    if first_turn && !starts {
        // The first turn cannot run before its start message: consume nothing, try again later.
        return PreparedTurn {
            new_events: Vec::new(),
            consumed: Vec::new(),
        };
    }
    own.append(&mut other);
    let mut new_events = Vec::with_capacity(own.len() + 1);
    if !own.is_empty() {
        new_events.push(HistoryEvent::unnumbered(
            now,
            EventKind::OrchestratorStarted,
        ));
        new_events.append(&mut own);
    }
    PreparedTurn {
        new_events,
        consumed,
    }
}

/// Why a turn's output cannot be committed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("action id {0} appears twice in one response")]
    DuplicateActionId(i32),
    #[error("action #{0} comes after the orchestration completed")]
    ActionAfterCompletion(i32),
    #[error("{0} is not supported yet")]
    Unsupported(&'static str),
}

/// Limits applied while planning.
#[derive(Clone, Copy, Debug)]
pub struct PlanLimits {
    pub max_history_events: usize,
    pub max_pending_tasks: usize,
}

impl Default for PlanLimits {
    fn default() -> Self {
        PlanLimits {
            max_history_events: crate::limits::DEFAULT_MAX_HISTORY_EVENTS,
            max_pending_tasks: crate::limits::DEFAULT_MAX_PENDING_TASKS,
        }
    }
}

/// Turns an orchestration turn's output into the commit that records it.
pub fn plan_turn(
    item: &OrchestrationItem,
    prepared: &PreparedTurn,
    output: TurnOutput,
    now: DateTime<Utc>,
    limits: PlanLimits,
) -> Result<TurnCommit, PlanError> {
    validate(&output)?;
    let output = enforce_history_limit(item, prepared, output, limits);
    let output = enforce_pending_limit(output, limits);
    let inst = &item.instance;
    let mut plan = Planner {
        inst,
        now,
        execution_id: inst.execution_id.clone(),
        events: prepared.new_events.clone(),
        commit_activities: Vec::new(),
        messages: Vec::new(),
        children: Vec::new(),
        replace_history: None,
        cancelled: output.cancelled_timers.iter().copied().collect(),
    };
    let mut update = InstanceUpdate {
        status: next_status(inst.status, &prepared.new_events),
        execution_id: inst.execution_id.clone(),
        version: inst.version.clone(),
        input: inst.input.clone(),
        output: inst.output.clone(),
        custom_status: output
            .custom_status
            .clone()
            .or_else(|| inst.custom_status.clone()),
        failure: inst.failure.as_deref().cloned(),
        completed_at: inst.completed_at,
    };
    let mut terminate_children = None;

    for action in output.actions {
        let id = action.id;
        match action.kind {
            ActionKind::CompleteOrchestration {
                orchestration_status,
                result,
                new_version,
                carryover_events,
                failure_details,
                ..
            } => {
                if orchestration_status == OrchestrationStatus::ContinuedAsNew {
                    plan.continue_as_new(&mut update, result, new_version, carryover_events);
                } else {
                    terminate_children = plan.complete(
                        &mut update,
                        orchestration_status,
                        result,
                        failure_details,
                        &prepared.new_events,
                    );
                }
            }
            other => plan.action(id, other)?,
        }
    }

    let history = match plan.replace_history.take() {
        Some(replace @ HistoryWrite::Replace { .. })
            if update.status != OrchestrationStatus::ContinuedAsNew =>
        {
            // A rewind: the instance runs again in the rewound execution.
            update.status = OrchestrationStatus::Running;
            update.execution_id = plan.execution_id.clone();
            update.output = None;
            update.failure = None;
            update.completed_at = None;
            replace
        }
        Some(replace) => replace,
        None => HistoryWrite::Append {
            from: item.history_len,
            events: plan.events,
        },
    };
    Ok(TurnCommit {
        lease: item.lease.clone(),
        consumed: prepared.consumed.clone(),
        history,
        instance: update,
        activities: plan.commit_activities,
        messages: plan.messages,
        children: plan.children,
        cancelled_timers: output.cancelled_timers,
        terminate_children,
    })
}

/// A commit that only consumes an item's messages (nothing deliverable was among them).
pub fn consume_only(item: &OrchestrationItem, prepared: &PreparedTurn) -> TurnCommit {
    let inst = &item.instance;
    TurnCommit {
        lease: item.lease.clone(),
        consumed: prepared.consumed.clone(),
        history: HistoryWrite::Append {
            from: item.history_len,
            events: Vec::new(),
        },
        instance: InstanceUpdate {
            status: inst.status,
            execution_id: inst.execution_id.clone(),
            version: inst.version.clone(),
            input: inst.input.clone(),
            output: inst.output.clone(),
            custom_status: inst.custom_status.clone(),
            failure: inst.failure.as_deref().cloned(),
            completed_at: inst.completed_at,
        },
        activities: Vec::new(),
        messages: Vec::new(),
        children: Vec::new(),
        cancelled_timers: Vec::new(),
        terminate_children: None,
    }
}

fn validate(output: &TurnOutput) -> Result<(), PlanError> {
    let mut seen = HashSet::new();
    let mut completed = false;
    for action in &output.actions {
        if completed {
            return Err(PlanError::ActionAfterCompletion(action.id));
        }
        if action.id >= 0 && !seen.insert(action.id) {
            return Err(PlanError::DuplicateActionId(action.id));
        }
        completed = matches!(action.kind, ActionKind::CompleteOrchestration { .. });
    }
    Ok(())
}

/// Replaces the output with a failure when the history would outgrow its limit.
fn enforce_history_limit(
    item: &OrchestrationItem,
    prepared: &PreparedTurn,
    output: TurnOutput,
    limits: PlanLimits,
) -> TurnOutput {
    let growth = prepared.new_events.len() + output.actions.len() + 1;
    if (item.history_len as usize) + growth <= limits.max_history_events {
        return output;
    }
    let message = format!(
        "the history of this execution would exceed the limit of {} events (max_history_events); use continue_as_new to start a fresh history in long-running loops",
        limits.max_history_events
    );
    failed(output, "HistoryLimitExceeded", message)
}

/// Replaces the output with a failure when the execution would have more tasks pending than
/// its limit (only producers that count them say so in `open_tasks`).
fn enforce_pending_limit(output: TurnOutput, limits: PlanLimits) -> TurnOutput {
    let ends = output
        .actions
        .iter()
        .any(|a| matches!(a.kind, ActionKind::CompleteOrchestration { .. }));
    match output.open_tasks {
        Some(open) if open > limits.max_pending_tasks && !ends => {
            let message = format!(
                "this execution would have {open} tasks pending, over the limit of {} (max_pending_tasks); await tasks in smaller batches, or use continue_as_new or sub-orchestrations to split the work",
                limits.max_pending_tasks
            );
            failed(output, "PendingTasksLimitExceeded", message)
        }
        _ => output,
    }
}

fn failed(output: TurnOutput, error_type: &str, message: String) -> TurnOutput {
    let details = FailureDetails::new(error_type, message).non_retriable();
    let id = output.actions.first().map_or(1, |a| a.id);
    TurnOutput {
        custom_status: output.custom_status,
        ..TurnOutput::ending(id, OrchestrationStatus::Failed, None, Some(details))
    }
}

/// Tasks (activities, timers, sub-orchestrations) scheduled in `history` and not yet resolved:
/// for producers that do not track them as the replay engine does (remote workers).
pub fn pending_tasks<'a>(history: impl IntoIterator<Item = &'a HistoryEvent>) -> usize {
    let mut open = HashSet::new();
    for event in history {
        match &event.kind {
            EventKind::TaskScheduled { .. }
            | EventKind::TimerCreated { .. }
            | EventKind::SubOrchestrationInstanceCreated { .. } => {
                open.insert(event.event_id);
            }
            kind => {
                if let Some(id) = kind.completes_task() {
                    open.remove(&id);
                }
            }
        }
    }
    open.len()
}

/// Status after delivering `events`, before any completion.
fn next_status(current: OrchestrationStatus, events: &[HistoryEvent]) -> OrchestrationStatus {
    let mut status = match current {
        OrchestrationStatus::Pending | OrchestrationStatus::ContinuedAsNew
            if !events.is_empty() =>
        {
            OrchestrationStatus::Running
        }
        other => other,
    };
    for ev in events {
        match ev.kind {
            EventKind::ExecutionSuspended { .. } => status = OrchestrationStatus::Suspended,
            EventKind::ExecutionResumed { .. } if status == OrchestrationStatus::Suspended => {
                status = OrchestrationStatus::Running
            }
            _ => {}
        }
    }
    status
}

struct Planner<'a> {
    inst: &'a InstanceState,
    now: DateTime<Utc>,
    execution_id: String,
    events: Vec<HistoryEvent>,
    commit_activities: Vec<NewActivity>,
    messages: Vec<NewMessage>,
    children: Vec<NewChild>,
    replace_history: Option<HistoryWrite>,
    cancelled: HashSet<i32>,
}

impl Planner<'_> {
    fn record(&mut self, id: i32, kind: EventKind) {
        self.events.push(HistoryEvent::new(id, self.now, kind));
    }

    fn send_self(&mut self, event: HistoryEvent, visible_at: Option<DateTime<Utc>>) {
        self.messages.push(NewMessage {
            instance_id: self.inst.instance_id.clone(),
            execution_id: Some(self.execution_id.clone()),
            event,
            visible_at,
        });
    }

    fn action(&mut self, id: i32, kind: ActionKind) -> Result<(), PlanError> {
        match kind {
            ActionKind::ScheduleTask {
                name,
                version,
                input,
                tags,
                parent_trace_context,
            } => {
                self.commit_activities.push(NewActivity {
                    instance_id: self.inst.instance_id.clone(),
                    execution_id: self.execution_id.clone(),
                    task_id: id,
                    name: name.clone(),
                    version: version.clone(),
                    input: input.clone(),
                    tags: tags.clone(),
                    trace_context: parent_trace_context.clone(),
                });
                self.record(
                    id,
                    EventKind::TaskScheduled {
                        name,
                        version,
                        input,
                        parent_trace_context,
                        tags,
                    },
                );
            }
            ActionKind::CreateTimer { fire_at } => {
                self.record(id, EventKind::TimerCreated { fire_at });
                if !self.cancelled.contains(&id) {
                    let fired = HistoryEvent::unnumbered(
                        fire_at,
                        EventKind::TimerFired {
                            fire_at,
                            timer_id: id,
                        },
                    );
                    self.send_self(fired, Some(fire_at));
                }
            }
            ActionKind::CreateSubOrchestration {
                instance_id,
                name,
                version,
                input,
                parent_trace_context,
                tags,
            } => {
                let child_id = if instance_id.is_empty() {
                    sub_orchestration_id(&self.inst.instance_id, id)
                } else {
                    instance_id
                };
                let refused = HistoryEvent::unnumbered(
                    self.now,
                    EventKind::SubOrchestrationInstanceFailed {
                        task_scheduled_id: id,
                        failure_details: FailureDetails::new(
                            "InstanceExists",
                            format!(
                                "sub-orchestration instance '{child_id}' already exists and is still running"
                            ),
                        ),
                    },
                );
                self.children.push(NewChild {
                    instance: NewInstance {
                        instance_id: child_id.clone(),
                        execution_id: new_execution_id(),
                        name: name.clone(),
                        version: version.clone(),
                        input: input.clone(),
                        scheduled_start_at: None,
                        parent: Some(ParentInstance {
                            task_scheduled_id: id,
                            name: Some(self.inst.name.clone()),
                            version: self.inst.version.clone(),
                            orchestration_instance: OrchestrationInstance {
                                instance_id: self.inst.instance_id.clone(),
                                execution_id: Some(self.execution_id.clone()),
                            },
                        }),
                        tags: tags.clone(),
                        trace_context: parent_trace_context.clone(),
                        if_exists: IfExists::replace_terminal(),
                    },
                    on_conflict: NewMessage {
                        instance_id: self.inst.instance_id.clone(),
                        execution_id: Some(self.execution_id.clone()),
                        event: refused,
                        visible_at: None,
                    },
                });
                self.record(
                    id,
                    EventKind::SubOrchestrationInstanceCreated {
                        instance_id: child_id,
                        name,
                        version,
                        input,
                        parent_trace_context,
                        tags,
                    },
                );
            }
            ActionKind::SendEvent {
                instance,
                name,
                data,
            } => {
                self.messages.push(NewMessage {
                    instance_id: instance.instance_id.clone(),
                    execution_id: None,
                    event: HistoryEvent::unnumbered(
                        self.now,
                        EventKind::EventRaised {
                            name: name.clone(),
                            input: data.clone(),
                        },
                    ),
                    visible_at: None,
                });
                self.record(
                    id,
                    EventKind::EventSent {
                        instance_id: instance.instance_id,
                        name,
                        input: data,
                    },
                );
            }
            ActionKind::TerminateOrchestration {
                instance_id,
                reason,
                recurse,
            } => self.messages.push(NewMessage {
                instance_id,
                execution_id: None,
                event: HistoryEvent::unnumbered(
                    self.now,
                    EventKind::ExecutionTerminated {
                        input: reason,
                        recurse,
                    },
                ),
                visible_at: None,
            }),
            ActionKind::RewindOrchestration { new_history } => self.rewind(new_history),
            ActionKind::SendEntityMessage { event } => self.entity_message(id, event)?,
            ActionKind::CompleteOrchestration { .. } => unreachable!("handled by plan_turn"),
        }
        Ok(())
    }

    /// A message for an entity: recorded in history and sent (entities are created on first use).
    fn entity_message(&mut self, id: i32, event: EventKind) -> Result<(), PlanError> {
        let (target, visible_at) = match &event {
            EventKind::EntityOperationSignaled {
                target_instance_id,
                scheduled_time,
                ..
            } => (target_instance_id.clone(), *scheduled_time),
            EventKind::EntityOperationCalled {
                target_instance_id,
                scheduled_time,
                ..
            } => (target_instance_id.clone(), *scheduled_time),
            EventKind::EntityLockRequested { lock_set, .. } => (lock_set.first().cloned(), None),
            EventKind::EntityUnlockSent {
                target_instance_id, ..
            } => (target_instance_id.clone(), None),
            _ => return Err(PlanError::Unsupported("an entity message of this kind")),
        };
        let target = target
            .filter(|t| crate::entity::EntityId::is_entity(t))
            .ok_or(PlanError::Unsupported(
                "an entity message without an entity id",
            ))?;
        self.messages.push(NewMessage {
            instance_id: target,
            execution_id: None,
            event: HistoryEvent::unnumbered(self.now, event.clone()),
            visible_at,
        });
        self.record(id, event);
        Ok(())
    }

    /// A terminal completion. Returns the reason to terminate children with, if recursive.
    fn complete(
        &mut self,
        update: &mut InstanceUpdate,
        status: OrchestrationStatus,
        result: Option<String>,
        failure: Option<FailureDetails>,
        new_events: &[HistoryEvent],
    ) -> Option<Option<String>> {
        let failure = match status {
            OrchestrationStatus::Failed => Some(failure.unwrap_or_else(|| {
                FailureDetails::new(
                    "OrchestrationFailed",
                    "the orchestration failed without details",
                )
            })),
            _ => None,
        };
        let result = if status == OrchestrationStatus::Failed {
            None
        } else {
            result
        };
        self.events.push(HistoryEvent::unnumbered(
            self.now,
            EventKind::ExecutionCompleted {
                orchestration_status: status,
                result: result.clone(),
                failure_details: failure.clone(),
            },
        ));
        update.status = status;
        update.output = result.clone();
        update.failure = failure.clone();
        update.completed_at = Some(self.now);

        if let Some(parent) = &self.inst.parent {
            let task_scheduled_id = parent.task_scheduled_id;
            let kind = match status {
                OrchestrationStatus::Completed => EventKind::SubOrchestrationInstanceCompleted {
                    task_scheduled_id,
                    result,
                },
                OrchestrationStatus::Terminated => EventKind::SubOrchestrationInstanceFailed {
                    task_scheduled_id,
                    failure_details: FailureDetails::new(
                        "TerminatedError",
                        format!(
                            "sub-orchestration '{}' was terminated",
                            self.inst.instance_id
                        ),
                    ),
                },
                _ => EventKind::SubOrchestrationInstanceFailed {
                    task_scheduled_id,
                    failure_details: failure.unwrap_or_default(),
                },
            };
            self.messages.push(NewMessage {
                instance_id: parent.orchestration_instance.instance_id.clone(),
                execution_id: parent.orchestration_instance.execution_id.clone(),
                event: HistoryEvent::unnumbered(self.now, kind),
                visible_at: None,
            });
        }

        if status != OrchestrationStatus::Terminated {
            return None;
        }
        new_events.iter().find_map(|e| match &e.kind {
            EventKind::ExecutionTerminated {
                input,
                recurse: true,
            } => Some(input.clone()),
            _ => None,
        })
    }

    fn continue_as_new(
        &mut self,
        update: &mut InstanceUpdate,
        input: Option<String>,
        new_version: Option<String>,
        carryover: Vec<HistoryEvent>,
    ) {
        let execution_id = new_execution_id();
        let version = new_version.or_else(|| self.inst.version.clone());
        self.execution_id = execution_id.clone();
        let started = NewInstance {
            instance_id: self.inst.instance_id.clone(),
            execution_id: execution_id.clone(),
            name: self.inst.name.clone(),
            version: version.clone(),
            input: input.clone(),
            scheduled_start_at: None,
            parent: self.inst.parent.as_deref().cloned(),
            tags: self.inst.tags.clone(),
            trace_context: None,
            if_exists: IfExists::Fail,
        }
        .started_event(self.now);
        self.send_self(started, None);
        for event in carryover {
            self.send_self(event, None);
        }
        // Timers and results of the old execution can no longer be delivered.
        self.messages.retain(|m| {
            m.instance_id != self.inst.instance_id
                || m.execution_id.as_deref() != Some(update.execution_id.as_str())
        });
        self.replace_history = Some(HistoryWrite::Replace {
            execution_id: execution_id.clone(),
            events: Vec::new(),
        });
        update.status = OrchestrationStatus::ContinuedAsNew;
        update.execution_id = execution_id;
        update.version = version;
        update.input = input;
        update.output = None;
        update.failure = None;
        update.completed_at = None;
    }

    /// Replaces history with a rewound one and re-arms every task left without a result.
    fn rewind(&mut self, new_history: Vec<HistoryEvent>) {
        let execution_id = new_history
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::ExecutionStarted {
                    orchestration_instance,
                    ..
                } => orchestration_instance.execution_id.clone(),
                _ => None,
            })
            .unwrap_or_else(|| self.execution_id.clone());
        self.execution_id = execution_id.clone();
        let done: HashSet<i32> = new_history
            .iter()
            .filter_map(|e| e.kind.completes_task())
            .collect();
        for event in &new_history {
            if done.contains(&event.event_id) {
                continue;
            }
            match &event.kind {
                EventKind::TaskScheduled {
                    name,
                    version,
                    input,
                    parent_trace_context,
                    tags,
                } => self.commit_activities.push(NewActivity {
                    instance_id: self.inst.instance_id.clone(),
                    execution_id: execution_id.clone(),
                    task_id: event.event_id,
                    name: name.clone(),
                    version: version.clone(),
                    input: input.clone(),
                    tags: tags.clone(),
                    trace_context: parent_trace_context.clone(),
                }),
                EventKind::TimerCreated { fire_at } => {
                    let fired = HistoryEvent::unnumbered(
                        *fire_at,
                        EventKind::TimerFired {
                            fire_at: *fire_at,
                            timer_id: event.event_id,
                        },
                    );
                    self.send_self(fired, Some(*fire_at));
                }
                _ => {}
            }
        }
        // A lone wake-up so the rewound execution gets a turn even with nothing to re-arm.
        self.send_self(
            HistoryEvent::unnumbered(self.now, EventKind::GenericEvent { data: None }),
            None,
        );
        self.replace_history = Some(HistoryWrite::Replace {
            execution_id,
            events: new_history,
        });
    }
}

/// The history a native rewind continues from: the failed execution without its completion and
/// without the failures the orchestration did not handle, followed by this turn's events. The
/// planner then re-runs every task left without a result.
///
/// A failure counts as unhandled when the orchestration issued nothing after it: a failure that
/// was followed by a retry timer or compensation was handled by the code, and removing it would
/// make the replay diverge. Returns the new history and the instance ids of unhandled failed
/// sub-orchestrations, which must be rewound too.
pub fn rewind_history(
    past: &[HistoryEvent],
    new_events: &[HistoryEvent],
) -> (Vec<HistoryEvent>, Vec<String>) {
    let last_action = past
        .iter()
        .rposition(|e| {
            matches!(
                e.kind,
                EventKind::TaskScheduled { .. }
                    | EventKind::TimerCreated { .. }
                    | EventKind::SubOrchestrationInstanceCreated { .. }
                    | EventKind::EventSent { .. }
            )
        })
        .map_or(0, |i| i + 1);
    let mut children = std::collections::HashMap::new();
    let mut failed_children = Vec::new();
    let mut history = Vec::with_capacity(past.len() + new_events.len());
    for (i, event) in past.iter().enumerate() {
        let unhandled = i >= last_action;
        match &event.kind {
            EventKind::ExecutionCompleted { .. } => continue,
            EventKind::TaskFailed { .. } if unhandled => continue,
            EventKind::SubOrchestrationInstanceFailed {
                task_scheduled_id, ..
            } if unhandled => {
                if let Some(id) = children.get(task_scheduled_id) {
                    failed_children.push(String::clone(id));
                }
                continue;
            }
            EventKind::SubOrchestrationInstanceCreated { instance_id, .. } => {
                children.insert(event.event_id, instance_id.clone());
            }
            _ => {}
        }
        history.push(event.clone());
    }
    history.extend_from_slice(new_events);
    (history, failed_children)
}
