//! Durable entities: list them, read one's state, signal an operation.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use durable::core::ids::validate_instance_id;
use durable::core::limits::MAX_NAME_BYTES;
use durable::{EntityId, EntityQuery};
use serde::Deserialize;
use utoipa::{IntoParams, IntoResponses};

use super::AppState;
use super::filters::{check_top, page_response, request_cursor, time};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery, JsonBody};
use crate::model::{EntityStatus, raw};

/// The query of an entity listing; the cursor of the next page travels in the
/// `x-ms-continuation-token` header.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub(crate) struct ListParams {
    /// Include each entity's state (default false).
    fetch_state: Option<bool>,
    /// Last operation at or after (RFC 3339).
    last_operation_time_from: Option<String>,
    /// Last operation before (RFC 3339).
    last_operation_time_to: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    top: Option<usize>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub(crate) struct GetParams {
    /// Answer the entity's status (state, last operation time, lock) instead of its bare state.
    show_metadata: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SignalParams {
    /// The operation to run (required).
    op: Option<String>,
}

/// Checks an entity name: what a listing filters by and the first part of an id.
fn check_name(name: &str) -> Result<(), ApiError> {
    let problem = if name.is_empty() || name.len() > MAX_NAME_BYTES {
        Some(format!("must be 1 to {MAX_NAME_BYTES} bytes"))
    } else if name.contains('@') {
        Some("must not contain '@' (it separates name and key in an entity id)".into())
    } else if name.chars().any(char::is_control) {
        Some("must not contain control characters".into())
    } else {
        None
    };
    match problem {
        Some(p) => Err(ApiError::InvalidEntityId(format!(
            "entity name '{name}' {p}"
        ))),
        None => Ok(()),
    }
}

fn entity_id(name: &str, key: &str) -> Result<EntityId, ApiError> {
    check_name(name)?;
    let id = EntityId::new(name, key);
    validate_instance_id(&id.to_string())
        .map_err(|e| ApiError::InvalidEntityId(format!("entity id '{id}': {e}")))?;
    Ok(id)
}

/// The answers of an entity listing.
#[derive(IntoResponses)]
#[allow(dead_code)]
enum ListResponses {
    /// One page; `x-ms-continuation-token` is present when more pages exist.
    #[response(status = 200, headers(("x-ms-continuation-token" = String)))]
    Page(Vec<EntityStatus>),
    /// A bad name, filter or token.
    #[response(status = 400)]
    BadRequest(ErrorBody),
}

/// The entities of one name, oldest first, one page at a time, with
/// `x-ms-continuation-token` as in the instance listing. Entities without state are left out.
#[utoipa::path(
    get,
    path = "/runtime/webhooks/durabletask/entities/{name}",
    tag = "entities",
    params(("name" = String, Path, description = "The entity name (any letter case)"), ListParams),
    responses(ListResponses)
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<ListParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_name(&name)?;
    listing(&state, Some(name), &params, &headers).await
}

/// Every entity, whatever its name; otherwise as `GET /entities/{name}`.
#[utoipa::path(
    get,
    path = "/runtime/webhooks/durabletask/entities",
    tag = "entities",
    params(ListParams),
    responses(ListResponses)
)]
pub(crate) async fn list_all(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    listing(&state, None, &params, &headers).await
}

async fn listing(
    state: &AppState,
    name: Option<String>,
    params: &ListParams,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    check_top(params.top)?;
    let query = EntityQuery {
        name,
        include_stateless: false,
        last_modified_from: time("lastOperationTimeFrom", &params.last_operation_time_from)?,
        last_modified_to: time("lastOperationTimeTo", &params.last_operation_time_to)?,
        page_size: params.top,
        continuation_token: request_cursor(headers)?,
    };
    let page = state.client.list_entities(&query).await?;
    let show_state = params.fetch_state.unwrap_or(false);
    Ok(page_response(page, |e| EntityStatus::new(e, show_state)))
}

/// An entity's state as its body (`showMetadata=true`: its status); `404` when the entity has
/// never been addressed or has no state.
#[utoipa::path(
    get,
    path = "/runtime/webhooks/durabletask/entities/{name}/{key}",
    tag = "entities",
    params(("name" = String, Path), ("key" = String, Path), GetParams),
    responses(
        (status = 200, description = "The state, any JSON value (or the status with showMetadata=true)",
            body = EntityStatus),
        (status = 400, description = "A bad name or key", body = ErrorBody),
        (status = 404, description = "No such entity, or it has no state", body = ErrorBody),
    )
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    ApiPath((name, key)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<GetParams>,
) -> Result<Response, ApiError> {
    let id = entity_id(&name, &key)?;
    let entity = match state.client.get_entity(&id).await? {
        None => return Err(ApiError::EntityNotFound(format!("entity '{id}' not found"))),
        Some(entity) if entity.state.is_none() => {
            return Err(ApiError::EntityNotFound(format!(
                "entity '{id}' has no state (none was set, or it was deleted)"
            )));
        }
        Some(entity) => entity,
    };
    if params.show_metadata.unwrap_or(false) {
        return Ok(Json(EntityStatus::new(entity, true)).into_response());
    }
    let body = raw(entity.state.as_deref().unwrap_or("null"));
    Ok(Json(body).into_response())
}

/// Signal an entity: run operation `op` with the body (JSON; empty for none) as its input, one
/// way. The entity is created if it does not exist.
#[utoipa::path(
    post,
    path = "/runtime/webhooks/durabletask/entities/{name}/{key}",
    tag = "entities",
    params(("name" = String, Path), ("key" = String, Path), SignalParams),
    request_body(content = Object, description = "The operation's input, any JSON value", content_type = "application/json"),
    responses(
        (status = 202, description = "Queued"),
        (status = 400, description = "No op, a bad name or key, or malformed JSON", body = ErrorBody),
        (status = 404, description = "No entity of that name is registered", body = ErrorBody),
        (status = 413, description = "The body is over the limit", body = ErrorBody),
        (status = 415, description = "A content type that cannot carry JSON", body = ErrorBody),
    )
)]
pub(crate) async fn signal(
    State(state): State<AppState>,
    ApiPath((name, key)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<SignalParams>,
    JsonBody(input): JsonBody,
) -> Result<StatusCode, ApiError> {
    let id = entity_id(&name, &key)?;
    let Some(op) = params.op.filter(|op| !op.is_empty()) else {
        return Err(ApiError::InvalidInput(
            "the operation is missing: add ?op=NAME".into(),
        ));
    };
    if let Some(known) = state.catalog.known_entities()
        && !known.contains(&id.name)
    {
        return Err(ApiError::unknown_entity(&name, &known));
    }
    state
        .client
        .signal_entity_json(&id, &op, input, None)
        .await?;
    Ok(StatusCode::ACCEPTED)
}
