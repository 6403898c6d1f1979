//! The API key check, as a tower layer any router can reuse.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Query;
use axum::http::{HeaderMap, Request, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::future::{Either, Ready, ready};
use subtle::ConstantTimeEq;
use tower::{Layer, Service};

use crate::error::ApiError;

/// Refuses requests without the API key with `401` and a JSON body. The key is accepted as
/// `Authorization: Bearer <key>`, as the `x-functions-key` header or as the `code` query
/// parameter. With no key (`None`) every request passes.
///
/// ```no_run
/// # let dashboard: axum::Router = axum::Router::new();
/// let protected = dashboard.layer(durable_http::require_api_key(Some("secret".into())));
/// ```
pub fn require_api_key(api_key: Option<String>) -> ApiKeyLayer {
    ApiKeyLayer {
        key: api_key.map(|k| Arc::from(k.into_bytes())),
    }
}

/// The layer [`require_api_key`] builds.
#[derive(Clone)]
pub struct ApiKeyLayer {
    key: Option<Arc<[u8]>>,
}

/// Never prints the key.
impl fmt::Debug for ApiKeyLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = if self.key.is_some() { "set" } else { "none" };
        f.debug_struct("ApiKeyLayer").field("key", &key).finish()
    }
}

impl<S> Layer<S> for ApiKeyLayer {
    type Service = RequireApiKey<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireApiKey {
            inner,
            key: self.key.clone(),
        }
    }
}

/// The service [`ApiKeyLayer`] wraps around a router or route.
#[derive(Clone)]
pub struct RequireApiKey<S> {
    inner: S,
    key: Option<Arc<[u8]>>,
}

impl<S> fmt::Debug for RequireApiKey<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireApiKey").finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for RequireApiKey<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let allowed = match &self.key {
            None => true,
            Some(key) => presented_keys(request.headers(), request.uri())
                .iter()
                .any(|given| same_key(key, given.as_bytes())),
        };
        if allowed {
            Either::Right(self.inner.call(request))
        } else {
            Either::Left(ready(Ok(ApiError::Unauthorized.into_response())))
        }
    }
}

/// Every credential the request carries, by the three accepted means.
fn presented_keys(headers: &HeaderMap, uri: &Uri) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some((scheme, token)) = value.trim().split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
    {
        keys.push(token.trim().to_string());
    }
    for value in headers.get_all("x-functions-key") {
        if let Ok(text) = value.to_str() {
            keys.push(text.trim().to_string());
        }
    }
    if uri.query().is_some()
        && let Ok(Query(pairs)) = Query::<Vec<(String, String)>>::try_from_uri(uri)
    {
        keys.extend(
            pairs
                .into_iter()
                .filter(|(name, _)| name == "code")
                .map(|(_, v)| v),
        );
    }
    keys
}

/// Compares in time that depends on the lengths only, never on where the bytes differ. An
/// empty credential never matches, so an empty configured key refuses everything.
fn same_key(expected: &[u8], given: &[u8]) -> bool {
    !given.is_empty() && bool::from(expected.ct_eq(given))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn keys_come_from_all_three_places() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  k1 "),
        );
        headers.insert("x-functions-key", HeaderValue::from_static("k2"));
        let keys = presented_keys(&headers, &"/x?top=1&code=k%2B3".parse().unwrap());
        assert_eq!(keys, ["k1", "k2", "k+3"]);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic k1"));
        assert_eq!(presented_keys(&headers, &Uri::from_static("/x")), ["k2"]);
    }

    #[test]
    fn comparison() {
        assert!(same_key(b"secret", b"secret"));
        assert!(!same_key(b"secret", b"secreT"));
        assert!(!same_key(b"secret", b"secret2"));
        assert!(!same_key(b"", b""));
    }

    #[test]
    fn debug_hides_the_key() {
        let text = format!("{:?}", require_api_key(Some("hunter2".into())));
        assert!(!text.contains("hunter2"), "{text}");
    }
}
