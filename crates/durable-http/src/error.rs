//! Every error the API answers with, and the one mapping from error to HTTP status.

use axum::Json;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use durable::core::ErrorCode;
use durable::{Client, ClientError};
use serde::Serialize;
use utoipa::ToSchema;

/// An error answer. Its body is always `{"code": "...", "message": "..."}`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// A bad parameter, or JSON the engine refuses (too deep).
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    InvalidInstanceId(String),
    /// An entity name or key that cannot form an entity id.
    #[error("{0}")]
    InvalidEntityId(String),
    /// Another engine limit (page size, history length) was exceeded.
    #[error("{0}")]
    LimitExceeded(String),
    #[error("a valid API key is required (Authorization: Bearer, x-functions-key or ?code=)")]
    Unauthorized,
    #[error("{0}")]
    InstanceNotFound(String),
    /// The message lists the registered names.
    #[error("{0}")]
    UnknownOrchestration(String),
    /// The entity has never been addressed, or has no state.
    #[error("{0}")]
    EntityNotFound(String),
    /// A signal to an entity name no worker registered; the message lists the registered names.
    #[error("{0}")]
    UnknownEntity(String),
    #[error("no route for {0}")]
    RouteNotFound(String),
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    /// An explicit instance id belongs to an instance that is still running.
    #[error("{0}")]
    AlreadyExists(String),
    /// The instance is live but in a state where the action cannot apply.
    #[error("{0}")]
    Conflict(String),
    /// The instance has finished and the action cannot apply any more.
    #[error("{0}")]
    Finished(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("content type '{0}' cannot carry JSON (send application/json)")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// A stable code, e.g. `instance_not_found`.
    pub code: String,
    /// A readable explanation.
    pub message: String,
}

impl ApiError {
    /// The HTTP status of each error: the one place where that choice is made.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_)
            | ApiError::InvalidInput(_)
            | ApiError::InvalidInstanceId(_)
            | ApiError::InvalidEntityId(_)
            | ApiError::LimitExceeded(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::InstanceNotFound(_)
            | ApiError::UnknownOrchestration(_)
            | ApiError::EntityNotFound(_)
            | ApiError::UnknownEntity(_)
            | ApiError::RouteNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::AlreadyExists(_) | ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Finished(_) => StatusCode::GONE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code in the body. Engine errors keep their [`ErrorCode`] string.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::InvalidInput(_) => ErrorCode::InvalidInput.as_str(),
            ApiError::InvalidInstanceId(_) => ErrorCode::InvalidInstanceId.as_str(),
            ApiError::InvalidEntityId(_) => "invalid_entity_id",
            ApiError::LimitExceeded(_) => ErrorCode::LimitExceeded.as_str(),
            ApiError::Unauthorized => "unauthorized",
            ApiError::InstanceNotFound(_) => ErrorCode::InstanceNotFound.as_str(),
            ApiError::UnknownOrchestration(_) => ErrorCode::UnknownOrchestration.as_str(),
            ApiError::EntityNotFound(_) => "entity_not_found",
            ApiError::UnknownEntity(_) => "unknown_entity",
            ApiError::RouteNotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::AlreadyExists(_) => ErrorCode::AlreadyExists.as_str(),
            ApiError::Conflict(_) => ErrorCode::InvalidState.as_str(),
            ApiError::Finished(_) => "instance_finished",
            ApiError::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge.as_str(),
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Timeout(_) => ErrorCode::Timeout.as_str(),
            ApiError::Unavailable(_) => ErrorCode::Unavailable.as_str(),
            ApiError::Internal(_) => ErrorCode::Internal.as_str(),
        }
    }

    pub fn unknown_orchestration(name: &str, known: &[String]) -> Self {
        ApiError::UnknownOrchestration(format!(
            "no orchestration named '{name}' is registered (registered: {})",
            listed(known)
        ))
    }

    pub fn unknown_entity(name: &str, known: &[String]) -> Self {
        ApiError::UnknownEntity(format!(
            "no entity named '{name}' is registered (registered: {})",
            listed(known)
        ))
    }

    pub fn body_too_large(limit: usize) -> Self {
        ApiError::PayloadTooLarge(format!("request body exceeds the limit of {limit} bytes"))
    }

    /// A client error of an action on `instance_id`, with `InvalidState` told apart: 410 when
    /// the instance has finished, 409 while it is live.
    pub(crate) async fn for_instance(client: &Client, instance_id: &str, err: ClientError) -> Self {
        if err.code() != ErrorCode::InvalidState {
            return err.into();
        }
        match client.status(instance_id).await {
            Ok(Some(state)) if state.status.is_terminal() => ApiError::Finished(err.to_string()),
            _ => err.into(),
        }
    }
}

fn listed(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

impl From<ClientError> for ApiError {
    fn from(err: ClientError) -> Self {
        let message = err.to_string();
        match err.code() {
            ErrorCode::InvalidInput => ApiError::InvalidInput(message),
            ErrorCode::InvalidInstanceId => ApiError::InvalidInstanceId(message),
            ErrorCode::InstanceNotFound => ApiError::InstanceNotFound(message),
            ErrorCode::UnknownOrchestration => ApiError::UnknownOrchestration(message),
            ErrorCode::AlreadyExists => ApiError::AlreadyExists(message),
            ErrorCode::InvalidState => ApiError::Conflict(message),
            ErrorCode::PayloadTooLarge => ApiError::PayloadTooLarge(message),
            ErrorCode::LimitExceeded => ApiError::LimitExceeded(message),
            ErrorCode::Timeout => ApiError::Timeout(message),
            ErrorCode::Unavailable => ApiError::Unavailable(message),
            // A client never holds a lease; seeing one is a bug.
            ErrorCode::StaleLease | ErrorCode::Internal => ApiError::Internal(message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status.is_server_error() {
            tracing::error!(code = self.code(), error = %self, "request failed");
            // Details of server-side failures (paths, hosts) stay in the log.
            match &self {
                ApiError::Internal(_) => "internal error; see the server log".to_string(),
                ApiError::Unavailable(_) => "the store is unavailable; retry later".to_string(),
                other => other.to_string(),
            }
        } else {
            self.to_string()
        };
        let body = ErrorBody {
            code: self.code().to_string(),
            message,
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The fallback for unknown routes: `404` with a JSON body.
pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::RouteNotFound(format!("{method} {}", uri.path()))
}

/// The fallback for a known route called with the wrong method: `405` with a JSON body.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use durable::StoreError;

    use super::*;

    #[test]
    fn engine_errors_map_to_statuses() {
        let cases = [
            (ClientError::InvalidInput("x".into()), 400, "invalid_input"),
            (
                ClientError::InvalidInstanceId("x".into()),
                400,
                "invalid_instance_id",
            ),
            (ClientError::NotFound("i".into()), 404, "instance_not_found"),
            (
                ClientError::AlreadyExists("i".into()),
                409,
                "already_exists",
            ),
            (ClientError::InvalidState("x".into()), 409, "invalid_state"),
            (
                ClientError::PayloadTooLarge { size: 2, limit: 1 },
                413,
                "payload_too_large",
            ),
            (
                ClientError::Timeout(Duration::from_secs(1), "i".into()),
                504,
                "timeout",
            ),
            (
                ClientError::Store(StoreError::Unavailable("db down".into())),
                503,
                "unavailable",
            ),
            (
                ClientError::Store(StoreError::StaleLease("i".into())),
                500,
                "internal",
            ),
            (
                ClientError::Store(StoreError::Internal("bug".into())),
                500,
                "internal",
            ),
        ];
        for (client_error, status, code) in cases {
            let api = ApiError::from(client_error.clone());
            assert_eq!(api.status().as_u16(), status, "{client_error:?}");
            assert_eq!(api.code(), code, "{client_error:?}");
        }
    }

    #[tokio::test]
    async fn server_errors_keep_their_details_out_of_the_answer() {
        let error = ApiError::Unavailable("connect to db.internal:5432 refused".into());
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let body: ErrorBody = serde_json::from_slice(&body).unwrap();
        assert_eq!(body.code, "unavailable");
        assert!(!body.message.contains("db.internal"), "{}", body.message);
    }
}
