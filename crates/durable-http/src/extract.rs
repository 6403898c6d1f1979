//! Extractors whose every rejection is an [`ApiError`] (axum's own answer in plain text).

use axum::body::Body;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use durable::core::limits::{MAX_INSTANCE_ID_BYTES, check_name};
use futures::StreamExt;
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::error::ApiError;
use crate::routes::AppState;

/// Path parameters.
pub(crate) struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|e| ApiError::InvalidInput(e.body_text()))
    }
}

/// Query parameters. Unknown parameters (`code`, Durable Functions' `taskHub`) are ignored.
pub(crate) struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        decode_query(&parts.uri).map(ApiQuery)
    }
}

/// The query string of `uri` decoded as `T`.
pub(crate) fn decode_query<T: DeserializeOwned>(uri: &Uri) -> Result<T, ApiError> {
    Query::<T>::try_from_uri(uri)
        .map(|Query(value)| value)
        .map_err(|e| ApiError::InvalidInput(e.body_text()))
}

/// A request body read as JSON text; `None` for an empty body or `null`.
///
/// The content type must be able to carry JSON: none, `application/json` (or any `+json`),
/// `text/plain`, or `application/x-www-form-urlencoded` (what `curl -d` sends) — the body is
/// read as JSON whatever it says. The size limit is checked against `Content-Length` first and
/// then while the body streams in, so an oversized body is never buffered whole.
pub(crate) struct JsonBody(pub Option<String>);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = state.max_body;
        let declared = declared_length(request.headers())?;
        if declared == Some(0) {
            return Ok(JsonBody(None));
        }
        check_content_type(request.headers())?;
        if let Some(len) = declared.filter(|len| *len > limit as u64) {
            if len <= drain_budget(limit) {
                drain(request.into_body().into_data_stream(), len).await;
            }
            return Err(ApiError::body_too_large(limit));
        }
        let bytes = read_limited(request.into_body(), limit).await?;
        parse(&bytes).map(JsonBody)
    }
}

fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(header::CONTENT_LENGTH) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map(Some)
        .ok_or_else(|| ApiError::InvalidInput("malformed Content-Length header".into()))
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or("(not ASCII)");
    let mime = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let carries_json = mime.is_empty()
        || mime == "application/json"
        || mime == "text/json"
        || mime.ends_with("+json")
        || mime == "text/plain"
        || mime == "application/x-www-form-urlencoded";
    if carries_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(text.to_string()))
    }
}

/// Bodies up to this much over the limit are read to their end (and dropped) before the 413:
/// answering while the client still sends closes the connection under it, and the client may
/// see a reset instead of the answer. Larger bodies get the answer at once.
fn drain_budget(limit: usize) -> u64 {
    limit as u64 * 4
}

async fn drain(mut stream: axum::body::BodyDataStream, mut budget: u64) {
    while budget > 0 {
        match stream.next().await {
            Some(Ok(chunk)) => budget = budget.saturating_sub(chunk.len() as u64),
            _ => return,
        }
    }
}

async fn read_limited(body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::InvalidInput(format!("could not read the body: {e}")))?;
        if bytes.len() + chunk.len() > limit {
            let read = (bytes.len() + chunk.len()) as u64;
            drain(stream, drain_budget(limit).saturating_sub(read)).await;
            return Err(ApiError::body_too_large(limit));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

pub(crate) fn parse(bytes: &[u8]) -> Result<Option<String>, ApiError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::MalformedJson("the body is not UTF-8".into()))?
        .trim();
    if text.is_empty() {
        return Ok(None);
    }
    serde_json::from_str::<IgnoredAny>(text).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    Ok((text != "null").then(|| text.to_string()))
}

/// Refuses path parameters over the engine's limits before any handler runs (and before the
/// store is asked): an instance id over [`MAX_INSTANCE_ID_BYTES`] is `invalid_instance_id`, a
/// name over the name limit `invalid_input`. Parameters that do not decode are left to the
/// handler's own extractor, which names the problem. Entity routes are outside this layer.
pub(crate) async fn check_path_limits(
    params: Result<RawPathParams, RawPathParamsRejection>,
    request: Request,
    next: Next,
) -> Response {
    if let Ok(params) = params {
        for (key, value) in &params {
            let refused = match key {
                "instanceId" if value.len() > MAX_INSTANCE_ID_BYTES => {
                    Some(ApiError::InvalidInstanceId(format!(
                        "instance id is {} bytes; the limit is {MAX_INSTANCE_ID_BYTES} \
                         (MAX_INSTANCE_ID_BYTES)",
                        value.len()
                    )))
                }
                "name" => check_name("orchestration", value)
                    .err()
                    .map(ApiError::InvalidInput),
                "eventName" => check_name("event", value).err().map(ApiError::InvalidInput),
                _ => None,
            };
            if let Some(e) = refused {
                return e.into_response();
            }
        }
    }
    next.run(request).await
}

/// The W3C `traceparent` (and `tracestate`) of the request, when valid: an orchestration started
/// by it runs in the caller's trace. An invalid header is ignored, as the W3C spec asks.
pub(crate) struct TraceParent(pub Option<durable::core::TraceContext>);

impl<S: Send + Sync> FromRequestParts<S> for TraceParent {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let context = header("traceparent")
            .and_then(durable::core::trace::SpanRef::parse)
            .map(|span| {
                let mut context = span.to_context();
                context.trace_state = header("tracestate").map(str::to_string);
                context
            });
        Ok(TraceParent(context))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bodies() {
        assert_eq!(parse(b"").unwrap(), None);
        assert_eq!(parse(b" null\n").unwrap(), None);
        assert_eq!(parse(b"\"start\"\n").unwrap().as_deref(), Some("\"start\""));
        assert_eq!(parse(b"{").unwrap_err().code(), "malformed_json");
        assert_eq!(parse(b"start").unwrap_err().code(), "malformed_json");
        assert_eq!(parse(&[0xff]).unwrap_err().code(), "malformed_json");
    }

    #[test]
    fn content_types() {
        let with = |ct: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            check_content_type(&h)
        };
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Text/Plain",
            "application/x-www-form-urlencoded",
            "application/problem+json",
        ] {
            assert!(with(ok).is_ok(), "{ok}");
        }
        for bad in [
            "application/xml",
            "multipart/form-data; boundary=x",
            "image/png",
        ] {
            assert_eq!(with(bad).unwrap_err().code(), "unsupported_media_type");
        }
    }
}
