//! `/openapi.json` and `/healthz`.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Server, json};

#[tokio::test]
async fn openapi_lists_every_route_and_method() {
    let server = Server::start().await;
    let response = server.get("/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let doc = json(response).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let hub = "/runtime/webhooks/durabletask";
    let expected = [
        (format!("{hub}/orchestrators/{{name}}"), "post"),
        (
            format!("{hub}/orchestrators/{{name}}/{{instanceId}}"),
            "post",
        ),
        (format!("{hub}/instances"), "get"),
        (format!("{hub}/instances"), "delete"),
        (format!("{hub}/instances/{{instanceId}}"), "get"),
        (format!("{hub}/instances/{{instanceId}}"), "delete"),
        (
            format!("{hub}/instances/{{instanceId}}/raiseEvent/{{eventName}}"),
            "post",
        ),
        (format!("{hub}/instances/{{instanceId}}/timeline"), "get"),
        (format!("{hub}/instances/{{instanceId}}/terminate"), "post"),
        (format!("{hub}/instances/{{instanceId}}/suspend"), "post"),
        (format!("{hub}/instances/{{instanceId}}/resume"), "post"),
        (format!("{hub}/instances/{{instanceId}}/rewind"), "post"),
        (format!("{hub}/instances/{{instanceId}}/restart"), "post"),
        (format!("{hub}/stats"), "get"),
        (format!("{hub}/entities"), "get"),
        (format!("{hub}/entities/{{name}}"), "get"),
        (format!("{hub}/entities/{{name}}/{{key}}"), "get"),
        (format!("{hub}/entities/{{name}}/{{key}}"), "post"),
        ("/orchestrators/{name}".to_string(), "post"),
        (
            "/admin/extensions/DurableTaskExtension/{instanceId}".to_string(),
            "get",
        ),
        ("/healthz".to_string(), "get"),
    ];
    for (path, method) in &expected {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    let status = &doc["paths"][format!("{hub}/instances/{{instanceId}}")]["get"];
    assert!(status["responses"]["202"].is_object());
    assert!(status["responses"]["404"].is_object());
    let params: Vec<&str> = status["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in [
        "instanceId",
        "showInput",
        "showHistory",
        "showHistoryOutput",
    ] {
        assert!(params.contains(&name), "{name} in {params:?}");
    }
    for schema in ["CheckStatus", "InstanceStatus", "ErrorBody", "PurgeResult"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
}

#[tokio::test]
async fn healthz_answers_ok() {
    let server = Server::start().await;
    let response = server.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json(response).await, json!({"status": "ok"}));
}
