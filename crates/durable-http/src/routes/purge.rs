//! `DELETE /instances/{instanceId}` and `DELETE /instances?...`: purge finished instances.

use axum::Json;
use axum::extract::State;

use super::AppState;
use super::filters::Filters;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::model::PurgeResult;

/// Delete a finished instance and its history.
#[utoipa::path(
    delete,
    path = "/runtime/webhooks/durabletask/instances/{instanceId}",
    tag = "instances",
    params(("instanceId" = String, Path)),
    responses(
        (status = 200, description = "Deleted", body = PurgeResult),
        (status = 404, description = "Unknown instance", body = ErrorBody),
        (status = 409, description = "The instance has not finished", body = ErrorBody),
    )
)]
pub(crate) async fn purge_one(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<PurgeResult>, ApiError> {
    let deleted = state.client.purge(&id, false).await?;
    if deleted == 0 {
        // The store answers 0 for both; tell them apart.
        return Err(match state.client.status(&id).await? {
            None => ApiError::InstanceNotFound(format!("instance '{id}' not found")),
            Some(s) => ApiError::Conflict(format!(
                "cannot purge instance '{id}': it is {} (only finished instances are purged)",
                s.status
            )),
        });
    }
    Ok(Json(PurgeResult {
        instances_deleted: deleted,
    }))
}

/// Delete every finished instance matching the filters (at least one is required).
#[utoipa::path(
    delete,
    path = "/runtime/webhooks/durabletask/instances",
    tag = "instances",
    params(Filters),
    responses(
        (status = 200, description = "How many were deleted (possibly 0)", body = PurgeResult),
        (status = 400, description = "No filter, or a filter a purge cannot apply", body = ErrorBody),
    )
)]
pub(crate) async fn purge_many(
    State(state): State<AppState>,
    ApiQuery(filters): ApiQuery<Filters>,
) -> Result<Json<PurgeResult>, ApiError> {
    let filter = filters.purge()?;
    let deleted = state.client.purge_by(&filter).await?;
    Ok(Json(PurgeResult {
        instances_deleted: deleted,
    }))
}
