//! `GET /instances/{instanceId}` (status) and `GET /instances` (list).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::filters::{Filters, page_response, request_cursor};
use crate::check_status::{BaseUrl, accepted, instance_uri, short_status_uri};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::model::{InstanceStatus, TimelineEntry};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub(crate) struct StatusParams {
    /// Include the input (default true).
    show_input: Option<bool>,
    /// Include the current execution's history as `historyEvents` (default false).
    show_history: Option<bool>,
    /// Include payloads (inputs, results) in `historyEvents` (default false).
    show_history_output: Option<bool>,
}

/// An instance's status: `202` with `Location` while it runs, `200` once it has finished.
#[utoipa::path(
    get,
    path = "/runtime/webhooks/durabletask/instances/{instanceId}",
    tag = "instances",
    params(("instanceId" = String, Path), StatusParams),
    responses(
        (status = 200, description = "Completed, Failed or Terminated", body = InstanceStatus),
        (status = 202, description = "Pending, Running, ContinuedAsNew or Suspended; `Location` is this URI",
            body = InstanceStatus, headers(("Location" = String), ("Retry-After" = u32))),
        (status = 404, description = "Unknown instance", body = ErrorBody),
    )
)]
pub(crate) async fn status(
    State(state): State<AppState>,
    base: BaseUrl,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<StatusParams>,
) -> Result<Response, ApiError> {
    let location = instance_uri(&base.0, &id);
    answer(&state, &id, &params, &location).await
}

/// The seed's short status route; the same answer, with `Location` pointing here.
#[utoipa::path(
    get,
    path = "/admin/extensions/DurableTaskExtension/{instanceId}",
    tag = "short forms",
    params(("instanceId" = String, Path), StatusParams),
    responses(
        (status = 200, description = "Finished", body = InstanceStatus),
        (status = 202, description = "Still running", body = InstanceStatus),
        (status = 404, description = "Unknown instance", body = ErrorBody),
    )
)]
pub(crate) async fn status_short(
    State(state): State<AppState>,
    base: BaseUrl,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<StatusParams>,
) -> Result<Response, ApiError> {
    let location = short_status_uri(&base.0, &id);
    answer(&state, &id, &params, &location).await
}

async fn answer(
    state: &AppState,
    id: &str,
    params: &StatusParams,
    location: &str,
) -> Result<Response, ApiError> {
    let instance = state
        .client
        .status(id)
        .await?
        .ok_or_else(|| ApiError::InstanceNotFound(format!("instance '{id}' not found")))?;
    let finished = instance.status.is_terminal();
    let mut body = InstanceStatus::new(instance, params.show_input.unwrap_or(true));
    if params.show_history.unwrap_or(false) {
        let history = state.client.history(id).await?;
        body = body.with_history(history, params.show_history_output.unwrap_or(false));
    }
    Ok(if finished {
        Json(body).into_response()
    } else {
        accepted(location, Json(body))
    })
}

/// The history of an instance as a readable timeline: each step with its name, time, how long
/// it took and its result.
#[utoipa::path(
    get,
    path = "/runtime/webhooks/durabletask/instances/{instanceId}/timeline",
    tag = "instances",
    params(("instanceId" = String, Path)),
    responses(
        (status = 200, description = "The current execution's timeline", body = Vec<TimelineEntry>),
        (status = 404, description = "Unknown instance", body = ErrorBody),
    )
)]
pub(crate) async fn timeline(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<TimelineEntry>>, ApiError> {
    let history = state.client.history(&id).await?;
    let rows = durable::core::timeline::timeline(&history);
    Ok(Json(rows.into_iter().map(TimelineEntry::from).collect()))
}

/// Instances matching the filters, oldest first, one page at a time. When more pages exist the
/// answer carries `x-ms-continuation-token`; send it back as a request header for the next page.
#[utoipa::path(
    get,
    path = "/runtime/webhooks/durabletask/instances",
    tag = "instances",
    params(
        Filters,
        ("x-ms-continuation-token" = Option<String>, Header, description = "Cursor from the previous page"),
    ),
    responses(
        (status = 200, description = "One page", body = Vec<InstanceStatus>,
            headers(("x-ms-continuation-token" = String, description = "Present when more pages exist"))),
        (status = 400, description = "A bad filter or token", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiQuery(filters): ApiQuery<Filters>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let query = filters.query(request_cursor(&headers)?)?;
    let page = state.client.query(&query).await?;
    let show_input = filters.show_input();
    Ok(page_response(page, |s| InstanceStatus::new(s, show_input)))
}
