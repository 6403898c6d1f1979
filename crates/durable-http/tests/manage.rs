//! raiseEvent, terminate, suspend, resume, rewind, restart.

use durable::RuntimeStatus;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{HUB, Server, assert_error, json};

async fn raise(server: &Server, id: &str, event: &str, data: &str) -> reqwest::Response {
    server
        .post_body(
            &format!("{HUB}/instances/{id}/raiseEvent/{event}"),
            "application/json",
            data,
        )
        .await
}

/// Every action on an unknown instance is 404.
#[tokio::test]
async fn actions_on_unknown_instances_are_404() {
    let server = Server::start().await;
    let response = raise(&server, "ghost", "operation", r#""incr""#).await;
    assert_error(response, StatusCode::NOT_FOUND, "instance_not_found").await;
    for action in ["terminate", "suspend", "resume", "rewind", "restart"] {
        let response = server
            .post(&format!("{HUB}/instances/ghost/{action}"))
            .await;
        assert_error(response, StatusCode::NOT_FOUND, "instance_not_found").await;
    }
}

#[tokio::test]
async fn events_drive_the_counter() {
    let server = Server::start().await;
    let id = server.start_instance("Counter", None).await;
    for _ in 0..2 {
        let response = raise(&server, &id, "operation", r#""incr""#).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    server
        .wait_for(&id, |b| b["customStatus"] == json!(2))
        .await;
    let response = raise(&server, &id, "operation", r#""end""#).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let done = server.wait_done(&id).await;
    assert_eq!(done.output_as::<i64>().unwrap(), 2);

    let response = raise(&server, &id, "operation", r#""incr""#).await;
    assert_error(response, StatusCode::GONE, "instance_finished").await;
    let response = raise(&server, &id, "operation", "{oops").await;
    assert_error(response, StatusCode::BAD_REQUEST, "malformed_json").await;
}

#[tokio::test]
async fn terminate_records_the_reason_and_then_is_410() {
    let server = Server::start().await;
    let id = server.start_instance("Approval", None).await;
    server.wait_status(&id, RuntimeStatus::Running).await;
    let response = server
        .post(&format!(
            "{HUB}/instances/{id}/terminate?reason=no%20longer%20needed"
        ))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body = server.wait_status(&id, RuntimeStatus::Terminated).await;
    assert_eq!(body["output"], "no longer needed");
    let response = server
        .post(&format!("{HUB}/instances/{id}/terminate"))
        .await;
    assert_error(response, StatusCode::GONE, "instance_finished").await;
}

#[tokio::test]
async fn suspend_and_resume_then_410_once_finished() {
    let server = Server::start().await;
    let id = server.start_instance("Approval", None).await;
    server.wait_status(&id, RuntimeStatus::Running).await;
    let response = server
        .post(&format!("{HUB}/instances/{id}/suspend?reason=audit"))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    server.wait_status(&id, RuntimeStatus::Suspended).await;
    // Suspending again changes nothing.
    let response = server.post(&format!("{HUB}/instances/{id}/suspend")).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);

    let response = raise(&server, &id, "ApprovalEvent", "true").await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let response = server
        .post(&format!("{HUB}/instances/{id}/resume?reason=ok"))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let done = server.wait_done(&id).await;
    assert_eq!(done.output_as::<String>().unwrap(), "approved");

    for action in ["suspend", "resume"] {
        let response = server.post(&format!("{HUB}/instances/{id}/{action}")).await;
        assert_error(response, StatusCode::GONE, "instance_finished").await;
    }
}

#[tokio::test]
async fn rewind_applies_to_failed_instances_only() {
    let server = Server::start().await;
    let running = server.start_instance("Approval", None).await;
    server.wait_status(&running, RuntimeStatus::Running).await;
    let response = server
        .post(&format!("{HUB}/instances/{running}/rewind"))
        .await;
    assert_error(response, StatusCode::CONFLICT, "invalid_state").await;

    let completed = server.start_instance("Chaining", Some(r#""a""#)).await;
    server.wait_done(&completed).await;
    let response = server
        .post(&format!("{HUB}/instances/{completed}/rewind"))
        .await;
    assert_error(response, StatusCode::GONE, "instance_finished").await;

    // A counter fed an unknown operation fails in its own code.
    let failed = server.start_instance("Counter", None).await;
    let response = raise(&server, &failed, "operation", r#""explode""#).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let before = server.wait_status(&failed, RuntimeStatus::Failed).await;
    let response = server
        .post(&format!("{HUB}/instances/{failed}/rewind?reason=retry"))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    // It runs again and, being deterministic, fails the same way.
    let after = server
        .wait_for(&failed, |b| {
            b["runtimeStatus"] == "Failed" && b["lastUpdatedTime"] != before["lastUpdatedTime"]
        })
        .await;
    assert_eq!(after["failureDetails"]["errorType"], "InvalidOperation");
}

#[tokio::test]
async fn restart_runs_a_finished_instance_again() {
    let server = Server::start().await;
    let id = server.start_instance("Chaining", Some(r#""r""#)).await;
    server.wait_done(&id).await;

    let response = server
        .post(&format!(
            "{HUB}/instances/{id}/restart?restartWithNewInstanceId=false"
        ))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(location, server.url(&format!("{HUB}/instances/{id}")));
    assert_eq!(json(response).await["id"], id.as_str());
    let done = server.wait_done(&id).await;
    assert_eq!(done.output_as::<String>().unwrap(), "r,F1,F2,F3,F4");

    let response = server.post(&format!("{HUB}/instances/{id}/restart")).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let new_id = json(response).await["id"].as_str().unwrap().to_string();
    assert_ne!(new_id, id, "a new id by default");
    let done = server.wait_done(&new_id).await;
    assert_eq!(done.output_as::<String>().unwrap(), "r,F1,F2,F3,F4");

    let running = server.start_instance("Approval", None).await;
    let response = server
        .post(&format!("{HUB}/instances/{running}/restart"))
        .await;
    assert_error(response, StatusCode::CONFLICT, "invalid_state").await;
}
