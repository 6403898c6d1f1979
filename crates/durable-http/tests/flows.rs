//! The seed's flows, done the way `curl` does them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{DEADLINE, Server, json};

fn time(value: &serde_json::Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

/// `curl -X POST .../orchestrators/DoWork -d 2 -i`, then polling `Location`: 202 ... 202 ... 200.
#[tokio::test]
async fn seed_curl_flow_polls_202_until_200() {
    let server = Server::start().await;
    let response = server
        .post_body(
            "/orchestrators/DoWork",
            "application/x-www-form-urlencoded",
            "2",
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let id = json(response).await["id"].as_str().unwrap().to_string();
    assert_eq!(
        location,
        server.url(&format!("/admin/extensions/DurableTaskExtension/{id}"))
    );

    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut accepted = 0;
    let done = loop {
        let response = server.http.get(&location).send().await.unwrap();
        let status = response.status();
        if status == StatusCode::ACCEPTED {
            assert_eq!(response.headers()["location"].to_str().unwrap(), location);
            assert!(response.headers().contains_key("retry-after"));
        }
        let body = json(response).await;
        match status {
            StatusCode::ACCEPTED => {
                accepted += 1;
                let running = body["runtimeStatus"].as_str().unwrap();
                assert!(["Pending", "Running"].contains(&running), "{body}");
            }
            StatusCode::OK => break body,
            other => panic!("unexpected {other}: {body}"),
        }
        assert!(tokio::time::Instant::now() < deadline, "never finished");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(accepted >= 2, "saw {accepted} answers of 202 for a 2 s job");
    assert_eq!(done["runtimeStatus"], "Completed");
    assert_eq!(done["output"], "done");
    assert_eq!(done["input"], json!(2));
    assert_eq!(done["name"], "DoWork");
    assert_eq!(done["instanceId"], id.as_str());
    let worked = time(&done["lastUpdatedTime"]) - time(&done["createdTime"]);
    assert!(
        worked >= chrono::Duration::seconds(2),
        "finished {worked} after creation, but the job takes 2 s"
    );
}

/// `curl -X POST localhost:7071/orchestrators/Chaining -d '"start"'`.
#[tokio::test]
async fn chaining_posted_like_curl_yields_the_chain() {
    let server = Server::start().await;
    let response = server
        .post_body(
            "/orchestrators/Chaining",
            "application/x-www-form-urlencoded",
            r#""start""#,
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let body = loop {
        let response = server.http.get(&location).send().await.unwrap();
        if response.status() == StatusCode::OK {
            break json(response).await;
        }
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert!(tokio::time::Instant::now() < deadline, "never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(body["output"], "start,F1,F2,F3,F4");
    assert_eq!(body["input"], "start");
}

#[tokio::test]
async fn short_form_start_takes_an_explicit_id() {
    let server = Server::start().await;
    let response = server.post("/orchestrators/Chaining/short-1").await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body = json(response).await;
    assert_eq!(body["id"], "short-1");
    assert_eq!(
        body["statusQueryGetUri"],
        server.url("/admin/extensions/DurableTaskExtension/short-1")
    );
    // The management URIs are the full API's.
    assert_eq!(
        body["terminatePostUri"],
        server.url("/runtime/webhooks/durabletask/instances/short-1/terminate?reason={text}")
    );
    // No input: Chaining wants a string, so it fails; the short status route shows it.
    server.wait_done("short-1").await;
    let response = server
        .get("/admin/extensions/DurableTaskExtension/short-1")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json(response).await["runtimeStatus"], "Failed");
    let response = server
        .get("/admin/extensions/DurableTaskExtension/nobody")
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
