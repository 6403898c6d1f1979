//! Actions on one instance: raise an event, terminate, suspend, resume, rewind, restart.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, IntoResponses};

use super::AppState;
use crate::check_status::{BaseUrl, CheckStatus};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery, JsonBody};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Reason {
    /// Why; recorded in history (for terminate it becomes the output).
    reason: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub(crate) struct RestartParams {
    /// Run under a new instance id (default true, as in Durable Functions) instead of the same.
    restart_with_new_instance_id: Option<bool>,
}

/// The answers of an action on an instance.
#[derive(IntoResponses)]
#[allow(dead_code)]
enum ActionResponses {
    /// Accepted: queued, or nothing to do.
    #[response(status = 202)]
    Accepted,
    /// Unknown instance.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The instance is live but the action cannot apply yet (rewind of a running instance).
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// The instance has finished and the action cannot apply.
    #[response(status = 410)]
    Gone(ErrorBody),
}

/// Turns an action's result into `202`, or its error into 404 / 409 / 410.
async fn accepted(
    state: &AppState,
    id: &str,
    result: Result<(), durable::ClientError>,
) -> Response {
    match result {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => ApiError::for_instance(&state.client, id, e)
            .await
            .into_response(),
    }
}

/// Raise an event; the body is its data (JSON; empty for none).
#[utoipa::path(
    post,
    path = "/runtime/webhooks/durabletask/instances/{instanceId}/raiseEvent/{eventName}",
    tag = "instances",
    params(("instanceId" = String, Path), ("eventName" = String, Path)),
    request_body(content = Object, description = "The event data, any JSON value", content_type = "application/json"),
    responses(ActionResponses)
)]
pub(crate) async fn raise_event(
    State(state): State<AppState>,
    ApiPath((id, event)): ApiPath<(String, String)>,
    JsonBody(data): JsonBody,
) -> Response {
    let result = state.client.raise_event_json(&id, &event, data).await;
    accepted(&state, &id, result).await
}

/// Terminate; `reason` becomes the output.
#[utoipa::path(
    post,
    path = "/runtime/webhooks/durabletask/instances/{instanceId}/terminate",
    tag = "instances",
    params(("instanceId" = String, Path), Reason),
    responses(ActionResponses)
)]
pub(crate) async fn terminate(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<Reason>,
) -> Response {
    let result = state.client.terminate(&id, q.reason, false).await;
    accepted(&state, &id, result).await
}

/// Suspend: the instance keeps its events but does not act on them until resumed.
#[utoipa::path(
    post,
    path = "/runtime/webhooks/durabletask/instances/{instanceId}/suspend",
    tag = "instances",
    params(("instanceId" = String, Path), Reason),
    responses(ActionResponses)
)]
pub(crate) async fn suspend(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<Reason>,
) -> Response {
    let result = state.client.suspend(&id, q.reason.as_deref()).await;
    accepted(&state, &id, result).await
}

/// Resume a suspended instance.
#[utoipa::path(
    post,
    path = "/runtime/webhooks/durabletask/instances/{instanceId}/resume",
    tag = "instances",
    params(("instanceId" = String, Path), Reason),
    responses(ActionResponses)
)]
pub(crate) async fn resume(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<Reason>,
) -> Response {
    let result = state.client.resume(&id, q.reason.as_deref()).await;
    accepted(&state, &id, result).await
}

/// Rewind a Failed instance: re-run it from its failed tasks.
#[utoipa::path(
    post,
    path = "/runtime/webhooks/durabletask/instances/{instanceId}/rewind",
    tag = "instances",
    params(("instanceId" = String, Path), Reason),
    responses(ActionResponses)
)]
pub(crate) async fn rewind(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<Reason>,
) -> Response {
    let result = state.client.rewind(&id, q.reason.as_deref()).await;
    accepted(&state, &id, result).await
}

/// Restart a finished instance with its name and input. Answers like a start.
#[utoipa::path(
    post,
    path = "/runtime/webhooks/durabletask/instances/{instanceId}/restart",
    tag = "instances",
    params(("instanceId" = String, Path), RestartParams),
    responses(
        (status = 202, description = "Started again", body = CheckStatus),
        (status = 404, description = "Unknown instance", body = ErrorBody),
        (status = 409, description = "The instance is still running", body = ErrorBody),
    )
)]
pub(crate) async fn restart(
    State(state): State<AppState>,
    base: BaseUrl,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<RestartParams>,
) -> Result<Response, ApiError> {
    let new_id = q.restart_with_new_instance_id.unwrap_or(true);
    match state.client.restart(&id, new_id).await {
        Ok(started) => Ok(CheckStatus::new(&base.0, &started).into_response()),
        Err(e) => Err(ApiError::for_instance(&state.client, &id, e).await),
    }
}
