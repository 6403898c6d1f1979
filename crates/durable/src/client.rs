//! The client: start, observe and manage instances.

use std::time::Duration;

use chrono::{DateTime, Utc};
use durable_core::ErrorCode;
use durable_core::entity::{EntityId, EntityState};
use durable_core::event::{EventKind, HistoryEvent, Tags, TraceContext};
use durable_core::ids::{new_instance_id, validate_instance_id};
use durable_core::instance::{
    IfExists, InstanceQuery, InstanceState, NewInstance, Page, PurgeFilter,
};
use durable_core::limits::{DEFAULT_MAX_PAYLOAD_BYTES, check_json, check_name};
use durable_core::registry::Orchestration;
use durable_core::status::RuntimeStatus;
use durable_core::work::{NewMessage, SendOutcome};
use durable_store::{SharedStore, StoreError};
use serde::Serialize;

/// Errors from client operations, each with a stable [`ErrorCode`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("invalid instance id: {0}")]
    InvalidInstanceId(String),
    #[error("payload of {size} bytes exceeds the limit of {limit} bytes")]
    PayloadTooLarge { size: usize, limit: usize },
    #[error("instance '{0}' not found")]
    NotFound(String),
    #[error("an instance with id '{0}' already exists and is not finished")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidState(String),
    #[error("timed out after {0:?} waiting for instance '{1}'")]
    Timeout(Duration, String),
    #[error(transparent)]
    Store(StoreError),
}

impl ClientError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ClientError::InvalidInput(_) => ErrorCode::InvalidInput,
            ClientError::InvalidInstanceId(_) => ErrorCode::InvalidInstanceId,
            ClientError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            ClientError::NotFound(_) => ErrorCode::InstanceNotFound,
            ClientError::AlreadyExists(_) => ErrorCode::AlreadyExists,
            ClientError::InvalidState(_) => ErrorCode::InvalidState,
            ClientError::Timeout(..) => ErrorCode::Timeout,
            ClientError::Store(e) => e.code(),
        }
    }
}

impl From<StoreError> for ClientError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => ClientError::NotFound(id),
            StoreError::AlreadyExists(id) => ClientError::AlreadyExists(id),
            StoreError::InvalidState(m) => ClientError::InvalidState(m),
            other => ClientError::Store(other),
        }
    }
}

pub type ClientResult<T> = Result<T, ClientError>;

/// What [`Client::start`] accepts: a typed [`Orchestration`] handle (which fixes the input
/// type) or a plain name.
pub trait StartTarget<I> {
    fn orchestration_name(&self) -> &str;
}

impl<I> StartTarget<I> for &str {
    fn orchestration_name(&self) -> &str {
        self
    }
}

impl<I> StartTarget<I> for String {
    fn orchestration_name(&self) -> &str {
        self
    }
}

impl<I, O> StartTarget<I> for Orchestration<I, O> {
    fn orchestration_name(&self) -> &str {
        self.name()
    }
}

impl<I, O> StartTarget<I> for &Orchestration<I, O> {
    fn orchestration_name(&self) -> &str {
        self.name()
    }
}

/// Everything a start can say. Built by [`Client::start_with`].
#[derive(Clone, Debug)]
pub struct StartRequest {
    pub name: String,
    pub instance_id: Option<String>,
    /// The input as JSON text; `None` for no input.
    pub input: Option<String>,
    pub version: Option<String>,
    pub scheduled_start_at: Option<DateTime<Utc>>,
    pub tags: Tags,
    pub if_exists: IfExists,
    /// The W3C trace context the orchestration runs in (its span becomes a child of it).
    pub trace_context: Option<TraceContext>,
}

impl StartRequest {
    pub fn new(name: impl Into<String>) -> Self {
        StartRequest {
            name: name.into(),
            instance_id: None,
            input: None,
            version: None,
            scheduled_start_at: None,
            tags: Tags::new(),
            if_exists: IfExists::replace_terminal(),
            trace_context: None,
        }
    }

    /// Runs the orchestration in this trace (e.g. from an incoming `traceparent` header).
    pub fn trace_context(mut self, context: TraceContext) -> Self {
        self.trace_context = Some(context);
        self
    }

    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = Some(id.into());
        self
    }

    /// Sets the input from a value (serialized to JSON).
    pub fn input<T: Serialize>(mut self, input: &T) -> Self {
        self.input = serde_json::to_string(input).ok().filter(|s| s != "null");
        self
    }

    /// Sets the input from JSON text, which is validated when the request is sent.
    pub fn input_json(mut self, json: impl Into<String>) -> Self {
        self.input = Some(json.into());
        self
    }

    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    pub fn start_at(mut self, at: DateTime<Utc>) -> Self {
        self.scheduled_start_at = Some(at);
        self
    }

    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// What to do if the id is taken; by default a finished instance is replaced and a live one
    /// is refused.
    pub fn if_exists(mut self, policy: IfExists) -> Self {
        self.if_exists = policy;
        self
    }
}

/// Starts, observes and manages instances in a store.
#[derive(Clone, Debug)]
pub struct Client {
    store: SharedStore,
    max_payload: usize,
}

fn encode<T: Serialize>(value: &T) -> ClientResult<Option<String>> {
    let text = serde_json::to_string(value)
        .map_err(|e| ClientError::InvalidInput(format!("value does not serialize to JSON: {e}")))?;
    Ok((text != "null").then_some(text))
}

impl Client {
    pub fn new(store: SharedStore) -> Self {
        Client {
            store,
            max_payload: DEFAULT_MAX_PAYLOAD_BYTES,
        }
    }

    /// Overrides the largest payload accepted (default 2 MiB).
    pub fn with_max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    fn check_payload(&self, payload: Option<&str>) -> ClientResult<()> {
        let Some(text) = payload else { return Ok(()) };
        if text.len() > self.max_payload {
            return Err(ClientError::PayloadTooLarge {
                size: text.len(),
                limit: self.max_payload,
            });
        }
        check_json(text).map_err(ClientError::InvalidInput)
    }

    /// Starts an orchestration (a typed handle or a name) with an input; returns the new
    /// instance id.
    pub async fn start<I: Serialize>(
        &self,
        orchestration: impl StartTarget<I>,
        input: I,
    ) -> ClientResult<String> {
        let mut request = StartRequest::new(orchestration.orchestration_name());
        request.input = encode(&input)?;
        self.start_with(request).await
    }

    /// Starts an orchestration as `request` describes.
    pub async fn start_with(&self, request: StartRequest) -> ClientResult<String> {
        check_name("orchestration", &request.name).map_err(ClientError::InvalidInput)?;
        let instance_id = match request.instance_id {
            Some(id) => {
                validate_instance_id(&id).map_err(ClientError::InvalidInstanceId)?;
                id
            }
            None => new_instance_id(),
        };
        self.check_payload(request.input.as_deref())?;
        let mut new = NewInstance::new(request.name, instance_id.clone());
        new.input = request.input;
        new.version = request.version;
        new.scheduled_start_at = request.scheduled_start_at;
        new.tags = request.tags;
        new.if_exists = request.if_exists;
        new.trace_context = request.trace_context;
        self.store.create_instance(new).await?;
        Ok(instance_id)
    }

    /// The instance's state, or `None` if it does not exist.
    pub async fn status(&self, instance_id: &str) -> ClientResult<Option<InstanceState>> {
        Ok(self.store.get_instance(instance_id).await?)
    }

    async fn existing(&self, instance_id: &str) -> ClientResult<InstanceState> {
        self.status(instance_id)
            .await?
            .ok_or_else(|| ClientError::NotFound(instance_id.to_string()))
    }

    /// Waits until the instance has started running (or already finished).
    pub async fn wait_for_start(
        &self,
        instance_id: &str,
        timeout: Duration,
    ) -> ClientResult<InstanceState> {
        self.wait_until(instance_id, timeout, |s| s.status != RuntimeStatus::Pending)
            .await
    }

    /// Waits until the instance is Completed, Failed or Terminated.
    pub async fn wait_for_completion(
        &self,
        instance_id: &str,
        timeout: Duration,
    ) -> ClientResult<InstanceState> {
        self.wait_until(instance_id, timeout, |s| s.status.is_terminal())
            .await
    }

    async fn wait_until(
        &self,
        instance_id: &str,
        timeout: Duration,
        done: impl Fn(&InstanceState) -> bool,
    ) -> ClientResult<InstanceState> {
        let deadline = tokio::time::Instant::now() + timeout;
        let watch = self.store.notifier().watch(instance_id);
        // Changes made by other processes arrive without a local signal: re-check now and then.
        let mut poll = Duration::from_millis(50);
        loop {
            let changed = watch.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let state = self.existing(instance_id).await?;
            if done(&state) {
                return Ok(state);
            }
            let wake = (tokio::time::Instant::now() + poll).min(deadline);
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(wake) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(ClientError::Timeout(timeout, instance_id.to_string()));
                    }
                    poll = (poll * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    async fn send(&self, instance_id: &str, kind: EventKind, action: &str) -> ClientResult<()> {
        let message = NewMessage {
            instance_id: instance_id.to_string(),
            execution_id: None,
            event: HistoryEvent::unnumbered(Utc::now(), kind),
            visible_at: None,
        };
        match self.store.send_message(message).await? {
            SendOutcome::Queued => Ok(()),
            SendOutcome::InstanceTerminal => {
                let status = self.existing(instance_id).await?.status;
                Err(ClientError::InvalidState(format!(
                    "cannot {action} instance '{instance_id}': it is already {status}"
                )))
            }
        }
    }

    /// Raises an external event. Events raised before the orchestration waits are kept.
    pub async fn raise_event<T: Serialize>(
        &self,
        instance_id: &str,
        name: &str,
        data: T,
    ) -> ClientResult<()> {
        let data = encode(&data)?;
        self.raise_event_json(instance_id, name, data).await
    }

    /// Raises an external event whose data is JSON text (validated here).
    pub async fn raise_event_json(
        &self,
        instance_id: &str,
        name: &str,
        data: Option<String>,
    ) -> ClientResult<()> {
        check_name("event", name).map_err(ClientError::InvalidInput)?;
        self.check_payload(data.as_deref())?;
        let kind = EventKind::EventRaised {
            name: name.to_string(),
            input: data,
        };
        self.send(instance_id, kind, "raise an event for").await
    }

    /// Terminates a running instance; `output` becomes its output. With `recursive`, its
    /// sub-orchestrations are terminated too.
    pub async fn terminate<T: Serialize>(
        &self,
        instance_id: &str,
        output: T,
        recursive: bool,
    ) -> ClientResult<()> {
        let input = encode(&output)?;
        self.check_payload(input.as_deref())?;
        let kind = EventKind::ExecutionTerminated {
            input,
            recurse: recursive,
        };
        self.send(instance_id, kind, "terminate").await
    }

    /// Suspends a running instance: it keeps receiving events but does not act on them until
    /// resumed. Suspending a suspended instance does nothing.
    pub async fn suspend(&self, instance_id: &str, reason: Option<&str>) -> ClientResult<()> {
        if self.existing(instance_id).await?.status == RuntimeStatus::Suspended {
            return Ok(());
        }
        let input = reason.map(|r| serde_json::to_string(r).expect("strings serialize"));
        self.send(
            instance_id,
            EventKind::ExecutionSuspended { input },
            "suspend",
        )
        .await
    }

    /// Resumes a suspended instance. Resuming an instance that is not suspended does nothing.
    pub async fn resume(&self, instance_id: &str, reason: Option<&str>) -> ClientResult<()> {
        let status = self.existing(instance_id).await?.status;
        if status.is_terminal() {
            return Err(ClientError::InvalidState(format!(
                "cannot resume instance '{instance_id}': it is already {status}"
            )));
        }
        let input = reason.map(|r| serde_json::to_string(r).expect("strings serialize"));
        self.send(instance_id, EventKind::ExecutionResumed { input }, "resume")
            .await
    }

    /// Starts a finished instance again with the same name, input and version. Returns the id
    /// it runs under: the same one, or a new one with `new_instance_id`.
    pub async fn restart(&self, instance_id: &str, new_instance_id: bool) -> ClientResult<String> {
        let old = self.existing(instance_id).await?;
        if !old.status.is_terminal() {
            return Err(ClientError::InvalidState(format!(
                "cannot restart instance '{instance_id}': it is {} (only finished instances restart)",
                old.status
            )));
        }
        let mut request = StartRequest::new(old.name);
        request.input = old.input;
        request.version = old.version;
        request.tags = old.tags;
        if !new_instance_id {
            request.instance_id = Some(instance_id.to_string());
        }
        self.start_with(request).await
    }

    /// Re-runs a Failed instance from its failed tasks.
    pub async fn rewind(&self, instance_id: &str, reason: Option<&str>) -> ClientResult<()> {
        let event = HistoryEvent::unnumbered(
            Utc::now(),
            EventKind::ExecutionRewound {
                reason: reason.map(str::to_string),
                parent_execution_id: None,
                instance_id: Some(instance_id.to_string()),
                parent_trace_context: None,
                name: None,
                version: None,
                input: None,
                parent_instance: None,
                tags: Tags::new(),
            },
        );
        Ok(self.store.rewind_instance(instance_id, event).await?)
    }

    /// Deletes a finished instance and its history (and its sub-orchestrations with
    /// `recursive`). Returns how many instances were deleted.
    pub async fn purge(&self, instance_id: &str, recursive: bool) -> ClientResult<u64> {
        Ok(self.store.purge_instance(instance_id, recursive).await?)
    }

    /// Deletes every finished instance matching the filter.
    pub async fn purge_by(&self, filter: &PurgeFilter) -> ClientResult<u64> {
        Ok(self.store.purge_instances(filter).await?)
    }

    /// One page of instances matching the query.
    pub async fn query(&self, query: &InstanceQuery) -> ClientResult<Page<InstanceState>> {
        Ok(self.store.query_instances(query).await?)
    }

    /// The history of the instance's current execution.
    pub async fn history(&self, instance_id: &str) -> ClientResult<Vec<HistoryEvent>> {
        self.existing(instance_id).await?;
        Ok(self.store.read_history(instance_id).await?)
    }
}

/// Entities: signal them and read their state.
impl Client {
    /// Sends a one-way operation to an entity, creating the entity if it does not exist yet.
    pub async fn signal_entity<T: Serialize>(
        &self,
        entity: &EntityId,
        operation: &str,
        input: T,
    ) -> ClientResult<()> {
        self.signal_entity_json(entity, operation, encode(&input)?, None)
            .await
    }

    /// Sends a one-way operation whose input is JSON text (validated here), delivered at `at`
    /// (now when `None`).
    pub async fn signal_entity_json(
        &self,
        entity: &EntityId,
        operation: &str,
        input: Option<String>,
        at: Option<DateTime<Utc>>,
    ) -> ClientResult<()> {
        check_name("operation", operation).map_err(ClientError::InvalidInput)?;
        let id = entity.to_string();
        validate_instance_id(&id).map_err(ClientError::InvalidInstanceId)?;
        self.check_payload(input.as_deref())?;
        let kind = EventKind::EntityOperationSignaled {
            request_id: new_instance_id(),
            operation: operation.to_string(),
            scheduled_time: at,
            input,
            target_instance_id: Some(id.clone()),
        };
        let message = NewMessage {
            instance_id: id,
            execution_id: None,
            event: HistoryEvent::unnumbered(Utc::now(), kind),
            visible_at: at,
        };
        self.store.send_message(message).await?;
        Ok(())
    }

    /// An entity's state, lock and backlog; `None` if it has never been addressed.
    pub async fn get_entity(&self, entity: &EntityId) -> ClientResult<Option<EntityState>> {
        let instance = self.status(&entity.to_string()).await?;
        Ok(instance.as_ref().and_then(EntityState::of))
    }

    /// One page of entities, optionally of one name. Entities without state (never set, or
    /// deleted) are listed only with `include_stateless`. [`Client::list_entities`] takes more
    /// filters.
    pub async fn query_entities(
        &self,
        name: Option<&str>,
        include_stateless: bool,
        page_size: Option<usize>,
        continuation_token: Option<String>,
    ) -> ClientResult<Page<EntityState>> {
        let query = crate::EntityQuery {
            name: name.map(str::to_string),
            include_stateless,
            page_size,
            continuation_token,
            ..Default::default()
        };
        self.list_entities(&query).await
    }
}
