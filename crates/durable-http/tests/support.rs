//! A served router and helpers to talk to it.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use durable::{Client, InstanceState, RuntimeStatus, Worker, WorkerOptions};
use durable_http::ApiOptions;
use reqwest::{Response, StatusCode};
use serde_json::Value;
use tempfile::TempDir;

/// The API prefix.
pub const HUB: &str = "/runtime/webhooks/durabletask";

/// How long any wait in these tests may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A server on 127.0.0.1 with a worker running the samples on a SQLite file.
pub struct Server {
    pub base: String,
    pub http: reqwest::Client,
    pub client: Client,
    _worker: Worker,
    _dir: TempDir,
}

impl Server {
    pub async fn start() -> Server {
        Server::with(ApiOptions::default()).await
    }

    pub async fn with(options: ApiOptions) -> Server {
        Server::build(options, false).await
    }

    /// With `/metrics` and the scale signal merged in behind the same key, as `durable serve`
    /// mounts them.
    pub async fn with_monitoring(options: ApiOptions) -> Server {
        Server::build(options, true).await
    }

    async fn build(options: ApiOptions, monitoring: bool) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("durable.db").display());
        let store = durable::open_store(&url).unwrap();
        let registry = durable_samples::registry();
        let worker = Worker::builder(store)
            .registry(&registry)
            .options(WorkerOptions {
                idle_poll: Duration::from_millis(50),
                ..Default::default()
            })
            .start();
        let client = worker.client();
        let key = options.api_key.clone();
        let mut app = durable_http::router(client.clone(), Arc::new(registry), options);
        if monitoring {
            let scale = durable_http::metrics::ScaleOptions::default();
            app = app.merge(
                durable_http::metrics::router(client.clone(), scale)
                    .method_not_allowed_fallback(durable_http::method_not_allowed)
                    .layer(durable_http::require_api_key(key)),
            );
        }
        let base = serve(app).await;
        Server {
            base,
            http: reqwest::Client::new(),
            client,
            _worker: worker,
            _dir: dir,
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST {HUB}/orchestrators/{name}` with a JSON body (none for `None`); the new id.
    pub async fn start_instance(&self, name: &str, input: Option<&str>) -> String {
        let path = format!("{HUB}/orchestrators/{name}");
        let response = match input {
            Some(body) => self.post_body(&path, "application/json", body).await,
            None => self.post(&path).await,
        };
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        json(response).await["id"].as_str().unwrap().to_string()
    }

    /// `POST path` with a body and its content type.
    pub async fn post_body(&self, path: &str, content_type: &str, body: &str) -> Response {
        self.http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    pub async fn post(&self, path: &str) -> Response {
        self.http.post(self.url(path)).send().await.unwrap()
    }

    /// `GET {HUB}/instances/{id}` with extra query text, as JSON.
    pub async fn status(&self, id: &str, query: &str) -> (StatusCode, Value) {
        let response = self.get(&format!("{HUB}/instances/{id}{query}")).await;
        let status = response.status();
        (status, json(response).await)
    }

    pub async fn wait_done(&self, id: &str) -> InstanceState {
        self.client.wait_for_completion(id, DEADLINE).await.unwrap()
    }

    /// Waits until the instance has the status (seen through the HTTP API); its status body.
    pub async fn wait_status(&self, id: &str, wanted: RuntimeStatus) -> Value {
        self.wait_for(id, |body| body["runtimeStatus"] == wanted.as_str())
            .await
    }

    /// Polls the instance's status body until `done` holds for it; that body.
    pub async fn wait_for(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let (_, body) = self.status(id, "").await;
            if done(&body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{id} never got there: {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Serves `app` on a free port of 127.0.0.1; returns `http://127.0.0.1:PORT`.
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// The body as JSON (`null` when empty).
pub async fn json(response: Response) -> Value {
    let text = response.text().await.unwrap();
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}

/// Asserts an error answer: the status, and a JSON body of exactly `code` and `message`.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> String {
    assert_eq!(response.status(), status, "for {}", response.url());
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body = json(response).await;
    let object = body.as_object().expect("an object");
    assert_eq!(object.len(), 2, "{body}");
    assert_eq!(body["code"], code, "{body}");
    let message = body["message"].as_str().expect("a message");
    assert!(!message.is_empty());
    message.to_string()
}
