//! What entity code sees: [`EntityContext`]; and what clients see: [`EntityState`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{EntityId, EntitySchedule, to_instance};
use crate::event::EventKind;
use crate::work::NewMessage;

/// What an entity operation sees and does: its input, the entity's state, and the signals and
/// orchestration starts it sends.
#[derive(Debug)]
pub struct EntityContext {
    id: EntityId,
    operation: String,
    input: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) signals: Vec<NewMessage>,
    pub(crate) starts: Vec<crate::instance::NewInstance>,
    now: DateTime<Utc>,
}

fn json<T: Serialize>(value: &T) -> Result<Option<String>, crate::Error> {
    let text = serde_json::to_string(value)
        .map_err(|e| crate::Error::new("SerializationError", e.to_string()))?;
    Ok((text != "null").then_some(text))
}

fn decode<T: serde::de::DeserializeOwned>(
    text: Option<&str>,
    what: &str,
) -> Result<T, crate::Error> {
    serde_json::from_str(text.unwrap_or("null"))
        .map_err(|e| crate::Error::new("InvalidInput", format!("{what} could not be decoded: {e}")))
}

impl EntityContext {
    pub fn new(
        id: EntityId,
        operation: &str,
        input: Option<String>,
        state: Option<String>,
        now: DateTime<Utc>,
    ) -> Self {
        EntityContext {
            id,
            operation: operation.to_string(),
            input,
            state,
            signals: Vec::new(),
            starts: Vec::new(),
            now,
        }
    }

    pub fn id(&self) -> &EntityId {
        &self.id
    }

    /// The operation's name, as the caller sent it.
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// The operation's input (`null` when it has none).
    pub fn input<T: serde::de::DeserializeOwned>(&self) -> Result<T, crate::Error> {
        decode(self.input.as_deref(), "the operation's input")
    }

    /// The entity's state, `None` when it has none.
    pub fn state<T: serde::de::DeserializeOwned>(&self) -> Result<Option<T>, crate::Error> {
        self.state
            .as_deref()
            .map(|s| decode(Some(s), "the entity's state"))
            .transpose()
    }

    /// The entity's state, or the type's default when it has none.
    pub fn state_or_default<T: serde::de::DeserializeOwned + Default>(
        &self,
    ) -> Result<T, crate::Error> {
        Ok(self.state()?.unwrap_or_default())
    }

    pub fn set_state<T: Serialize>(&mut self, state: &T) -> Result<(), crate::Error> {
        self.state = Some(json(state)?.unwrap_or_else(|| "null".into()));
        Ok(())
    }

    /// Deletes the state: the entity no longer exists (until its next operation sets one).
    pub fn delete_state(&mut self) {
        self.state = None;
    }

    /// Sends a one-way operation to another entity (after this batch commits).
    pub fn signal_entity<I: Serialize>(
        &mut self,
        entity: &EntityId,
        operation: &str,
        input: I,
    ) -> Result<(), crate::Error> {
        let kind = EventKind::EntityOperationSignaled {
            request_id: crate::ids::new_instance_id(),
            operation: operation.to_string(),
            scheduled_time: None,
            input: json(&input)?,
            target_instance_id: Some(entity.to_string()),
        };
        self.signals
            .push(to_instance(&entity.to_string(), self.now, kind));
        Ok(())
    }

    /// Starts an orchestration (after this batch commits); returns its instance id.
    pub fn start_orchestration<I: Serialize>(
        &mut self,
        name: &str,
        input: I,
    ) -> Result<String, crate::Error> {
        let id = crate::ids::new_instance_id();
        let mut new = crate::instance::NewInstance::new(name, id.clone());
        new.input = json(&input)?;
        self.starts.push(new);
        Ok(id)
    }

    /// Takes what the operation produced: the state and the messages and starts it sent.
    pub fn into_parts(
        self,
    ) -> (
        Option<String>,
        Vec<NewMessage>,
        Vec<crate::instance::NewInstance>,
    ) {
        (self.state, self.signals, self.starts)
    }
}

/// What an entity's current state looks like from outside.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityState {
    pub id: String,
    pub name: String,
    pub key: String,
    /// The state as JSON; `None` means the entity does not exist (no state).
    pub state: Option<String>,
    pub last_modified: DateTime<Utc>,
    /// The critical section holding the entity, if locked.
    pub locked_by: Option<String>,
    /// The orchestration instance holding the lock, if locked.
    #[serde(default)]
    pub lock_owner: Option<String>,
    /// Operations waiting for the lock to be released.
    pub backlog: usize,
}

impl EntityState {
    /// Reads an entity out of its instance record.
    pub fn of(instance: &crate::instance::InstanceState) -> Option<EntityState> {
        let id = EntityId::parse(&instance.instance_id)?;
        let schedule = EntitySchedule::from_json(instance.input.as_deref());
        Some(EntityState {
            id: instance.instance_id.clone(),
            name: id.name,
            key: id.key,
            state: instance.custom_status.clone(),
            last_modified: instance.updated_at,
            lock_owner: schedule.lock.as_ref().map(|l| l.owner.clone()),
            locked_by: schedule.lock.map(|l| l.critical_section_id),
            backlog: schedule.queue.len(),
        })
    }
}
