//! `POST /orchestrators/{name}[/{instanceId}]`.

use durable::RuntimeStatus;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{HUB, Server, assert_error, json};

const URI_FIELDS: [&str; 8] = [
    "statusQueryGetUri",
    "sendEventPostUri",
    "terminatePostUri",
    "suspendPostUri",
    "resumePostUri",
    "rewindPostUri",
    "restartPostUri",
    "purgeHistoryDeleteUri",
];

#[tokio::test]
async fn start_answers_202_with_location_and_every_management_uri() {
    let server = Server::start().await;
    let response = server
        .post_body(
            &format!("{HUB}/orchestrators/Chaining"),
            "application/json",
            r#""start""#,
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(response.headers()["retry-after"], "1");
    let body = json(response).await;
    let id = body["id"].as_str().unwrap();
    let instance = server.url(&format!("{HUB}/instances/{id}"));
    assert_eq!(location, instance);
    assert_eq!(body["statusQueryGetUri"], instance);
    assert_eq!(
        body["sendEventPostUri"],
        format!("{instance}/raiseEvent/{{eventName}}")
    );
    for action in ["terminate", "suspend", "resume", "rewind"] {
        assert_eq!(
            body[format!("{action}PostUri")],
            format!("{instance}/{action}?reason={{text}}")
        );
    }
    assert_eq!(body["restartPostUri"], format!("{instance}/restart"));
    assert_eq!(body["purgeHistoryDeleteUri"], instance);
    assert_eq!(body.as_object().unwrap().len(), 1 + URI_FIELDS.len());

    let done = server.wait_done(id).await;
    assert_eq!(done.output_as::<String>().unwrap(), "start,F1,F2,F3,F4");
}

#[tokio::test]
async fn explicit_ids_are_used_and_a_running_one_is_refused() {
    let server = Server::start().await;
    let path = format!("{HUB}/orchestrators/Approval/order-42");
    let response = server.post(&path).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(json(response).await["id"], "order-42");
    server.wait_status("order-42", RuntimeStatus::Running).await;

    let message = assert_error(
        server.post(&path).await,
        StatusCode::CONFLICT,
        "already_exists",
    )
    .await;
    assert!(message.contains("order-42"), "{message}");

    // Once it has finished, the id may be used again.
    server
        .client
        .terminate("order-42", "stop", false)
        .await
        .unwrap();
    server.wait_done("order-42").await;
    let response = server.post(&path).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    server.wait_status("order-42", RuntimeStatus::Running).await;
}

#[tokio::test]
async fn an_empty_body_means_no_input() {
    let server = Server::start().await;
    let id = server.start_instance("FanOutFanIn", None).await;
    let done = server.wait_done(&id).await;
    assert_eq!(done.input, None);
    assert_eq!(done.output_as::<u64>().unwrap(), 385, "n defaults to 10");
    let id = server.start_instance("FanOutFanIn", Some("  \n")).await;
    assert_eq!(server.wait_done(&id).await.output_as::<u64>().unwrap(), 385);
}

#[tokio::test]
async fn text_plain_bodies_are_json_and_inputs_stay_values() {
    let server = Server::start().await;
    let response = server
        .post_body(
            &format!("{HUB}/orchestrators/FanOutFanIn"),
            "text/plain",
            "3",
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let id = json(response).await["id"].as_str().unwrap().to_string();
    server.wait_done(&id).await;
    let (status, body) = server.status(&id, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["input"], json!(3));
    assert_eq!(body["output"], json!(14));
}

#[tokio::test]
async fn ids_with_reserved_characters_are_encoded_in_uris() {
    let server = Server::start().await;
    let response = server
        .post(&format!("{HUB}/orchestrators/Approval/a%20b%2Fc%3F"))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(location.ends_with("/instances/a%20b%2Fc%3F"), "{location}");
    assert_eq!(json(response).await["id"], "a b/c?");
    let polled = server.http.get(&location).send().await.unwrap();
    assert_eq!(polled.status(), StatusCode::ACCEPTED);
    assert_eq!(json(polled).await["instanceId"], "a b/c?");
}

#[tokio::test]
async fn an_invalid_instance_id_is_refused() {
    let server = Server::start().await;
    let long = "x".repeat(300);
    let response = server
        .post(&format!("{HUB}/orchestrators/Chaining/{long}"))
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_instance_id").await;
}
