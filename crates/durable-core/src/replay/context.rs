//! `OrchestrationContext`: the API orchestration code is written against.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::futures::{
    ContinueAsNewFuture, EventFuture, LockFuture, TaskFuture, TaskKind, TimerFuture,
};
use super::retry::RetryPolicy;
use super::state::{ContinueAsNewRequest, State};
use crate::action::ActionKind;
use crate::entity::EntityId;
use crate::event::EventKind;
use crate::event::{OrchestrationInstance, Tags};
use crate::failure::FailureDetails;
use crate::ids::sub_orchestration_id;
use crate::registry::{Activity, Orchestration};

/// The orchestration's window onto durable time, tasks and events.
///
/// Every method is deterministic: on replay it returns what it returned the first time, because
/// results come from the history. Orchestration code must get time, ids and randomness from here,
/// never from the system.
#[derive(Clone)]
pub struct OrchestrationContext {
    pub(crate) state: Arc<Mutex<State>>,
}

impl fmt::Debug for OrchestrationContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.lock();
        f.debug_struct("OrchestrationContext")
            .field("instance_id", &s.instance_id)
            .field("name", &s.name)
            .finish()
    }
}

/// Options for a sub-orchestration call.
#[derive(Clone, Debug, Default)]
pub struct SubOrchestrationOptions {
    /// The child's instance id; by default `<parent id>:<call id as 4 hex digits>`.
    pub instance_id: Option<String>,
    pub version: Option<String>,
    pub tags: Tags,
}

impl OrchestrationContext {
    pub(crate) fn new(state: Arc<Mutex<State>>) -> Self {
        OrchestrationContext { state }
    }

    pub fn instance_id(&self) -> String {
        self.state.lock().instance_id.clone()
    }

    pub fn execution_id(&self) -> String {
        self.state.lock().execution_id.clone()
    }

    /// The orchestration's registered name.
    pub fn name(&self) -> String {
        self.state.lock().name.clone()
    }

    pub fn version(&self) -> Option<String> {
        self.state.lock().version.clone()
    }

    /// The parent's instance id, for a sub-orchestration.
    pub fn parent_instance_id(&self) -> Option<String> {
        self.state
            .lock()
            .parent
            .as_ref()
            .map(|p| p.orchestration_instance.instance_id.clone())
    }

    /// True while the code re-executes steps already recorded in history. Use it to keep side
    /// effects such as logging from happening twice.
    pub fn is_replaying(&self) -> bool {
        self.state.lock().replaying
    }

    /// A logger that writes only when the code runs for the first time, never while replaying,
    /// so every line appears once however often the orchestration is replayed.
    pub fn log(&self) -> ReplaySafeLog<'_> {
        ReplaySafeLog { ctx: self }
    }

    /// The deterministic current time: the start time of the turn being executed.
    pub fn current_time(&self) -> DateTime<Utc> {
        self.state.lock().current_time
    }

    /// A deterministic UUID (version 5, from the instance id, the turn time and a counter).
    pub fn new_uuid(&self) -> uuid::Uuid {
        let mut s = self.state.lock();
        s.uuid_counter += 1;
        let name = format!(
            "{}_{}_{}",
            s.instance_id,
            s.current_time
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            s.uuid_counter
        );
        uuid::Uuid::new_v5(&UUID_NAMESPACE, name.as_bytes())
    }

    /// Sets the custom status reported with the instance (any JSON value).
    pub fn set_custom_status<T: Serialize>(&self, status: T) {
        let text = serde_json::to_string(&status).ok();
        self.state.lock().custom_status = text;
    }

    /// Schedules an activity. `activity` is a typed [`Activity`] handle or a name.
    pub fn call_activity<I: Serialize, O: DeserializeOwned>(
        &self,
        activity: impl Into<Activity<I, O>>,
        input: I,
    ) -> TaskFuture<O> {
        let activity = activity.into();
        let name = activity.name().to_string();
        match encode_input(&input) {
            Ok(input) => self.issue_task(
                TaskKind::Activity,
                name.clone(),
                ActionKind::ScheduleTask {
                    name,
                    version: None,
                    input,
                    tags: Tags::new(),
                    parent_trace_context: None,
                },
            ),
            Err(details) => self.failed_task(TaskKind::Activity, name, details),
        }
    }

    /// Schedules an activity and retries it on failure as `policy` says, with durable timers
    /// between attempts.
    pub async fn call_activity_with_retry<I, O>(
        &self,
        activity: impl Into<Activity<I, O>>,
        input: I,
        policy: RetryPolicy,
    ) -> Result<O, super::TaskError>
    where
        I: Serialize + Clone,
        O: DeserializeOwned,
    {
        let activity: Activity<I, O> = activity.into();
        let started = self.current_time();
        let mut attempt = 1;
        loop {
            match self.call_activity(&activity, input.clone()).await {
                Ok(out) => return Ok(out),
                Err(err) => match policy.next_delay(attempt, started, self.current_time(), &err) {
                    Some(delay) => {
                        self.sleep(delay).await;
                        attempt += 1;
                    }
                    None => return Err(err),
                },
            }
        }
    }

    /// Starts a sub-orchestration and waits for its result.
    pub fn call_sub_orchestration<I: Serialize, O: DeserializeOwned>(
        &self,
        orchestration: impl Into<Orchestration<I, O>>,
        input: I,
    ) -> TaskFuture<O> {
        self.call_sub_orchestration_with(orchestration, input, SubOrchestrationOptions::default())
    }

    /// Starts a sub-orchestration with an explicit instance id, version or tags.
    pub fn call_sub_orchestration_with<I: Serialize, O: DeserializeOwned>(
        &self,
        orchestration: impl Into<Orchestration<I, O>>,
        input: I,
        options: SubOrchestrationOptions,
    ) -> TaskFuture<O> {
        let orchestration = orchestration.into();
        let name = orchestration.name().to_string();
        let input = match encode_input(&input) {
            Ok(input) => input,
            Err(details) => return self.failed_task(TaskKind::SubOrchestration, name, details),
        };
        let mut state = self.state.lock();
        let next_id = state.next_id;
        let instance_id = options
            .instance_id
            .unwrap_or_else(|| sub_orchestration_id(&state.instance_id, next_id));
        let id = state.issue(ActionKind::CreateSubOrchestration {
            instance_id,
            name: name.clone(),
            version: options.version,
            input,
            parent_trace_context: None,
            tags: options.tags,
        });
        drop(state);
        self.task_future(id, TaskKind::SubOrchestration, name)
    }

    /// Calls a sub-orchestration, retrying it on failure as `policy` says. Every attempt reuses
    /// the same child instance id, replacing the failed child.
    pub async fn call_sub_orchestration_with_retry<I, O>(
        &self,
        orchestration: impl Into<Orchestration<I, O>>,
        input: I,
        options: SubOrchestrationOptions,
        policy: RetryPolicy,
    ) -> Result<O, super::TaskError>
    where
        I: Serialize + Clone,
        O: DeserializeOwned,
    {
        let orchestration: Orchestration<I, O> = orchestration.into();
        let mut options = options;
        if options.instance_id.is_none() {
            let s = self.state.lock();
            options.instance_id = Some(sub_orchestration_id(&s.instance_id, s.next_id));
        }
        let started = self.current_time();
        let mut attempt = 1;
        loop {
            let call =
                self.call_sub_orchestration_with(&orchestration, input.clone(), options.clone());
            match call.await {
                Ok(out) => return Ok(out),
                Err(err) => match policy.next_delay(attempt, started, self.current_time(), &err) {
                    Some(delay) => {
                        self.sleep(delay).await;
                        attempt += 1;
                    }
                    None => return Err(err),
                },
            }
        }
    }

    /// A durable timer that fires at `fire_at` (any distance in the future; days are fine).
    pub fn create_timer(&self, fire_at: DateTime<Utc>) -> TimerFuture {
        let id = self.state.lock().issue(ActionKind::CreateTimer { fire_at });
        TimerFuture {
            state: self.state.clone(),
            id,
        }
    }

    /// A durable timer that fires `delay` after the current (deterministic) time.
    pub fn sleep(&self, delay: std::time::Duration) -> TimerFuture {
        let delay = Duration::from_std(delay).unwrap_or(Duration::MAX);
        let fire_at = self
            .current_time()
            .checked_add_signed(delay)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        self.create_timer(fire_at)
    }

    /// The next external event named `name`. Events raised before anyone waits are kept and
    /// handed out in arrival order.
    pub fn wait_for_event<T: DeserializeOwned>(&self, name: &str) -> EventFuture<T> {
        let waiter = self.state.lock().add_waiter(name);
        EventFuture {
            state: self.state.clone(),
            waiter,
            name: name.to_string(),
            done: false,
            _out: PhantomData,
        }
    }

    /// Sends an event to another instance (fire and forget; dropped if it does not exist).
    pub fn send_event<T: Serialize>(&self, instance_id: &str, name: &str, data: T) {
        let data = serde_json::to_string(&data).ok();
        self.state.lock().issue(ActionKind::SendEvent {
            instance: OrchestrationInstance {
                instance_id: instance_id.to_string(),
                execution_id: None,
            },
            name: name.to_string(),
            data,
        });
    }

    /// Ends this execution and starts a fresh one with `input` and an empty history. Events that
    /// arrived and were not consumed are carried over. Await it or return after calling it.
    pub fn continue_as_new<T>(&self, input: impl Serialize) -> ContinueAsNewFuture<T> {
        let input = encode_input(&input).ok().flatten();
        let mut s = self.state.lock();
        let version = s.version.clone();
        s.continue_as_new = Some(ContinueAsNewRequest { input, version });
        ContinueAsNewFuture { _out: PhantomData }
    }

    /// Sends a one-way operation to an entity (it is created on first use).
    pub fn signal_entity<I: Serialize>(&self, entity: &EntityId, operation: &str, input: I) {
        self.signal_entity_at(entity, operation, input, None);
    }

    /// Sends a one-way operation to an entity, applied no earlier than `at`.
    pub fn signal_entity_at<I: Serialize>(
        &self,
        entity: &EntityId,
        operation: &str,
        input: I,
        at: Option<DateTime<Utc>>,
    ) {
        let input = encode_input(&input).ok().flatten();
        let request_id = self.new_uuid().to_string();
        self.state.lock().issue(ActionKind::SendEntityMessage {
            event: EventKind::EntityOperationSignaled {
                request_id,
                operation: operation.to_string(),
                scheduled_time: at,
                input,
                target_instance_id: Some(entity.to_string()),
            },
        });
    }

    /// Calls an entity operation and waits for its result.
    pub fn call_entity<I: Serialize, O: DeserializeOwned>(
        &self,
        entity: &EntityId,
        operation: &str,
        input: I,
    ) -> TaskFuture<O> {
        let name = format!("'{operation}' on {entity}");
        let input = match encode_input(&input) {
            Ok(input) => input,
            Err(details) => return self.failed_task(TaskKind::Entity, name, details),
        };
        let request_id = self.new_uuid().to_string();
        let mut s = self.state.lock();
        let event = EventKind::EntityOperationCalled {
            request_id: request_id.clone(),
            operation: operation.to_string(),
            scheduled_time: None,
            input,
            parent_instance_id: Some(s.instance_id.clone()),
            parent_execution_id: Some(s.execution_id.clone()),
            target_instance_id: Some(entity.to_string()),
        };
        let id = s.issue(ActionKind::SendEntityMessage { event });
        s.entity_requests.insert(request_id, id);
        drop(s);
        self.task_future(id, TaskKind::Entity, name)
    }

    /// Locks entities for a critical section: resolves once all of them are locked for this
    /// orchestration. Until the section is released (or the orchestration ends), the entities
    /// run only this orchestration's calls. Locks are taken in id order, so critical sections
    /// never deadlock.
    ///
    /// # Panics
    ///
    /// With no entities (which fails the orchestration with that message).
    pub fn lock_entities(&self, entities: &[EntityId]) -> LockFuture {
        assert!(
            !entities.is_empty(),
            "lock_entities needs at least one entity to lock"
        );
        let mut ids: Vec<String> = entities.iter().map(ToString::to_string).collect();
        ids.sort();
        ids.dedup();
        let section_id = self.new_uuid().to_string();
        let mut s = self.state.lock();
        let event = EventKind::EntityLockRequested {
            critical_section_id: section_id.clone(),
            lock_set: ids.clone(),
            position: 0,
            parent_instance_id: Some(s.instance_id.clone()),
        };
        let id = s.issue(ActionKind::SendEntityMessage { event });
        s.entity_requests.insert(section_id.clone(), id);
        s.sections.insert(section_id.clone(), (ids.clone(), false));
        drop(s);
        LockFuture {
            state: self.state.clone(),
            id,
            section: Some(CriticalSection {
                ctx: self.clone(),
                id: section_id,
                entities: ids,
            }),
        }
    }

    /// Sends the unlocks of a critical section, once.
    pub(crate) fn release_section(&self, section_id: &str) {
        let mut s = self.state.lock();
        let Some((entities, _)) = s.sections.remove(section_id) else {
            return;
        };
        let instance_id = s.instance_id.clone();
        for entity in entities {
            s.issue(ActionKind::SendEntityMessage {
                event: EventKind::EntityUnlockSent {
                    critical_section_id: section_id.to_string(),
                    parent_instance_id: Some(instance_id.clone()),
                    target_instance_id: Some(entity),
                },
            });
        }
    }

    fn issue_task<O>(&self, kind: TaskKind, name: String, action: ActionKind) -> TaskFuture<O> {
        let id = self.state.lock().issue(action);
        self.task_future(id, kind, name)
    }

    fn task_future<O>(&self, id: i32, kind: TaskKind, name: String) -> TaskFuture<O> {
        TaskFuture {
            state: self.state.clone(),
            id,
            kind,
            name,
            early: None,
            _out: PhantomData,
        }
    }

    fn failed_task<O>(
        &self,
        kind: TaskKind,
        name: String,
        details: FailureDetails,
    ) -> TaskFuture<O> {
        TaskFuture {
            state: self.state.clone(),
            id: 0,
            kind,
            name,
            early: Some(details),
            _out: PhantomData,
        }
    }
}

/// Entities locked by an orchestration. Release it when done; whatever is still locked is
/// released when the orchestration ends.
#[derive(Debug)]
pub struct CriticalSection {
    ctx: OrchestrationContext,
    id: String,
    entities: Vec<String>,
}

impl CriticalSection {
    /// The locked entities' ids, sorted.
    pub fn entities(&self) -> &[String] {
        &self.entities
    }

    /// Releases every lock of the section.
    pub fn release(self) {
        self.ctx.release_section(&self.id);
    }
}

/// Fixed namespace for deterministic UUIDs (the DNS namespace, as DTFx uses).
const UUID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6ba7b810_9dad_11d1_80b4_00c04fd430c8);

fn encode_input<I: Serialize>(input: &I) -> Result<Option<String>, FailureDetails> {
    match serde_json::to_string(input) {
        Ok(text) if text == "null" => Ok(None),
        Ok(text) => Ok(Some(text)),
        Err(e) => Err(FailureDetails::new("SerializationError", e.to_string())),
    }
}

/// Returned by [`OrchestrationContext::log`]. Events go to `tracing` (target `durable::orchestration`)
/// with the instance id and orchestration name, and are dropped during replay.
#[derive(Debug, Clone, Copy)]
pub struct ReplaySafeLog<'a> {
    ctx: &'a OrchestrationContext,
}

macro_rules! log_level {
    ($name:ident, $level:ident) => {
        pub fn $name(&self, message: impl std::fmt::Display) {
            let s = self.ctx.state.lock();
            if s.replaying {
                return;
            }
            tracing::$level!(
                target: "durable::orchestration",
                instance_id = %s.instance_id,
                execution_id = %s.execution_id,
                name = %s.name,
                is_replay = false,
                "{message}"
            );
        }
    };
}

impl ReplaySafeLog<'_> {
    log_level!(trace, trace);
    log_level!(debug, debug);
    log_level!(info, info);
    log_level!(warn, warn);
    log_level!(error, error);
}
