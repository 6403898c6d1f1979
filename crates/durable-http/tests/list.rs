//! `GET /instances`: filters and paging.

use std::collections::BTreeSet;

use durable::RuntimeStatus;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{HUB, Server, assert_error, json};

const TOKEN: &str = "x-ms-continuation-token";

/// Ids of one page, and the token for the next.
async fn page(server: &Server, query: &str, token: Option<&str>) -> (Vec<String>, Option<String>) {
    let mut request = server
        .http
        .get(server.url(&format!("{HUB}/instances{query}")));
    if let Some(token) = token {
        request = request.header(TOKEN, token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let next = response
        .headers()
        .get(TOKEN)
        .map(|v| v.to_str().unwrap().to_string());
    let body = json(response).await;
    let ids = body
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["instanceId"].as_str().unwrap().to_string())
        .collect();
    (ids, next)
}

async fn start_with_id(server: &Server, name: &str, id: &str, input: &str) {
    let response = server
        .http
        .post(server.url(&format!("{HUB}/orchestrators/{name}/{id}")))
        .body(input.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn top_and_the_continuation_header_page_through_everything() {
    let server = Server::start().await;
    let mut started = BTreeSet::new();
    for n in 0..5 {
        let id = format!("page-{n}");
        start_with_id(&server, "Approval", &id, "").await;
        started.insert(id);
    }
    start_with_id(&server, "Approval", "other", "").await;

    let mut seen = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let (ids, next) = page(&server, "?instanceIdPrefix=page-&top=2", token.as_deref()).await;
        assert!(ids.len() <= 2);
        seen.extend(ids);
        pages += 1;
        match next {
            Some(next) => token = Some(next),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 5, "no instance twice: {seen:?}");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), started);

    let (all, next) = page(&server, "", None).await;
    assert_eq!(all.len(), 6);
    assert_eq!(next, None);
}

#[tokio::test]
async fn status_and_time_filters() {
    let server = Server::start().await;
    start_with_id(&server, "Chaining", "done-1", r#""a""#).await;
    start_with_id(&server, "Approval", "live-1", "").await;
    server.wait_done("done-1").await;
    server.wait_status("live-1", RuntimeStatus::Running).await;

    let (ids, _) = page(&server, "?runtimeStatus=Completed", None).await;
    assert_eq!(ids, ["done-1"]);
    let (ids, _) = page(&server, "?runtimeStatus=running,pending", None).await;
    assert_eq!(ids, ["live-1"]);
    let (ids, _) = page(&server, "?runtimeStatus=Completed,Running", None).await;
    assert_eq!(ids.len(), 2);

    let (ids, _) = page(&server, "?createdTimeFrom=2999-01-01T00:00:00Z", None).await;
    assert!(ids.is_empty());
    let (ids, _) = page(&server, "?createdTimeTo=2000-01-01T00:00:00Z", None).await;
    assert!(ids.is_empty());
    let (ids, _) = page(
        &server,
        "?createdTimeFrom=2000-01-01T00:00:00Z&createdTimeTo=2999-01-01T00:00:00%2B01:00",
        None,
    )
    .await;
    assert_eq!(ids.len(), 2);
}

#[tokio::test]
async fn the_name_filter_matches_whole_names() {
    let server = Server::start().await;
    start_with_id(&server, "Chaining", "c-1", r#""a""#).await;
    start_with_id(&server, "Approval", "a-1", "").await;
    let (ids, _) = page(&server, "?name=Chaining", None).await;
    assert_eq!(ids, ["c-1"]);
    let (ids, _) = page(&server, "?name=Chain", None).await;
    assert!(ids.is_empty());
    let (ids, _) = page(&server, "?name=", None).await;
    assert_eq!(ids.len(), 2, "an empty name filters nothing");
}

#[tokio::test]
async fn inputs_are_listed_only_on_request_and_outputs_always() {
    let server = Server::start().await;
    start_with_id(&server, "Chaining", "c", r#""in""#).await;
    server.wait_done("c").await;
    let body: Value = json(server.get(&format!("{HUB}/instances")).await).await;
    assert!(body[0].get("input").is_none());
    assert_eq!(body[0]["output"], "in,F1,F2,F3,F4");
    let body: Value = json(server.get(&format!("{HUB}/instances?showInput=true")).await).await;
    assert_eq!(body[0]["input"], "in");
}

#[tokio::test]
async fn bad_filters_and_tokens_are_400() {
    let server = Server::start().await;
    for query in [
        "?runtimeStatus=Done",
        "?createdTimeFrom=yesterday",
        "?top=0",
        "?top=1001",
        "?top=-1",
        "?showInput=perhaps",
    ] {
        let response = server.get(&format!("{HUB}/instances{query}")).await;
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_input").await;
    }
    let response = server
        .http
        .get(server.url(&format!("{HUB}/instances")))
        .header(TOKEN, "not-a-token")
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_input").await;
}
