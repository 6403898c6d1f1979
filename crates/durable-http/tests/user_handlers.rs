//! The check-status builder in users' own handlers, and `examples/http_trigger.rs`.

use reqwest::StatusCode;

use crate::support::{assert_error, json, serve};

#[allow(dead_code)]
#[path = "../../../examples/http_trigger.rs"]
mod http_trigger;

fn store() -> (tempfile::TempDir, durable::SharedStore) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("orders.db").display());
    let store = durable::open_store(&url).unwrap();
    (dir, store)
}

#[tokio::test]
async fn the_example_places_an_order_and_polls_it_to_the_end() {
    let (_dir, store) = store();
    let order = http_trigger::Order {
        item: "book".into(),
        quantity: 2,
    };
    let output = http_trigger::run(store, order).await.unwrap();
    assert_eq!(output, "charged for 2 x book; shipped 2 x book");
}

#[tokio::test]
async fn the_example_keeps_its_own_auth_and_the_api_key() {
    let (_dir, store) = store();
    let worker = http_trigger::worker(store);
    let base = serve(http_trigger::app(worker.client(), "t0k")).await;
    let http = reqwest::Client::new();
    let order = serde_json::json!({"item": "pen", "quantity": 1});

    let response = http
        .post(format!("{base}/api/orders"))
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.text().await.unwrap(), "who are you?");

    let response = http
        .post(format!("{base}/api/orders"))
        .header("x-user-token", "t0k")
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let body = json(response).await;
    let id = body["id"].as_str().unwrap();
    assert_eq!(
        location,
        format!("{base}/runtime/webhooks/durabletask/instances/{id}")
    );
    assert_eq!(body["statusQueryGetUri"], location.as_str());

    let response = http.get(&location).send().await.unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let response = http
        .get(&location)
        .header("x-functions-key", "t0k")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    worker.shutdown().await;
}

#[test]
fn the_builder_makes_a_202_with_location_and_uris() {
    let response = durable_http::check_status_response("http://example.test:8080/", "i-1");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap();
    assert_eq!(
        location,
        "http://example.test:8080/runtime/webhooks/durabletask/instances/i-1"
    );
    assert_eq!(response.headers()["retry-after"], "1");

    // Without a base URL the URIs are relative.
    let check = durable_http::CheckStatus::new("", "i-1");
    assert_eq!(
        check.status_query_get_uri,
        "/runtime/webhooks/durabletask/instances/i-1"
    );
    let text = serde_json::to_value(&check).unwrap();
    assert_eq!(text["purgeHistoryDeleteUri"], check.status_query_get_uri);
}
