//! The entity routes against the sample `counter` entity: signal, read, list, page, filter, and
//! every bad input answered with its own error while the entity keeps its state.

use std::time::Duration;

use durable_http::ApiOptions;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{DEADLINE, HUB, Server, assert_error, json};

fn entity(name: &str, key: &str) -> String {
    format!("{HUB}/entities/{name}/{key}")
}

/// `POST .../{name}/{key}?op=OP` with a JSON body; asserts `202`.
async fn signal(server: &Server, name: &str, key: &str, op: &str, body: &str) {
    let path = format!("{}?op={op}", entity(name, key));
    let response = server.post_body(&path, "application/json", body).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED, "{path}");
    assert_eq!(response.text().await.unwrap(), "");
}

/// Polls `GET .../{name}/{key}` until it answers `200` with `want`.
async fn wait_state(server: &Server, name: &str, key: &str, want: Value) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let response = server.get(&entity(name, key)).await;
        let status = response.status();
        let body = json(response).await;
        if status == StatusCode::OK && body == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}/{key} never reached {want}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every page of a listing, following `x-ms-continuation-token`; the pages' lengths and items.
async fn all_pages(server: &Server, path: &str) -> (Vec<usize>, Vec<Value>) {
    let (mut sizes, mut items, mut token) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let mut request = server.http.get(server.url(path));
        if let Some(t) = &token {
            request = request.header("x-ms-continuation-token", t);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        token = response
            .headers()
            .get("x-ms-continuation-token")
            .map(|v| v.to_str().unwrap().to_string());
        let page = json(response).await;
        let page = page.as_array().unwrap();
        sizes.push(page.len());
        items.extend(page.iter().cloned());
        if token.is_none() {
            return (sizes, items);
        }
    }
}

fn keys(items: &[Value]) -> Vec<&str> {
    let mut keys: Vec<&str> = items
        .iter()
        .map(|e| e["entityId"]["key"].as_str().unwrap())
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn signals_change_the_state_that_get_and_list_show() {
    let server = Server::start().await;
    signal(&server, "counter", "alice", "add", "5").await;
    wait_state(&server, "counter", "alice", json!(5)).await;
    signal(&server, "counter", "alice", "add", "2").await;
    wait_state(&server, "counter", "alice", json!(7)).await;
    // Names in any letter case address the same entity; keys with '/' travel percent-encoded.
    signal(&server, "Counter", "alice", "add", "1").await;
    wait_state(&server, "COUNTER", "alice", json!(8)).await;
    signal(&server, "counter", "a%2Fb", "add", "3").await;
    wait_state(&server, "counter", "a%2Fb", json!(3)).await;
    let slash = durable::EntityId::new("counter", "a/b");
    let state = server.client.get_entity(&slash).await.unwrap().unwrap();
    assert_eq!(state.state.as_deref(), Some("3"));

    let response = server
        .get(&format!("{}?showMetadata=true", entity("counter", "alice")))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let status = json(response).await;
    assert_eq!(
        status["entityId"],
        json!({"name": "counter", "key": "alice"})
    );
    assert_eq!(status["state"], json!(8));
    assert_eq!(status["lockedBy"], Value::Null);
    assert_eq!(status["backlogQueueSize"], 0);
    assert!(status["lastOperationTime"].as_str().unwrap().ends_with('Z'));

    let response = server.get(&format!("{HUB}/entities/counter")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let list = json(response).await;
    assert_eq!(keys(list.as_array().unwrap()), ["a/b", "alice"]);
    assert!(list[0].get("state").is_none(), "{list}");
    let response = server
        .get(&format!("{HUB}/entities/Counter?fetchState=true"))
        .await;
    let list = json(response).await;
    let states: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["state"])
        .collect();
    assert_eq!(states, [&json!(8), &json!(3)]);

    // Deleting the state: the entity reads as not found and leaves the listing.
    signal(&server, "counter", "alice", "delete", "").await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let message = loop {
        let response = server.get(&entity("counter", "alice")).await;
        if response.status() == StatusCode::NOT_FOUND {
            break assert_error(response, StatusCode::NOT_FOUND, "entity_not_found").await;
        }
        assert!(tokio::time::Instant::now() < deadline, "never deleted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(message.contains("has no state"), "{message}");
    let list = json(server.get(&format!("{HUB}/entities/counter")).await).await;
    assert_eq!(keys(list.as_array().unwrap()), ["a/b"]);

    // Entities stay out of the orchestration listing.
    let instances = json(server.get(&format!("{HUB}/instances")).await).await;
    assert_eq!(instances, json!([]));
}

#[tokio::test]
async fn listings_page_and_filter_by_last_operation_time() {
    let server = Server::start().await;
    for key in ["k0", "k1", "k2"] {
        signal(&server, "counter", key, "add", "1").await;
    }
    for key in ["k0", "k1", "k2"] {
        wait_state(&server, "counter", key, json!(1)).await;
    }
    let (_, first) = all_pages(&server, &format!("{HUB}/entities/counter")).await;
    let latest = first
        .iter()
        .map(|e| e["lastOperationTime"].as_str().unwrap().parse())
        .collect::<Result<Vec<chrono::DateTime<chrono::Utc>>, _>>()
        .unwrap()
        .into_iter()
        .max()
        .unwrap();
    let split = latest + chrono::Duration::milliseconds(1);
    tokio::time::sleep(Duration::from_millis(10)).await;
    for key in ["k3", "k4"] {
        signal(&server, "counter", key, "add", "2").await;
    }
    for key in ["k3", "k4"] {
        wait_state(&server, "counter", key, json!(2)).await;
    }
    // An entity without state (addressed, never set) is not listed.
    signal(&server, "counter", "empty", "get", "").await;

    let (sizes, items) = all_pages(&server, &format!("{HUB}/entities/counter?top=2")).await;
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(keys(&items), ["k0", "k1", "k2", "k3", "k4"]);

    let split = split.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let after = format!("{HUB}/entities/counter?lastOperationTimeFrom={split}&fetchState=true");
    let (_, items) = all_pages(&server, &after).await;
    assert_eq!(keys(&items), ["k3", "k4"]);
    assert!(items.iter().all(|e| e["state"] == 2));
    let (sizes, items) = all_pages(&server, &format!("{after}&top=1")).await;
    assert_eq!(keys(&items), ["k3", "k4"]);
    assert_eq!(sizes.iter().sum::<usize>(), 2);
    let before = format!("{HUB}/entities/counter?lastOperationTimeTo={split}");
    let (_, items) = all_pages(&server, &before).await;
    assert_eq!(keys(&items), ["k0", "k1", "k2"]);

    let (_, items) = all_pages(&server, &format!("{HUB}/entities/nothing")).await;
    assert!(items.is_empty());
    let (_, items) = all_pages(&server, &format!("{HUB}/entities?top=3")).await;
    assert_eq!(keys(&items), ["k0", "k1", "k2", "k3", "k4"]);
}

#[tokio::test]
async fn bad_input_gets_its_own_error_and_loses_nothing() {
    let server = Server::with(ApiOptions {
        max_body_bytes: 64,
        ..Default::default()
    })
    .await;
    signal(&server, "counter", "c", "add", "1").await;
    wait_state(&server, "counter", "c", json!(1)).await;
    let path = entity("counter", "c");
    let post = |query: &str, content_type: &str, body: String| {
        let url = server.url(&format!("{path}{query}"));
        let request = server.http.post(url).header("content-type", content_type);
        request.body(body).send()
    };

    let no_op = post("", "application/json", "1".into()).await.unwrap();
    let message = assert_error(no_op, StatusCode::BAD_REQUEST, "invalid_input").await;
    assert!(message.contains("?op="), "{message}");
    let empty_op = post("?op=", "application/json", "1".into()).await.unwrap();
    assert_error(empty_op, StatusCode::BAD_REQUEST, "invalid_input").await;
    let long_op = post(
        &format!("?op={}", "a".repeat(300)),
        "application/json",
        "1".into(),
    );
    assert_error(
        long_op.await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_input",
    )
    .await;
    for body in ["{", "add", "[1,]"] {
        let response = post("?op=add", "application/json", body.into())
            .await
            .unwrap();
        assert_error(response, StatusCode::BAD_REQUEST, "malformed_json").await;
    }
    let big = post(
        "?op=add",
        "application/json",
        format!("\"{}\"", "x".repeat(100)),
    );
    assert_error(
        big.await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    let xml = post("?op=add", "application/xml", "<a/>".into())
        .await
        .unwrap();
    assert_error(
        xml,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;

    let unknown = server
        .post(&format!("{}?op=add", entity("nope", "c")))
        .await;
    let message = assert_error(unknown, StatusCode::NOT_FOUND, "unknown_entity").await;
    assert!(
        message.contains("'nope'") && message.contains("counter"),
        "{message}"
    );
    let long_name = "n".repeat(300);
    for (name, key) in [
        ("a%40b", "c"),
        (long_name.as_str(), "c"),
        ("counter", "x%01y"),
    ] {
        let target = entity(name, key);
        let response = server.post(&format!("{target}?op=add")).await;
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_entity_id").await;
        let response = server.get(&target).await;
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_entity_id").await;
    }
    let long_key = entity("counter", &"k".repeat(300));
    let response = server.post(&format!("{long_key}?op=add")).await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_entity_id").await;
    let response = server.get(&format!("{HUB}/entities/a%40b")).await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_entity_id").await;

    let missing = server.get(&entity("counter", "never")).await;
    let message = assert_error(missing, StatusCode::NOT_FOUND, "entity_not_found").await;
    assert!(message.contains("@counter@never"), "{message}");
    for query in [
        "top=0",
        "top=1001",
        "top=x",
        "lastOperationTimeFrom=yesterday",
        "fetchState=maybe",
    ] {
        let response = server.get(&format!("{HUB}/entities/counter?{query}")).await;
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_input").await;
    }
    let response = server
        .http
        .get(server.url(&format!("{HUB}/entities/counter")))
        .header("x-ms-continuation-token", "garbage")
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_input").await;
    let response = server
        .http
        .request(Method::DELETE, server.url(&path))
        .send();
    assert_error(
        response.await.unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;

    // Nothing was lost or applied twice: the next good signal lands on the old state.
    signal(&server, "counter", "c", "add", "10").await;
    wait_state(&server, "counter", "c", json!(11)).await;
    let list = json(server.get(&format!("{HUB}/entities/counter")).await).await;
    assert_eq!(keys(list.as_array().unwrap()), ["c"]);
}

#[tokio::test]
async fn entity_routes_need_the_api_key() {
    let server = Server::with(ApiOptions {
        api_key: Some("sesame".into()),
        ..Default::default()
    })
    .await;
    let path = format!("{}?op=add", entity("counter", "k"));
    for response in [
        server.get(&format!("{HUB}/entities/counter")).await,
        server.get(&entity("counter", "k")).await,
        server.post(&path).await,
    ] {
        assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    let response = server
        .http
        .post(server.url(&path))
        .header("x-functions-key", "sesame")
        .body("4")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let response = server
        .http
        .get(server.url(&format!("{HUB}/entities/counter?fetchState=true")))
        .bearer_auth("sesame")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
