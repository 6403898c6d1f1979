//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::OpenApi;

use crate::check_status::CheckStatus;
use crate::error::ErrorBody;
use crate::metrics;
use crate::model::{
    EntityKey, EntityStatus, Health, InstanceStatus, ProcessCounters, PurgeResult, Stats,
    TimelineEntry,
};
use crate::routes::{entities, instances, manage, purge, start, stats};
use crate::scale::ScaleSignal;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "durable HTTP API",
        description = "Start, observe and manage durable orchestrations and entities (the Durable Functions \
            management API shape). Every error body is {\"code\", \"message\"}. With an API key \
            configured, send it as `Authorization: Bearer <key>`, `x-functions-key: <key>` or \
            `?code=<key>`."
    ),
    paths(
        start::start,
        start::start_with_id,
        start::start_short,
        start::start_short_with_id,
        instances::status,
        instances::status_short,
        instances::list,
        instances::timeline,
        manage::raise_event,
        manage::terminate,
        manage::suspend,
        manage::resume,
        manage::rewind,
        manage::restart,
        purge::purge_one,
        purge::purge_many,
        entities::list_all,
        entities::list,
        entities::get,
        entities::signal,
        metrics::scale,
        metrics::prometheus,
        stats::stats,
        health,
        openapi_json,
    ),
    components(schemas(
        CheckStatus,
        InstanceStatus,
        PurgeResult,
        ErrorBody,
        Health,
        TimelineEntry,
        ScaleSignal,
        Stats,
        ProcessCounters,
        EntityStatus,
        EntityKey
    ))
)]
pub(crate) struct ApiDoc;

/// The OpenAPI 3 document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// This document. Open even when an API key is configured.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "service",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object))
)]
pub(crate) async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}

/// Liveness: answers while the server runs. Open even when an API key is configured.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "service",
    responses((status = 200, description = "Up", body = Health))
)]
pub(crate) async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}
