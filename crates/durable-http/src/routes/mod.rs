//! The route table and the state the handlers share.

pub(crate) mod entities;
pub(crate) mod filters;
pub(crate) mod instances;
pub(crate) mod manage;
pub(crate) mod purge;
pub(crate) mod start;
pub(crate) mod stats;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use durable::Client;

use crate::OrchestrationCatalog;
use crate::check_status::{BASE_PATH, SHORT_STATUS_PATH};

#[derive(Clone)]
pub(crate) struct AppState {
    pub client: Client,
    pub catalog: Arc<dyn OrchestrationCatalog>,
    pub max_body: usize,
}

/// Every management route, without fallbacks or access control.
pub(crate) fn api(state: AppState) -> Router {
    let hub = Router::new()
        .route("/orchestrators/{name}", post(start::start))
        .route(
            "/orchestrators/{name}/{instanceId}",
            post(start::start_with_id),
        )
        .route("/instances", get(instances::list).delete(purge::purge_many))
        .route(
            "/instances/{instanceId}",
            get(instances::status).delete(purge::purge_one),
        )
        .route(
            "/instances/{instanceId}/raiseEvent/{eventName}",
            post(manage::raise_event),
        )
        .route("/instances/{instanceId}/timeline", get(instances::timeline))
        .route("/instances/{instanceId}/terminate", post(manage::terminate))
        .route("/instances/{instanceId}/suspend", post(manage::suspend))
        .route("/instances/{instanceId}/resume", post(manage::resume))
        .route("/instances/{instanceId}/rewind", post(manage::rewind))
        .route("/instances/{instanceId}/restart", post(manage::restart))
        .route("/stats", get(stats::stats));
    // Entity names and keys have rules of their own (`invalid_entity_id`), checked by the
    // handlers, so these routes are added after the path-limit layer.
    let entity_routes = Router::new()
        .route("/entities", get(entities::list_all))
        .route("/entities/{name}", get(entities::list))
        .route(
            "/entities/{name}/{key}",
            get(entities::get).post(entities::signal),
        );
    Router::new()
        .nest(BASE_PATH, hub)
        // The seed's short forms.
        .route("/orchestrators/{name}", post(start::start_short))
        .route(
            "/orchestrators/{name}/{instanceId}",
            post(start::start_short_with_id),
        )
        .route(
            &format!("{SHORT_STATUS_PATH}/{{instanceId}}"),
            get(instances::status_short),
        )
        .route_layer(axum::middleware::from_fn(crate::extract::check_path_limits))
        .merge(Router::new().nest(BASE_PATH, entity_routes))
        .with_state(state)
}
