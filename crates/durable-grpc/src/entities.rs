//! Client RPCs on entities: signal, get, query, and clean the entity storage. Entities are
//! instances with ids `@name@key` in the same store (see `docs/entities.md`); these RPCs go
//! through the engine's [`durable::Client`] where it has the call, and read the store otherwise.

use chrono::Utc;
use durable::core::entity::{EntityId, EntitySchedule};
use durable::core::event::{EventKind, HistoryEvent};
use durable::core::instance::decode_cursor;
use durable::core::work::NewMessage;
use durable::{InstanceQuery, InstanceState};

use crate::convert::{entity_metadata, opt_datetime};
use crate::error::{RpcError, RpcResult};
use crate::hub::Hub;
use crate::instances::payload;
use crate::proto;

/// Entities per page when the query does not say; at most [`MAX_PAGE`].
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;
/// Entities one `CleanEntityStorage` call looks at; more are left for the next call.
const CLEAN_PAGE: usize = 500;

fn entity_id(text: &str) -> RpcResult<EntityId> {
    EntityId::parse(text).ok_or_else(|| {
        RpcError::bad(format!(
            "'{text}' is not an entity id: expected @name@key with a non-empty name"
        ))
    })
}

fn token(t: Option<String>) -> RpcResult<Option<String>> {
    match t.filter(|t| !t.is_empty()) {
        Some(t) if decode_cursor(&t).is_none() => {
            Err(RpcError::bad(format!("malformed continuation token '{t}'")))
        }
        t => Ok(t),
    }
}

/// `SignalEntity`: queued for the entity (created on first use), delivered at `scheduledTime`.
pub(crate) async fn signal(hub: &Hub, r: proto::SignalEntityRequest) -> RpcResult<()> {
    let id = entity_id(&r.instance_id)?;
    let at = opt_datetime(r.scheduled_time.as_ref())?.filter(|t| *t > Utc::now());
    hub.client
        .signal_entity_json(&id, &r.name, payload(r.input), at)
        .await?;
    Ok(())
}

/// `GetEntity`: an entity exists while it has state (as in Durable Functions); an entity that
/// was addressed but never set a state, or deleted it, answers `exists = false`.
pub(crate) async fn get(
    hub: &Hub,
    r: proto::GetEntityRequest,
) -> RpcResult<proto::GetEntityResponse> {
    let id = entity_id(&r.instance_id)?;
    let state = hub.store.get_instance(&id.to_string()).await?;
    let entity = state
        .filter(|s| s.custom_status.is_some())
        .map(|s| entity_metadata(&s, r.include_state));
    Ok(proto::GetEntityResponse {
        exists: entity.is_some(),
        entity,
    })
}

/// The id prefix a query names, in stored form: `@` in front if missing, the name part in lower
/// case (`Counter` and `@Counter@a` select `@counter…` and `@counter@a…`).
fn stored_prefix(prefix: &str) -> String {
    let rest = prefix.strip_prefix('@').unwrap_or(prefix);
    match rest.split_once('@') {
        Some((name, key)) => format!("@{}@{key}", name.to_ascii_lowercase()),
        None => format!("@{}", rest.to_ascii_lowercase()),
    }
}

/// `QueryEntities`: entities by id prefix and last-modified range (`from` inclusive, `to`
/// exclusive), in creation order, one page at a time. Without `includeTransient` only entities
/// with state are listed; pages can then be shorter than asked (the token still leads on).
pub(crate) async fn query(
    hub: &Hub,
    r: proto::QueryEntitiesRequest,
) -> RpcResult<proto::QueryEntitiesResponse> {
    let q = r
        .query
        .ok_or_else(|| RpcError::bad("QueryEntitiesRequest.query is required"))?;
    let page = match q.page_size {
        None => DEFAULT_PAGE,
        Some(n) if n <= 0 => {
            return Err(RpcError::bad(format!(
                "pageSize must be positive (got {n})"
            )));
        }
        Some(n) => (n as usize).min(MAX_PAGE),
    };
    let from = opt_datetime(q.last_modified_from.as_ref())?;
    let to = opt_datetime(q.last_modified_to.as_ref())?;
    let query = InstanceQuery {
        instance_id_prefix: q
            .instance_id_starts_with
            .filter(|p| !p.is_empty())
            .map(|p| stored_prefix(&p)),
        page_size: Some(page),
        continuation_token: token(q.continuation_token)?,
        fetch_payloads: true,
        entities: Some(true),
        ..Default::default()
    };
    let found = hub.store.query_instances(&query).await?;
    let entities = found
        .items
        .iter()
        .filter(|s| q.include_transient || s.custom_status.is_some())
        .filter(|s| from.is_none_or(|f| s.updated_at >= f) && to.is_none_or(|t| s.updated_at < t))
        .map(|s| entity_metadata(s, q.include_state))
        .collect();
    Ok(proto::QueryEntitiesResponse {
        entities,
        continuation_token: found.continuation_token,
    })
}

/// `CleanEntityStorage`, one page of entities per call. With `releaseOrphanedLocks`, every lock
/// held for an orchestration that no longer exists or has finished is released: the entity
/// receives the unlock the orchestration would have sent, and the operations waiting for the
/// lock run. With `removeEmptyEntities`, every entity without state, lock or waiting operation
/// and with nothing in its inbox is deleted (the store checks and deletes atomically).
pub(crate) async fn clean(
    hub: &Hub,
    r: proto::CleanEntityStorageRequest,
) -> RpcResult<proto::CleanEntityStorageResponse> {
    let query = InstanceQuery {
        page_size: Some(CLEAN_PAGE),
        continuation_token: token(r.continuation_token)?,
        fetch_payloads: true,
        entities: Some(true),
        ..Default::default()
    };
    let found = hub.store.query_instances(&query).await?;
    let (mut released, mut removed) = (0, 0);
    for entity in &found.items {
        if r.release_orphaned_locks && release_if_orphaned(hub, entity).await? {
            released += 1;
        } else if r.remove_empty_entities
            && entity.custom_status.is_none()
            && entity.input.is_none()
            && hub.store.remove_empty_entity(&entity.instance_id).await?
        {
            removed += 1;
        }
    }
    Ok(proto::CleanEntityStorageResponse {
        continuation_token: found.continuation_token,
        empty_entities_removed: removed,
        orphaned_locks_released: released,
    })
}

async fn release_if_orphaned(hub: &Hub, entity: &InstanceState) -> RpcResult<bool> {
    let Some(lock) = EntitySchedule::from_json(entity.input.as_deref()).lock else {
        return Ok(false);
    };
    let owner = hub.store.get_instance(&lock.owner).await?;
    if owner.is_some_and(|o| !o.status.is_terminal()) {
        return Ok(false);
    }
    let unlock = EventKind::EntityUnlockSent {
        critical_section_id: lock.critical_section_id,
        parent_instance_id: Some(lock.owner),
        target_instance_id: Some(entity.instance_id.clone()),
    };
    hub.store
        .send_message(NewMessage {
            instance_id: entity.instance_id.clone(),
            execution_id: None,
            event: HistoryEvent::unnumbered(Utc::now(), unlock),
            visible_at: None,
        })
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_stored_form() {
        assert_eq!(stored_prefix("Counter"), "@counter");
        assert_eq!(stored_prefix("@Counter@Key"), "@counter@Key");
        assert_eq!(stored_prefix("@co"), "@co");
    }
}
