//! `POST /orchestrators/{name}[/{instanceId}]`: start an instance.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use durable::StartRequest;
use serde::Deserialize;

use super::AppState;
use crate::check_status::{BaseUrl, CheckStatus, short_status_uri};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, JsonBody, TraceParent};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StartPath {
    name: String,
    instance_id: Option<String>,
}

/// Start an orchestration; the body is its input (JSON; empty for none).
#[utoipa::path(
    post,
    path = "/runtime/webhooks/durabletask/orchestrators/{name}",
    tag = "instances",
    params(("name" = String, Path, description = "Orchestration name")),
    request_body(content = Object, description = "The input, any JSON value", content_type = "application/json"),
    responses(
        (status = 202, description = "Started; `Location` is the status URI", body = CheckStatus,
            headers(("Location" = String), ("Retry-After" = u32))),
        (status = 400, description = "Malformed JSON or a bad instance id", body = ErrorBody),
        (status = 404, description = "Unknown orchestration name", body = ErrorBody),
        (status = 409, description = "The instance id belongs to a running instance", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Content type that cannot carry JSON", body = ErrorBody),
    )
)]
pub(crate) async fn start(
    State(state): State<AppState>,
    base: BaseUrl,
    trace: TraceParent,
    ApiPath(path): ApiPath<StartPath>,
    JsonBody(input): JsonBody,
) -> Result<Response, ApiError> {
    Ok(run(&state, &base, path, input, trace.0)
        .await?
        .into_response())
}

/// Start an orchestration under an explicit instance id.
#[utoipa::path(
    post,
    path = "/runtime/webhooks/durabletask/orchestrators/{name}/{instanceId}",
    tag = "instances",
    params(
        ("name" = String, Path, description = "Orchestration name"),
        ("instanceId" = String, Path, description = "Instance id; a finished instance of that id is replaced"),
    ),
    request_body(content = Object, description = "The input, any JSON value", content_type = "application/json"),
    responses(
        (status = 202, description = "Started", body = CheckStatus),
        (status = 409, description = "The instance id belongs to a running instance", body = ErrorBody),
    )
)]
pub(crate) async fn start_with_id(
    state: State<AppState>,
    base: BaseUrl,
    trace: TraceParent,
    path: ApiPath<StartPath>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    start(state, base, trace, path, body).await
}

/// The seed's short form: `POST /orchestrators/{name}`. `Location` (and `statusQueryGetUri`)
/// point at the short status route.
#[utoipa::path(
    post,
    path = "/orchestrators/{name}",
    tag = "short forms",
    params(("name" = String, Path, description = "Orchestration name")),
    request_body(content = Object, description = "The input, any JSON value", content_type = "application/json"),
    responses((status = 202, description = "Started", body = CheckStatus))
)]
pub(crate) async fn start_short(
    State(state): State<AppState>,
    base: BaseUrl,
    trace: TraceParent,
    ApiPath(path): ApiPath<StartPath>,
    JsonBody(input): JsonBody,
) -> Result<Response, ApiError> {
    let mut check = run(&state, &base, path, input, trace.0).await?;
    check.status_query_get_uri = short_status_uri(&base.0, &check.id);
    Ok(check.into_response())
}

/// The seed's short form with an explicit instance id.
#[utoipa::path(
    post,
    path = "/orchestrators/{name}/{instanceId}",
    tag = "short forms",
    params(
        ("name" = String, Path, description = "Orchestration name"),
        ("instanceId" = String, Path, description = "Instance id; a finished instance of that id is replaced"),
    ),
    request_body(content = Object, description = "The input, any JSON value", content_type = "application/json"),
    responses((status = 202, description = "Started", body = CheckStatus))
)]
pub(crate) async fn start_short_with_id(
    state: State<AppState>,
    base: BaseUrl,
    trace: TraceParent,
    path: ApiPath<StartPath>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    start_short(state, base, trace, path, body).await
}

async fn run(
    state: &AppState,
    base: &BaseUrl,
    path: StartPath,
    input: Option<String>,
    trace: Option<durable::core::TraceContext>,
) -> Result<CheckStatus, ApiError> {
    if let Some(mut known) = state.catalog.known()
        && !known.contains(&path.name)
    {
        known.sort();
        return Err(ApiError::unknown_orchestration(&path.name, &known));
    }
    let mut request = StartRequest::new(path.name);
    request.input = input;
    request.instance_id = path.instance_id;
    request.trace_context = trace;
    let id = state.client.start_with(request).await?;
    Ok(CheckStatus::new(&base.0, &id))
}
