//! A small client for the HTTP management API, used by the client subcommands.

use anyhow::{Context, Result, anyhow};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

const BASE: &str = "/runtime/webhooks/durabletask";

/// An error the server answered with (`{"code": ..., "message": ...}`).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}, HTTP {})",
            self.message,
            self.code,
            self.status.as_u16()
        )
    }
}

impl std::error::Error for ApiError {}

/// A response: its status code, the continuation header if any, and the JSON body.
#[derive(Debug)]
pub struct Reply {
    pub continuation: Option<String>,
    pub body: Value,
}

#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    key: Option<String>,
    http: reqwest::Client,
}

/// Filters for listing and purging.
#[derive(Debug, Default, Clone)]
pub struct Filters {
    pub statuses: Option<String>,
    pub prefix: Option<String>,
    /// The orchestration name, exactly (listing only).
    pub name: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

impl Filters {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(s) = &self.statuses {
            q.push(("runtimeStatus", s.clone()));
        }
        if let Some(p) = &self.prefix {
            q.push(("instanceIdPrefix", p.clone()));
        }
        if let Some(n) = &self.name {
            q.push(("name", n.clone()));
        }
        if let Some(f) = &self.from {
            q.push(("createdTimeFrom", f.clone()));
        }
        if let Some(t) = &self.to {
            q.push(("createdTimeTo", t.clone()));
        }
        q
    }
}

fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b'@' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Api {
    pub fn new(url: &str, key: Option<String>) -> Result<Self> {
        let base = url.trim_end_matches('/').to_string();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(anyhow!(
                "--url must start with http:// or https:// (got '{url}')"
            ));
        }
        Ok(Api {
            base,
            key,
            http: reqwest::Client::new(),
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut r = self
            .http
            .request(method, format!("{}{BASE}{path}", self.base));
        if let Some(key) = &self.key {
            r = r.bearer_auth(key);
        }
        r
    }

    async fn send(&self, request: RequestBuilder) -> Result<Reply> {
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the durable server at {}", self.base))?;
        let status = response.status();
        let continuation = response
            .headers()
            .get("x-ms-continuation-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response.text().await.unwrap_or_default();
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_client_error() || status.is_server_error() {
            let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
            return Err(ApiError {
                status,
                code: field("code").unwrap_or_else(|| "http_error".into()),
                message: field("message")
                    .unwrap_or_else(|| format!("the server answered {status}")),
            }
            .into());
        }
        Ok(Reply { continuation, body })
    }

    fn with_json(request: RequestBuilder, json: Option<&str>) -> RequestBuilder {
        match json {
            Some(text) => request
                .header("content-type", "application/json")
                .body(text.to_string()),
            None => request,
        }
    }

    pub async fn start(&self, name: &str, id: Option<&str>, input: Option<&str>) -> Result<Reply> {
        let path = match id {
            Some(id) => format!("/orchestrators/{}/{}", segment(name), segment(id)),
            None => format!("/orchestrators/{}", segment(name)),
        };
        self.send(Self::with_json(self.request(Method::POST, &path), input))
            .await
    }

    pub async fn status(&self, id: &str, history: bool) -> Result<Reply> {
        let mut query = vec![("showInput", "true")];
        if history {
            query.extend([("showHistory", "true"), ("showHistoryOutput", "true")]);
        }
        let path = format!("/instances/{}", segment(id));
        self.send(self.request(Method::GET, &path).query(&query))
            .await
    }

    pub async fn timeline(&self, id: &str) -> Result<Reply> {
        let path = format!("/instances/{}/timeline", segment(id));
        self.send(self.request(Method::GET, &path)).await
    }

    pub async fn list(&self, filters: &Filters, top: usize, token: Option<&str>) -> Result<Reply> {
        let mut request = self
            .request(Method::GET, "/instances")
            .query(&filters.query())
            .query(&[("top", top.to_string())]);
        if let Some(token) = token {
            request = request.header("x-ms-continuation-token", token);
        }
        self.send(request).await
    }

    pub async fn raise(&self, id: &str, event: &str, data: Option<&str>) -> Result<Reply> {
        let path = format!("/instances/{}/raiseEvent/{}", segment(id), segment(event));
        self.send(Self::with_json(self.request(Method::POST, &path), data))
            .await
    }

    /// terminate, suspend, resume or rewind, with an optional reason.
    pub async fn act(&self, id: &str, action: &str, reason: Option<&str>) -> Result<Reply> {
        let path = format!("/instances/{}/{action}", segment(id));
        let mut request = self.request(Method::POST, &path);
        if let Some(reason) = reason {
            request = request.query(&[("reason", reason)]);
        }
        self.send(request).await
    }

    pub async fn restart(&self, id: &str, new_id: bool) -> Result<Reply> {
        let path = format!("/instances/{}/restart", segment(id));
        let request = self
            .request(Method::POST, &path)
            .query(&[("restartWithNewInstanceId", new_id.to_string())]);
        self.send(request).await
    }

    pub async fn purge_one(&self, id: &str) -> Result<Reply> {
        let path = format!("/instances/{}", segment(id));
        self.send(self.request(Method::DELETE, &path)).await
    }

    /// One page of the entities of `name`, with their state.
    pub async fn entities(
        &self,
        name: &str,
        filters: &Filters,
        top: usize,
        token: Option<&str>,
    ) -> Result<Reply> {
        let mut query = vec![("fetchState", "true".to_string()), ("top", top.to_string())];
        query.extend(filters.from.clone().map(|f| ("lastOperationTimeFrom", f)));
        query.extend(filters.to.clone().map(|t| ("lastOperationTimeTo", t)));
        let path = format!("/entities/{}", segment(name));
        let mut request = self.request(Method::GET, &path).query(&query);
        if let Some(token) = token {
            request = request.header("x-ms-continuation-token", token);
        }
        self.send(request).await
    }

    /// An entity's status: state, last operation time, lock.
    pub async fn entity(&self, name: &str, key: &str) -> Result<Reply> {
        let path = format!("/entities/{}/{}", segment(name), segment(key));
        let request = self
            .request(Method::GET, &path)
            .query(&[("showMetadata", "true")]);
        self.send(request).await
    }

    pub async fn signal(
        &self,
        name: &str,
        key: &str,
        op: &str,
        input: Option<&str>,
    ) -> Result<Reply> {
        let path = format!("/entities/{}/{}", segment(name), segment(key));
        let request = self.request(Method::POST, &path).query(&[("op", op)]);
        self.send(Self::with_json(request, input)).await
    }

    pub async fn purge_many(&self, filters: &Filters) -> Result<Reply> {
        let request = self
            .request(Method::DELETE, "/instances")
            .query(&filters.query());
        self.send(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(segment("p1:0001"), "p1:0001");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment("@counter@k1"), "@counter@k1");
    }
}
