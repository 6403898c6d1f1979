//! The API key: accepted by all three means, refused otherwise, never logged.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use durable_http::ApiOptions;
use reqwest::{RequestBuilder, StatusCode};

use crate::support::{HUB, Server, assert_error};

const KEY: &str = "s3cret-Key+/=";

async fn secured() -> Server {
    Server::with(ApiOptions {
        api_key: Some(KEY.into()),
        ..Default::default()
    })
    .await
}

/// The three accepted ways to present `key`.
fn presented(request: RequestBuilder, means: usize, key: &str) -> RequestBuilder {
    match means {
        0 => request.bearer_auth(key),
        1 => request.header("x-functions-key", key),
        _ => request.query(&[("code", key)]),
    }
}

#[tokio::test]
async fn the_key_is_accepted_by_all_three_means() {
    let server = secured().await;
    for means in 0..3 {
        let start = server
            .http
            .post(server.url(&format!("{HUB}/orchestrators/Chaining")))
            .body(r#""k""#);
        let response = presented(start, means, KEY).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED, "means {means}");
        let id = crate::support::json(response).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let status = server
            .http
            .get(server.url(&format!("{HUB}/instances/{id}")));
        let response = presented(status, means, KEY).send().await.unwrap();
        assert!(response.status().is_success(), "means {means}");
    }
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_401() {
    let server = secured().await;
    for path in [
        format!("{HUB}/instances"),
        format!("{HUB}/instances/x"),
        "/admin/extensions/DurableTaskExtension/x".to_string(),
        "/no/such/route".to_string(),
    ] {
        let response = server.get(&path).await;
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
        for means in 0..3 {
            for wrong in ["s3cret-key+/=", "s3cret-Key+/", "", "x"] {
                let request = server.http.get(server.url(&path));
                let response = presented(request, means, wrong).send().await.unwrap();
                assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
            }
        }
    }
    let response = server.post("/orchestrators/Chaining").await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let response = server
        .http
        .get(server.url(&format!("{HUB}/instances")))
        .header("authorization", format!("Basic {KEY}"))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn health_and_openapi_stay_open() {
    let server = secured().await;
    let response = server.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = server.get("/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// A log sink shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The log of this test binary: a process-wide subscriber (a thread-local one misses events
/// whose callsites other threads registered first) that keeps request logs.
fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_env_filter("tower_http=debug,durable_http=debug")
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        logs
    })
}

#[tokio::test]
async fn the_key_never_reaches_the_log() {
    let logs = logs();
    let server = secured().await;
    let marker = format!("marker-{}", std::process::id());
    for means in 0..3 {
        for key in [KEY, "wrong-guess"] {
            let request = server
                .http
                .get(server.url(&format!("{HUB}/instances?top=3&{marker}=1")));
            presented(request, means, key).send().await.unwrap();
        }
    }
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let ours: Vec<&str> = text.lines().filter(|l| l.contains(&marker)).collect();
    assert!(ours.len() >= 6, "requests are logged: {text}");
    assert!(ours.iter().any(|l| l.contains("code=***")), "{ours:?}");
    for secret in ["s3cret", "wrong-guess"] {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the log:\n{text}"
        );
    }
}
