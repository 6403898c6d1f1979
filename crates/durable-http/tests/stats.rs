//! `GET /stats`: counts by status and this process's counters.

use durable::RuntimeStatus;
use durable_http::ApiOptions;
use reqwest::StatusCode;

use crate::support::{HUB, Server, json};

#[tokio::test]
async fn stats_count_instances_by_status() {
    let server = Server::start().await;
    let done = server.start_instance("Chaining", Some(r#""s""#)).await;
    let live = server.start_instance("Approval", None).await;
    server.wait_done(&done).await;
    server.wait_status(&live, RuntimeStatus::Running).await;
    // An entity is counted apart, not as a running orchestration.
    let counter = durable::EntityId::new("counter", "stats");
    server
        .client
        .signal_entity(&counter, "add", 1)
        .await
        .unwrap();

    let response = server.get(&format!("{HUB}/stats")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json(response).await;
    let by_status = body["instancesByStatus"].as_object().unwrap();
    assert_eq!(by_status.len(), 7, "every status, zeros included: {body}");
    assert_eq!(by_status["Completed"], 1);
    assert_eq!(by_status["Running"], 1);
    assert_eq!(body["entities"], 1, "{body}");
    assert_eq!(by_status["Failed"], 0);
    assert_eq!(body["pendingTimers"], 1, "the approval's timeout: {body}");
    // The counters are the whole test process's, which other tests share.
    assert!(body["process"]["turns"].as_u64().unwrap() >= 5, "{body}");
    assert!(body["process"]["activitiesCompleted"].as_u64().unwrap() >= 5);
    assert!(body["process"]["activitiesFailed"].is_u64());
}

#[tokio::test]
async fn stats_need_the_key() {
    let server = Server::with(ApiOptions {
        api_key: Some("k".into()),
        ..Default::default()
    })
    .await;
    let response = server.get(&format!("{HUB}/stats")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = server
        .http
        .get(server.url(&format!("{HUB}/stats")))
        .header("x-functions-key", "k")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
