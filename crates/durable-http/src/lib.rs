//! # durable-http
//!
//! The HTTP management API of `durable`, in the shape of Durable Functions' webhooks, as an
//! [`axum::Router`]: start instances, poll their status (`202` while running, `200` when done),
//! list, raise events, terminate, suspend, resume, rewind, restart and purge; signal, read and
//! list durable entities (`/runtime/webhooks/durabletask/entities/...`). Every route is in
//! `docs/http-api.md`; the OpenAPI document is served at `/openapi.json`.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = durable::open_store("sqlite://durable.db")?;
//! let registry = durable_samples::registry();
//! let worker = durable::Worker::builder(store).registry(&registry).start();
//! let app = durable_http::router(
//!     worker.client(),
//!     Arc::new(registry),
//!     durable_http::ApiOptions::default(),
//! );
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7071").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! Users' own handlers answer a start the same way with [`check_status_response`].
//!
//! [`metrics::router`] serves `/metrics` (Prometheus) and the scale signal
//! (`GET /runtime/webhooks/durabletask/scale`) for monitoring and autoscalers.
//!
//! ## Adding routes
//!
//! The router carries JSON fallbacks for unknown routes (`404`) and wrong methods (`405`), and
//! the API key check on its own routes. Routes merged in later (`/metrics`, say) are
//! protected by layering [`require_api_key`] on them before the merge, and get the JSON `405`
//! with [`axum::Router::method_not_allowed_fallback`]`(`[`method_not_allowed`]`)`. Merge
//! routers without a fallback of their own (axum refuses two).

mod auth;
mod check_status;
pub mod decode;
mod error;
mod extract;
pub mod metrics;
mod model;
mod openapi;
mod routes;
mod scale;
mod uri;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use durable::core::limits::DEFAULT_MAX_PAYLOAD_BYTES;
use tower_http::trace::TraceLayer;

pub use auth::{ApiKeyLayer, RequireApiKey, require_api_key};
pub use check_status::{
    BASE_PATH, BaseUrl, CheckStatus, RETRY_AFTER_SECONDS, check_status_response,
};
pub use error::{ApiError, ErrorBody, method_not_allowed, not_found};
pub use model::{EntityKey, EntityStatus, HistoryEntry, InstanceStatus, PurgeResult};
pub use openapi::openapi;
pub use uri::redact;

/// How the API is served.
#[derive(Clone, Debug)]
pub struct ApiOptions {
    /// When set, every route but `/healthz` and `/openapi.json` needs this key.
    pub api_key: Option<String>,
    /// Largest request body accepted (default 2 MiB, the engine's payload limit).
    pub max_body_bytes: usize,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            api_key: None,
            max_body_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
        }
    }
}

/// Which orchestration names a start may use, and which entity names a signal may address.
/// `None` means "any name" (a gRPC worker of unknown names may be connected).
pub trait OrchestrationCatalog: Send + Sync + 'static {
    fn known(&self) -> Option<Vec<String>>;

    /// The entity names (lower case); by default any name.
    fn known_entities(&self) -> Option<Vec<String>> {
        None
    }
}

/// The registered orchestration and entity names.
impl OrchestrationCatalog for durable::Registry {
    fn known(&self) -> Option<Vec<String>> {
        Some(owned(self.orchestration_names()))
    }

    fn known_entities(&self) -> Option<Vec<String>> {
        Some(owned(self.entity_names()))
    }
}

fn owned(names: Vec<&str>) -> Vec<String> {
    names.into_iter().map(str::to_string).collect()
}

/// Accepts any orchestration name: for servers whose orchestrations live in remote workers.
#[derive(Clone, Copy, Debug, Default)]
pub struct AnyOrchestration;

impl OrchestrationCatalog for AnyOrchestration {
    fn known(&self) -> Option<Vec<String>> {
        None
    }
}

/// The management API: the routes under [`BASE_PATH`], the seed's short forms, `/healthz` and
/// `/openapi.json`, with JSON errors throughout.
pub fn router(
    client: durable::Client,
    catalog: Arc<dyn OrchestrationCatalog>,
    options: ApiOptions,
) -> Router {
    let state = routes::AppState {
        client,
        catalog,
        max_body: options.max_body_bytes,
    };
    let protected = routes::api(state)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(require_api_key(options.api_key));
    let open = Router::new()
        .route("/healthz", get(openapi::health))
        .route("/openapi.json", get(openapi::openapi_json))
        .method_not_allowed_fallback(method_not_allowed);
    protected.merge(open).layer(
        // Log the path and a query with the key masked; never headers.
        TraceLayer::new_for_http().make_span_with(|request: &Request<Body>| {
            tracing::debug_span!("http", method = %request.method(), uri = %redact(request.uri()))
        }),
    )
}
