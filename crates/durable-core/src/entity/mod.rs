//! Durable entities: small addressable objects with state whose operations run one at a time.
//!
//! An entity is stored as an instance whose id is `@name@key`. Its inbox receives operation
//! requests (signals and calls), lock requests and unlocks. The [`plan`] function decides, in a
//! pure and deterministic way, which operations a batch runs and in which order, honouring
//! critical sections: while an orchestration holds an entity's lock, only that orchestration's
//! calls run and everything else waits in the entity's own queue.
//!
//! Locks on several entities are taken one entity after the other in sorted id order (each entity
//! forwards the request to the next), which makes critical sections deadlock-free.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{EventKind, HistoryEvent};
use crate::work::NewMessage;

mod batch;
mod context;

pub use batch::{
    Batch, BatchOutcome, BatchStats, ResultCountMismatch, apply, execute, poison_failure, prepare,
};
pub use context::{EntityContext, EntityState};

/// An entity's id: `@name@key`, the name in lower case.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityId {
    pub name: String,
    pub key: String,
}

impl EntityId {
    pub fn new(name: &str, key: &str) -> Self {
        EntityId {
            name: name.to_ascii_lowercase(),
            key: key.to_string(),
        }
    }

    /// Parses `@name@key`.
    pub fn parse(id: &str) -> Option<Self> {
        let rest = id.strip_prefix('@')?;
        let (name, key) = rest.split_once('@')?;
        (!name.is_empty()).then(|| EntityId::new(name, key))
    }

    /// Whether an instance id names an entity.
    pub fn is_entity(instance_id: &str) -> bool {
        Self::parse(instance_id).is_some()
    }
}

impl std::fmt::Display for EntityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "@{}@{}", self.name, self.key)
    }
}

/// Who holds an entity's lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityLock {
    pub critical_section_id: String,
    /// The orchestration instance holding the lock.
    pub owner: String,
}

/// What an entity keeps besides its user state: its lock and the messages waiting for it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntitySchedule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<EntityLock>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queue: Vec<HistoryEvent>,
    /// Critical sections unlocked before their lock request reached this entity (their
    /// orchestration ended while the request travelled). The request, when it comes, is passed
    /// on without taking the lock.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub released: Vec<String>,
}

/// Unlocks remembered for requests still on their way; beyond this the oldest are forgotten.
const MAX_RELEASED: usize = 1000;

impl EntitySchedule {
    pub fn from_json(text: Option<&str>) -> Self {
        text.and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default()
    }

    pub fn to_json(&self) -> Option<String> {
        (self != &EntitySchedule::default())
            .then(|| serde_json::to_string(self).expect("schedules serialize"))
    }
}

/// One operation to run.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    pub request_id: String,
    pub operation: String,
    pub input: Option<String>,
    /// For calls: the orchestration (instance, execution) waiting for the result.
    pub caller: Option<(String, Option<String>)>,
    /// The request as received (`EntityOperationSignaled` or `EntityOperationCalled`).
    pub event: HistoryEvent,
}

/// What a batch does, decided before any operation runs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EntityPlan {
    /// Operations to run, in order.
    pub operations: Vec<Operation>,
    /// Lock forwards and grants.
    pub messages: Vec<NewMessage>,
    /// The schedule after the batch.
    pub schedule: EntitySchedule,
}

fn to_instance(id: &str, now: DateTime<Utc>, kind: EventKind) -> NewMessage {
    NewMessage {
        instance_id: id.to_string(),
        execution_id: None,
        event: HistoryEvent::unnumbered(now, kind),
        visible_at: None,
    }
}

/// Plans a batch for an entity: its queued messages first, then the new ones, in order.
pub fn plan(
    schedule: EntitySchedule,
    incoming: Vec<HistoryEvent>,
    now: DateTime<Utc>,
) -> EntityPlan {
    let mut lock = schedule.lock;
    let mut released = schedule.released;
    let mut pending: std::collections::VecDeque<HistoryEvent> =
        schedule.queue.into_iter().chain(incoming).collect();
    let mut deferred = Vec::new();
    let mut plan = EntityPlan::default();
    while let Some(event) = pending.pop_front() {
        match &event.kind {
            EventKind::EntityOperationSignaled {
                request_id,
                operation,
                input,
                ..
            } => {
                if lock.is_some() {
                    deferred.push(event);
                    continue;
                }
                plan.operations.push(Operation {
                    request_id: request_id.clone(),
                    operation: operation.clone(),
                    input: input.clone(),
                    caller: None,
                    event: event.clone(),
                });
            }
            EventKind::EntityOperationCalled {
                request_id,
                operation,
                input,
                parent_instance_id,
                parent_execution_id,
                ..
            } => {
                let allowed = match &lock {
                    None => true,
                    Some(l) => parent_instance_id.as_deref() == Some(l.owner.as_str()),
                };
                if !allowed {
                    deferred.push(event);
                    continue;
                }
                plan.operations.push(Operation {
                    request_id: request_id.clone(),
                    operation: operation.clone(),
                    input: input.clone(),
                    caller: parent_instance_id
                        .clone()
                        .map(|p| (p, parent_execution_id.clone())),
                    event: event.clone(),
                });
            }
            EventKind::EntityLockRequested {
                critical_section_id,
                lock_set,
                position,
                parent_instance_id,
            } => {
                let gone = released.iter().position(|r| r == critical_section_id);
                if gone.is_none() && lock.is_some() {
                    deferred.push(event);
                    continue;
                }
                let owner = parent_instance_id.clone().unwrap_or_default();
                if let Some(i) = gone {
                    released.remove(i);
                } else {
                    lock = Some(EntityLock {
                        critical_section_id: critical_section_id.clone(),
                        owner: owner.clone(),
                    });
                }
                let next = (*position as usize) + 1;
                let message = match lock_set.get(next) {
                    Some(entity) => to_instance(
                        entity,
                        now,
                        EventKind::EntityLockRequested {
                            critical_section_id: critical_section_id.clone(),
                            lock_set: lock_set.clone(),
                            position: next as i32,
                            parent_instance_id: parent_instance_id.clone(),
                        },
                    ),
                    // The owner ended: nobody waits for the grant.
                    None if gone.is_some() => continue,
                    None => to_instance(
                        &owner,
                        now,
                        EventKind::EntityLockGranted {
                            critical_section_id: critical_section_id.clone(),
                        },
                    ),
                };
                plan.messages.push(message);
            }
            EventKind::EntityUnlockSent {
                critical_section_id,
                ..
            } => {
                if lock
                    .as_ref()
                    .is_some_and(|l| &l.critical_section_id == critical_section_id)
                {
                    lock = None;
                    // Everything that waited for the lock gets its turn, in arrival order.
                    for waiting in deferred.drain(..).rev() {
                        pending.push_front(waiting);
                    }
                } else {
                    released.push(critical_section_id.clone());
                    if released.len() > MAX_RELEASED {
                        released.remove(0);
                    }
                }
            }
            _ => {}
        }
    }
    plan.schedule = EntitySchedule {
        lock,
        queue: deferred,
        released,
    };
    plan
}

/// The reply to a call, for the waiting orchestration.
pub fn reply(
    caller: &(String, Option<String>),
    request_id: &str,
    result: Result<Option<String>, crate::failure::FailureDetails>,
    now: DateTime<Utc>,
) -> NewMessage {
    let kind = match result {
        Ok(output) => EventKind::EntityOperationCompleted {
            request_id: request_id.to_string(),
            output,
        },
        Err(failure_details) => EventKind::EntityOperationFailed {
            request_id: request_id.to_string(),
            failure_details,
        },
    };
    NewMessage {
        instance_id: caller.0.clone(),
        execution_id: caller.1.clone(),
        event: HistoryEvent::unnumbered(now, kind),
        visible_at: None,
    }
}

/// The unlocks owed by an execution that ends without its code running to the end (terminated,
/// poisoned): one per entity of every critical section it requested and did not release, with
/// action ids after those in its history.
pub fn unlocks_owed(history: &[HistoryEvent], instance_id: &str) -> Vec<crate::action::Action> {
    let mut open: Vec<(String, Vec<String>)> = Vec::new();
    let mut next_id = 0;
    for event in history {
        next_id = next_id.max(event.event_id + 1);
        match &event.kind {
            EventKind::EntityLockRequested {
                critical_section_id,
                lock_set,
                ..
            } => open.push((critical_section_id.clone(), lock_set.clone())),
            EventKind::EntityUnlockSent {
                critical_section_id,
                ..
            } => open.retain(|(id, _)| id != critical_section_id),
            _ => {}
        }
    }
    let mut actions = Vec::new();
    for (section, entities) in open {
        for entity in entities {
            actions.push(crate::action::Action {
                id: next_id,
                kind: crate::action::ActionKind::SendEntityMessage {
                    event: EventKind::EntityUnlockSent {
                        critical_section_id: section.clone(),
                        parent_instance_id: Some(instance_id.to_string()),
                        target_instance_id: Some(entity),
                    },
                },
            });
            next_id += 1;
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn signal(id: &str) -> HistoryEvent {
        HistoryEvent::unnumbered(
            at(),
            EventKind::EntityOperationSignaled {
                request_id: id.into(),
                operation: "add".into(),
                scheduled_time: None,
                input: Some("1".into()),
                target_instance_id: Some("@counter@a".into()),
            },
        )
    }

    fn call(id: &str, from: &str) -> HistoryEvent {
        HistoryEvent::unnumbered(
            at(),
            EventKind::EntityOperationCalled {
                request_id: id.into(),
                operation: "get".into(),
                scheduled_time: None,
                input: None,
                parent_instance_id: Some(from.into()),
                parent_execution_id: Some("e".into()),
                target_instance_id: Some("@counter@a".into()),
            },
        )
    }

    fn lock(cs: &str, from: &str, set: &[&str], position: i32) -> HistoryEvent {
        HistoryEvent::unnumbered(
            at(),
            EventKind::EntityLockRequested {
                critical_section_id: cs.into(),
                lock_set: set.iter().map(|s| s.to_string()).collect(),
                position,
                parent_instance_id: Some(from.into()),
            },
        )
    }

    fn unlock(cs: &str) -> HistoryEvent {
        HistoryEvent::unnumbered(
            at(),
            EventKind::EntityUnlockSent {
                critical_section_id: cs.into(),
                parent_instance_id: None,
                target_instance_id: None,
            },
        )
    }

    fn ids(plan: &EntityPlan) -> Vec<&str> {
        plan.operations
            .iter()
            .map(|o| o.request_id.as_str())
            .collect()
    }

    #[test]
    fn ids_parse() {
        let id = EntityId::parse("@Counter@k1").unwrap();
        assert_eq!(id.to_string(), "@counter@k1");
        assert!(EntityId::parse("counter@k1").is_none());
        assert!(EntityId::parse("@@k").is_none());
        assert!(EntityId::is_entity("@c@"));
    }

    #[test]
    fn a_critical_section_holds_others_back_until_unlock() {
        let set = ["@counter@a", "@counter@b"];
        let incoming = vec![
            signal("s1"),
            lock("cs", "orch", &set, 0),
            signal("s2"),
            call("c1", "other"),
            call("c2", "orch"),
            unlock("cs"),
            signal("s3"),
        ];
        let p = plan(EntitySchedule::default(), incoming, at());
        assert_eq!(ids(&p), ["s1", "c2", "s2", "c1", "s3"]);
        assert!(p.schedule.lock.is_none() && p.schedule.queue.is_empty());
        // The lock request went on to the next entity of the set.
        assert_eq!(p.messages.len(), 1);
        assert_eq!(p.messages[0].instance_id, "@counter@b");
        assert!(matches!(
            p.messages[0].event.kind,
            EventKind::EntityLockRequested { position: 1, .. }
        ));
    }

    #[test]
    fn the_last_entity_grants_and_waiting_work_survives_batches() {
        let set = ["@counter@a"];
        let p = plan(
            EntitySchedule::default(),
            vec![
                lock("cs", "orch", &set, 0),
                signal("s1"),
                lock("cs2", "x", &set, 0),
            ],
            at(),
        );
        assert!(ids(&p).is_empty());
        assert_eq!(p.messages[0].instance_id, "orch");
        assert!(matches!(
            p.messages[0].event.kind,
            EventKind::EntityLockGranted { .. }
        ));
        assert_eq!(
            p.schedule.queue.len(),
            2,
            "the signal and the second lock wait"
        );
        let json = p.schedule.to_json();
        let restored = EntitySchedule::from_json(json.as_deref());
        let p = plan(restored, vec![unlock("cs")], at());
        assert_eq!(ids(&p), ["s1"]);
        assert_eq!(p.schedule.lock.as_ref().unwrap().critical_section_id, "cs2");
        assert_eq!(p.messages[0].instance_id, "x", "the next holder is granted");
    }

    #[test]
    fn an_unlock_before_its_request_lets_the_request_pass() {
        let set = ["@counter@a", "@counter@b"];
        // b is held by another section when the ended orchestration's unlock arrives.
        let held = plan(
            EntitySchedule::default(),
            vec![lock("other", "x", &["@counter@b"], 0), unlock("cs")],
            at(),
        );
        assert_eq!(held.schedule.released, ["cs"]);
        // Then the request comes, forwarded by a: it passes without locking or granting.
        let p = plan(
            held.schedule,
            vec![lock("cs", "orch", &set, 1), signal("s1")],
            at(),
        );
        assert_eq!(
            p.schedule.lock.as_ref().unwrap().critical_section_id,
            "other"
        );
        assert!(p.schedule.released.is_empty());
        assert!(p.messages.is_empty(), "no grant for an ended owner");
        let p = plan(p.schedule, vec![unlock("other")], at());
        assert_eq!(ids(&p), ["s1"]);
        assert!(p.schedule.lock.is_none() && p.schedule.queue.is_empty());
    }

    #[test]
    fn unlocks_owed_cover_open_sections_only() {
        let mut history = vec![
            lock("cs1", "orch", &["@c@a", "@c@b"], 0),
            lock("cs2", "orch", &["@c@c"], 0),
            unlock("cs2"),
        ];
        for (i, e) in history.iter_mut().enumerate() {
            e.event_id = i as i32;
        }
        let owed = unlocks_owed(&history, "orch");
        let targets: Vec<_> = owed
            .iter()
            .map(|a| match &a.kind {
                crate::action::ActionKind::SendEntityMessage {
                    event:
                        EventKind::EntityUnlockSent {
                            critical_section_id,
                            target_instance_id,
                            ..
                        },
                } => (
                    a.id,
                    critical_section_id.as_str(),
                    target_instance_id.clone().unwrap(),
                ),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            targets,
            [
                (3, "cs1", "@c@a".to_string()),
                (4, "cs1", "@c@b".to_string())
            ]
        );
    }
}
