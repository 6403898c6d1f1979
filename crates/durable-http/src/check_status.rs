//! The `202 Accepted` check-status answer (Durable Functions' `CreateCheckStatusResponse`), the
//! management URIs it carries, and the base URL they are built on.

use std::convert::Infallible;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::uri::percent_encode;

/// Where the management API lives.
pub const BASE_PATH: &str = "/runtime/webhooks/durabletask";

/// The seed's short status route: `GET /admin/extensions/DurableTaskExtension/{id}`.
pub(crate) const SHORT_STATUS_PATH: &str = "/admin/extensions/DurableTaskExtension";

/// Seconds a client is asked to wait between status polls.
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// The management URIs of one instance: the body of the `202 Accepted` answer to a start.
///
/// Placeholders stay in the URIs for the caller to fill: `{eventName}` in `sendEventPostUri`,
/// `{text}` for the reason of terminate, suspend, resume and rewind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckStatus {
    /// The instance id.
    pub id: String,
    pub status_query_get_uri: String,
    pub send_event_post_uri: String,
    pub terminate_post_uri: String,
    pub suspend_post_uri: String,
    pub resume_post_uri: String,
    pub rewind_post_uri: String,
    pub restart_post_uri: String,
    pub purge_history_delete_uri: String,
}

impl CheckStatus {
    /// The URIs of `instance_id` on a server reached at `base_url` (e.g. `http://host:7071`;
    /// empty for relative URIs).
    pub fn new(base_url: &str, instance_id: &str) -> Self {
        let instance = instance_uri(base_url, instance_id);
        let action = |name: &str| format!("{instance}/{name}?reason={{text}}");
        CheckStatus {
            id: instance_id.to_string(),
            status_query_get_uri: instance.clone(),
            send_event_post_uri: format!("{instance}/raiseEvent/{{eventName}}"),
            terminate_post_uri: action("terminate"),
            suspend_post_uri: action("suspend"),
            resume_post_uri: action("resume"),
            rewind_post_uri: action("rewind"),
            restart_post_uri: format!("{instance}/restart"),
            purge_history_delete_uri: instance,
        }
    }
}

/// `202 Accepted`, `Location` = the status URI, `Retry-After`, and the URIs as a JSON body.
impl IntoResponse for CheckStatus {
    fn into_response(self) -> Response {
        let location = self.status_query_get_uri.clone();
        accepted(&location, Json(self))
    }
}

/// The `202 Accepted` answer for a started instance, for users' own axum handlers: `Location`
/// points at the status of `instance_id`, and the body lists its management URIs
/// ([`CheckStatus`]). `base_url` is where this server's management API is reached, e.g.
/// `http://127.0.0.1:7071` or a [`BaseUrl`] taken from the request.
pub fn check_status_response(base_url: &str, instance_id: &str) -> Response {
    CheckStatus::new(base_url, instance_id).into_response()
}

/// `202` with `Location` and `Retry-After` around any body.
pub(crate) fn accepted(location: &str, body: impl IntoResponse) -> Response {
    let mut response = (StatusCode::ACCEPTED, body).into_response();
    let headers = response.headers_mut();
    // A base URL given by a user may not fit in a header; the body still has it.
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
    headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    response
}

/// `{base}/runtime/webhooks/durabletask/instances/{id}`.
pub(crate) fn instance_uri(base_url: &str, instance_id: &str) -> String {
    format!(
        "{}{BASE_PATH}/instances/{}",
        base_url.trim_end_matches('/'),
        percent_encode(instance_id)
    )
}

/// `{base}/admin/extensions/DurableTaskExtension/{id}`: the seed's short form.
pub(crate) fn short_status_uri(base_url: &str, instance_id: &str) -> String {
    format!(
        "{}{SHORT_STATUS_PATH}/{}",
        base_url.trim_end_matches('/'),
        percent_encode(instance_id)
    )
}

/// The scheme and authority a request reached this server by, e.g. `http://127.0.0.1:7071`;
/// empty when the request names no usable host, which keeps built URIs relative.
///
/// Use it as an extractor in a handler: `BaseUrl(base): BaseUrl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl(pub String);

impl BaseUrl {
    pub fn from_parts(uri: &Uri, headers: &HeaderMap) -> Self {
        let host = uri.authority().map(|a| a.as_str().to_string()).or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        });
        let Some(host) = host.filter(|h| plausible_host(h)) else {
            return BaseUrl(String::new());
        };
        let forwarded = headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok());
        let scheme = match uri.scheme_str().or(forwarded) {
            Some(s) if s.eq_ignore_ascii_case("https") => "https",
            _ => "http",
        };
        BaseUrl(format!("{scheme}://{host}"))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BaseUrl {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(BaseUrl::from_parts(&parts.uri, &parts.headers))
    }
}

/// A host name or address with an optional port: nothing that could bend a URL or a header.
fn plausible_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_encode_the_id_and_keep_placeholders() {
        let c = CheckStatus::new("http://h:1/", "a b/c");
        assert_eq!(
            c.status_query_get_uri,
            "http://h:1/runtime/webhooks/durabletask/instances/a%20b%2Fc"
        );
        assert_eq!(
            c.send_event_post_uri,
            "http://h:1/runtime/webhooks/durabletask/instances/a%20b%2Fc/raiseEvent/{eventName}"
        );
        assert!(c.terminate_post_uri.ends_with("/terminate?reason={text}"));
        assert_eq!(c.purge_history_delete_uri, c.status_query_get_uri);
    }

    #[test]
    fn base_url_from_host_header() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7071"));
        let uri: Uri = "/x".parse().unwrap();
        assert_eq!(
            BaseUrl::from_parts(&uri, &headers).0,
            "http://127.0.0.1:7071"
        );
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert_eq!(
            BaseUrl::from_parts(&uri, &headers).0,
            "https://127.0.0.1:7071"
        );
        headers.insert(header::HOST, HeaderValue::from_static("evil/path?x"));
        assert_eq!(BaseUrl::from_parts(&uri, &headers).0, "");
    }
}
