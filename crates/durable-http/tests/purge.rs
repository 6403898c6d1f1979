//! `DELETE /instances/{instanceId}` and `DELETE /instances?...`.

use durable::RuntimeStatus;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{HUB, Server, assert_error, json};

async fn delete(server: &Server, path: &str) -> reqwest::Response {
    server.http.delete(server.url(path)).send().await.unwrap()
}

#[tokio::test]
async fn purge_one_deletes_a_finished_instance() {
    let server = Server::start().await;
    let id = server.start_instance("Chaining", Some(r#""p""#)).await;
    server.wait_done(&id).await;
    let response = delete(&server, &format!("{HUB}/instances/{id}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json(response).await, json!({"instancesDeleted": 1}));
    let (status, _) = server.status(&id, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let response = delete(&server, &format!("{HUB}/instances/{id}")).await;
    assert_error(response, StatusCode::NOT_FOUND, "instance_not_found").await;

    let running = server.start_instance("Approval", None).await;
    server.wait_status(&running, RuntimeStatus::Running).await;
    let response = delete(&server, &format!("{HUB}/instances/{running}")).await;
    assert_error(response, StatusCode::CONFLICT, "invalid_state").await;
    assert_eq!(server.status(&running, "").await.0, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn purge_by_filter_deletes_only_matching_finished_instances() {
    let server = Server::start().await;
    let a = server.start_instance("Chaining", Some(r#""a""#)).await;
    let b = server.start_instance("Chaining", Some(r#""b""#)).await;
    let failed = server.start_instance("Chaining", Some("1")).await;
    let live = server.start_instance("Approval", None).await;
    for id in [&a, &b, &failed] {
        server.wait_done(id).await;
    }

    let response = delete(
        &server,
        &format!("{HUB}/instances?createdTimeFrom=2999-01-01T00:00:00Z"),
    )
    .await;
    assert_eq!(json(response).await, json!({"instancesDeleted": 0}));

    let response = delete(&server, &format!("{HUB}/instances?runtimeStatus=Completed")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json(response).await, json!({"instancesDeleted": 2}));
    for id in [&a, &b] {
        assert_eq!(server.status(id, "").await.0, StatusCode::NOT_FOUND);
    }

    let response = delete(
        &server,
        &format!("{HUB}/instances?createdTimeFrom=2000-01-01T00:00:00Z"),
    )
    .await;
    assert_eq!(
        json(response).await,
        json!({"instancesDeleted": 1}),
        "the failed one"
    );
    assert_eq!(server.status(&failed, "").await.0, StatusCode::NOT_FOUND);
    assert_eq!(server.status(&live, "").await.0, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn purge_refuses_missing_or_inapplicable_filters() {
    let server = Server::start().await;
    for query in [
        "",
        "?runtimeStatus=Running",
        "?runtimeStatus=Completed&instanceIdPrefix=a",
        "?runtimeStatus=Completed&name=Chaining",
        "?runtimeStatus=Completed&top=5",
        "?createdTimeTo=soon",
    ] {
        let response = delete(&server, &format!("{HUB}/instances{query}")).await;
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_input").await;
    }
}
