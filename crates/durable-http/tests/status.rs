//! `GET /instances/{instanceId}`: status codes, fields, input, history, failures.

use durable::RuntimeStatus;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{HUB, Server, assert_error};

#[tokio::test]
async fn running_is_202_with_location_and_finished_is_200() {
    let server = Server::start().await;
    let id = server
        .start_instance("Approval", Some(r#"{"timeoutSeconds": 600}"#))
        .await;
    server.wait_status(&id, RuntimeStatus::Running).await;
    let response = server.get(&format!("{HUB}/instances/{id}")).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.headers()["location"].to_str().unwrap(),
        server.url(&format!("{HUB}/instances/{id}"))
    );
    assert_eq!(response.headers()["retry-after"], "1");

    server
        .client
        .raise_event(&id, "ApprovalEvent", true)
        .await
        .unwrap();
    server.wait_done(&id).await;
    let response = server.get(&format!("{HUB}/instances/{id}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!response.headers().contains_key("location"));
    let body = crate::support::json(response).await;
    assert_eq!(body["name"], "Approval");
    assert_eq!(body["instanceId"], id.as_str());
    assert_eq!(body["runtimeStatus"], "Completed");
    assert_eq!(body["input"], json!({"timeoutSeconds": 600}));
    assert_eq!(body["output"], "approved");
    assert_eq!(body["customStatus"], Value::Null);
    for field in ["createdTime", "lastUpdatedTime"] {
        let text = body[field].as_str().unwrap();
        assert!(
            text.parse::<chrono::DateTime<chrono::Utc>>().is_ok(),
            "{field}: {text}"
        );
    }
    assert!(body.get("historyEvents").is_none());
    assert!(body.get("failureDetails").is_none());
}

#[tokio::test]
async fn suspended_is_202_and_custom_status_is_a_value() {
    let server = Server::start().await;
    let id = server.start_instance("Counter", Some("41")).await;
    server
        .client
        .raise_event(&id, "operation", "incr")
        .await
        .unwrap();
    let body = server
        .wait_for(&id, |b| {
            b["runtimeStatus"] == "Running" && b["customStatus"] == json!(42)
        })
        .await;
    assert_eq!(
        body["input"],
        json!(42),
        "continue-as-new carried the value"
    );
    server.client.suspend(&id, Some("pause")).await.unwrap();
    server.wait_status(&id, RuntimeStatus::Suspended).await;
    let (status, _) = server.status(&id, "").await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn show_input_false_leaves_the_input_out() {
    let server = Server::start().await;
    let id = server.start_instance("Chaining", Some(r#""x""#)).await;
    server.wait_done(&id).await;
    let (_, body) = server.status(&id, "?showInput=false").await;
    assert!(body.get("input").is_none(), "{body}");
    assert_eq!(body["output"], "x,F1,F2,F3,F4");
    let (_, body) = server.status(&id, "?showInput=true").await;
    assert_eq!(body["input"], "x");
}

#[tokio::test]
async fn history_is_shown_on_request_with_payloads_as_values() {
    let server = Server::start().await;
    let id = server.start_instance("Chaining", Some(r#""h""#)).await;
    server.wait_done(&id).await;

    let (_, body) = server.status(&id, "?showHistory=true").await;
    let events = body["historyEvents"].as_array().unwrap();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(types.first(), Some(&"OrchestratorStarted"));
    assert!(types.contains(&"ExecutionStarted"));
    assert_eq!(types.last(), Some(&"ExecutionCompleted"));
    let scheduled: Vec<&str> = events
        .iter()
        .filter(|e| e["eventType"] == "TaskScheduled")
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(scheduled, ["F1", "F2", "F3", "F4"]);
    assert!(
        events
            .iter()
            .all(|e| e.get("result").is_none() && e.get("input").is_none()),
        "payloads only with showHistoryOutput"
    );

    let (_, body) = server
        .status(&id, "?showHistory=true&showHistoryOutput=true")
        .await;
    let results: Vec<&Value> = body["historyEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["eventType"] == "TaskCompleted")
        .map(|e| &e["result"])
        .collect();
    assert_eq!(results, ["h,F1", "h,F1,F2", "h,F1,F2,F3", "h,F1,F2,F3,F4"]);
}

#[tokio::test]
async fn failed_instances_carry_failure_details() {
    let server = Server::start().await;
    // Chaining wants a string: a number fails it.
    let id = server.start_instance("Chaining", Some("5")).await;
    server.wait_done(&id).await;
    let (status, body) = server.status(&id, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["runtimeStatus"], "Failed");
    let details = &body["failureDetails"];
    assert!(details["errorType"].is_string(), "{body}");
    let message = details["errorMessage"].as_str().unwrap();
    let output = body["output"].as_str().unwrap();
    assert!(output.contains(message), "{output} / {message}");
}

#[tokio::test]
async fn unknown_instances_and_bad_flags_are_refused() {
    let server = Server::start().await;
    let message = assert_error(
        server.get(&format!("{HUB}/instances/nobody")).await,
        StatusCode::NOT_FOUND,
        "instance_not_found",
    )
    .await;
    assert!(message.contains("nobody"));
    let id = server.start_instance("Approval", None).await;
    assert_error(
        server
            .get(&format!("{HUB}/instances/{id}?showHistory=maybe"))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
    )
    .await;
}

#[tokio::test]
async fn the_timeline_names_each_step_with_its_duration() {
    let server = Server::start().await;
    let id = server.start_instance("Chaining", Some(r#""start""#)).await;
    server.wait_done(&id).await;
    let response = server.get(&format!("{HUB}/instances/{id}/timeline")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let rows = crate::support::json(response).await;
    let rows = rows.as_array().unwrap();
    let completed: Vec<&Value> = rows
        .iter()
        .filter(|r| r["event"] == "TaskCompleted")
        .collect();
    let names: Vec<&str> = completed
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["F1", "F2", "F3", "F4"]);
    assert!(completed.iter().all(|r| r["durationMs"].as_i64().is_some()));
    assert_eq!(completed[3]["result"], "\"start,F1,F2,F3,F4\"");
    assert_eq!(rows.last().unwrap()["event"], "ExecutionCompleted");

    let missing = server.get(&format!("{HUB}/instances/ghost/timeline")).await;
    assert_error(missing, StatusCode::NOT_FOUND, "instance_not_found").await;
}

#[tokio::test]
async fn a_traceparent_header_puts_the_instance_in_the_callers_trace() {
    let server = Server::start().await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response = reqwest::Client::new()
        .post(server.url(&format!("{HUB}/orchestrators/Chaining/traced")))
        .header("content-type", "application/json")
        .header("traceparent", traceparent)
        .body(r#""t""#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    server.wait_done("traced").await;
    let (_, body) = server.status("traced", "?showHistory=true").await;
    let started = body["historyEvents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["eventType"] == "ExecutionStarted")
        .unwrap()
        .clone();
    assert_eq!(started["parentTraceContext"]["traceParent"], traceparent);
    let scheduled = body["historyEvents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["eventType"] == "TaskScheduled")
        .unwrap()
        .clone();
    let child = scheduled["parentTraceContext"]["traceParent"]
        .as_str()
        .unwrap();
    assert!(
        child.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "same trace: {child}"
    );
}
