//! The hostile-input table: malformed, oversized and wrong-type requests for every route of the
//! OpenAPI document, each with its documented status and error code. No row may get a 5xx or
//! break the connection, and the server must still serve after each. Adding a route means adding
//! rows: `every_route_has_rows` fails for a route of `/openapi.json` without one.

use std::collections::BTreeSet;

use durable::core::limits::{DEFAULT_MAX_PAYLOAD_BYTES, MAX_INSTANCE_ID_BYTES, MAX_NAME_BYTES};
use durable_http::ApiOptions;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::{HUB, Server};

const KEY: &str = "hostile-key";

/// One request and the answer it must get. `{live}` and `{done}` in the path stand for a running
/// and a completed instance.
struct Row {
    method: &'static str,
    route: String,
    what: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    status: u16,
    /// The `code` of the JSON error body; `None` for a success (or a non-JSON answer).
    code: Option<&'static str>,
}

/// A row for `method route` (OpenAPI form); the path defaults to the route with a running
/// instance, the `Chaining` orchestration and the event `Go`.
fn row(method: &'static str, route: &str, what: &'static str) -> Row {
    let route = route.replace("{hub}", HUB);
    let path = route
        .replace("{name}", "Chaining")
        .replace("{instanceId}", "{live}")
        .replace("{eventName}", "Go");
    Row {
        method,
        route,
        what,
        path,
        headers: vec![("x-functions-key", KEY.to_string())],
        body: None,
        status: 0,
        code: None,
    }
}

impl Row {
    fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into().replace("{hub}", HUB);
        self
    }
    /// Appends a query string to the path.
    fn query(mut self, query: &str) -> Self {
        self.path = format!("{}?{query}", self.path);
        self
    }
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }
    fn json(self, body: impl Into<Vec<u8>>) -> Self {
        self.header("content-type", "application/json").body(body)
    }
    fn without_key(mut self) -> Self {
        self.headers.retain(|(name, _)| *name != "x-functions-key");
        self
    }
    fn expect(mut self, status: u16, code: &'static str) -> Self {
        self.status = status;
        self.code = Some(code);
        self
    }
    fn ok(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
}

fn long(n: usize) -> String {
    "x".repeat(n)
}

/// A JSON string one byte over the payload limit.
fn oversized() -> String {
    format!("\"{}\"", long(DEFAULT_MAX_PAYLOAD_BYTES))
}

fn deep() -> String {
    "[".repeat(100) + &"]".repeat(100)
}

/// The rows every route that reads a JSON body gets.
fn body_rows(route: &str, rows: &mut Vec<Row>) {
    rows.extend(body_rows_for("post", route));
}

fn body_rows_for(method: &'static str, route: &str) -> [Row; 6] {
    [
        row(method, route, "malformed JSON")
            .json("{")
            .expect(400, "malformed_json"),
        row(method, route, "not JSON at all")
            .json("start")
            .expect(400, "malformed_json"),
        row(method, route, "not UTF-8")
            .json(vec![b'"', 0xff, 0xfe, b'"'])
            .expect(400, "malformed_json"),
        row(method, route, "JSON nested past MAX_JSON_DEPTH")
            .json(deep())
            .expect(400, "invalid_input"),
        row(method, route, "body over the payload limit")
            .json(oversized())
            .expect(413, "payload_too_large"),
        row(method, route, "a content type that cannot carry JSON")
            .header("content-type", "application/xml")
            .body("<a/>")
            .expect(415, "unsupported_media_type"),
    ]
}

/// The rows every `{instanceId}` route gets.
fn id_rows(method: &'static str, route: &str, rows: &mut Vec<Row>) {
    let over = long(MAX_INSTANCE_ID_BYTES + 1);
    let template = route.replace("{hub}", HUB);
    let with_id = |id: &str| template.replace("{instanceId}", id);
    rows.extend([
        row(method, route, "unknown instance")
            .path(with_id("nobody"))
            .expect(404, "instance_not_found"),
        row(method, route, "instance id over MAX_INSTANCE_ID_BYTES")
            .path(with_id(&over))
            .expect(400, "invalid_instance_id"),
        row(method, route, "instance id that is not UTF-8 once decoded")
            .path(with_id("%FF%FE"))
            .expect(400, "invalid_input"),
    ]);
}

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    let over_name = long(MAX_NAME_BYTES + 1);

    // Starts (and the seed's short form).
    for route in [
        "{hub}/orchestrators/{name}",
        "{hub}/orchestrators/{name}/{instanceId}",
        "/orchestrators/{name}",
        "/orchestrators/{name}/{instanceId}",
    ] {
        body_rows(route, &mut rows);
        let template = route.replace("{hub}", HUB);
        rows.extend([
            row("post", route, "unknown orchestration")
                .path(
                    template
                        .replace("{name}", "Nope")
                        .replace("{instanceId}", "n1"),
                )
                .expect(404, "unknown_orchestration"),
            row("post", route, "orchestration name over MAX_NAME_BYTES")
                .path(
                    template
                        .replace("{name}", &over_name)
                        .replace("{instanceId}", "n2"),
                )
                .expect(400, "invalid_input"),
        ]);
    }
    let with_id = "{hub}/orchestrators/{name}/{instanceId}";
    rows.extend([
        row("post", with_id, "the id of a running instance").expect(409, "already_exists"),
        row("post", with_id, "instance id over MAX_INSTANCE_ID_BYTES")
            .path(format!(
                "{HUB}/orchestrators/Chaining/{}",
                long(MAX_INSTANCE_ID_BYTES + 1)
            ))
            .expect(400, "invalid_instance_id"),
        row("post", with_id, "instance id with a control character")
            .path(format!("{HUB}/orchestrators/Chaining/a%00b"))
            .expect(400, "invalid_instance_id"),
        row(
            "post",
            with_id,
            "instance id that is not UTF-8 once decoded",
        )
        .path(format!("{HUB}/orchestrators/Chaining/%FF%FE"))
        .expect(400, "invalid_input"),
    ]);

    // Status, by both routes.
    for route in [
        "{hub}/instances/{instanceId}",
        "/admin/extensions/DurableTaskExtension/{instanceId}",
    ] {
        id_rows("get", route, &mut rows);
        rows.extend([
            row("get", route, "a boolean that is not one")
                .query("showInput=maybe")
                .expect(400, "invalid_input"),
            row("get", route, "a number for a boolean")
                .query("showHistory=2")
                .expect(400, "invalid_input"),
            row("get", route, "unknown parameters are ignored")
                .query("taskHub=x&connection=y")
                .ok(202),
        ]);
    }

    // Listing.
    let list = "{hub}/instances";
    rows.extend([
        row("get", list, "top of 0")
            .query("top=0")
            .expect(400, "invalid_input"),
        row("get", list, "top over 1000")
            .query("top=1001")
            .expect(400, "invalid_input"),
        row("get", list, "top that is not a number")
            .query("top=ten")
            .expect(400, "invalid_input"),
        row("get", list, "top past u64")
            .query("top=99999999999999999999999")
            .expect(400, "invalid_input"),
        row("get", list, "unknown status")
            .query("runtimeStatus=Sleeping")
            .expect(400, "invalid_input"),
        row("get", list, "time that is not RFC 3339")
            .query("createdTimeFrom=yesterday")
            .expect(400, "invalid_input"),
        row("get", list, "percent-encoding of invalid UTF-8")
            .query("createdTimeTo=%FF")
            .expect(400, "invalid_input"),
        row("get", list, "garbage continuation token")
            .header("x-ms-continuation-token", "garbage")
            .expect(400, "invalid_input"),
        row("get", list, "continuation token that is not text")
            .header("x-ms-continuation-token", "caf\u{e9}")
            .expect(400, "invalid_input"),
        row("get", list, "empty status list is no filter")
            .query("runtimeStatus=,,,")
            .ok(200),
    ]);

    // Purge many.
    rows.extend([
        row("delete", list, "no filter").expect(400, "invalid_input"),
        row("delete", list, "live status")
            .query("runtimeStatus=Running")
            .expect(400, "invalid_input"),
        row("delete", list, "a listing-only filter")
            .query("runtimeStatus=Completed&top=5")
            .expect(400, "invalid_input"),
        row("delete", list, "instanceIdPrefix is refused, not ignored")
            .query("instanceIdPrefix=a&runtimeStatus=Completed")
            .expect(400, "invalid_input"),
        row("delete", list, "time that is not RFC 3339")
            .query("createdTimeTo=soon")
            .expect(400, "invalid_input"),
        row("delete", list, "only separators")
            .query("runtimeStatus=,,,")
            .expect(400, "invalid_input"),
    ]);

    // Purge one, timeline.
    let one = "{hub}/instances/{instanceId}";
    id_rows("delete", one, &mut rows);
    rows.push(row("delete", one, "a live instance").expect(409, "invalid_state"));
    id_rows("get", "{hub}/instances/{instanceId}/timeline", &mut rows);

    // Raise an event.
    let raise = "{hub}/instances/{instanceId}/raiseEvent/{eventName}";
    body_rows(raise, &mut rows);
    id_rows("post", raise, &mut rows);
    rows.extend([
        row("post", raise, "a finished instance")
            .path(format!("{HUB}/instances/{{done}}/raiseEvent/Go"))
            .expect(410, "instance_finished"),
        row("post", raise, "event name over MAX_NAME_BYTES")
            .path(format!("{HUB}/instances/{{live}}/raiseEvent/{over_name}"))
            .expect(400, "invalid_input"),
    ]);

    // Actions.
    for action in ["terminate", "suspend", "resume"] {
        let route = format!("{{hub}}/instances/{{instanceId}}/{action}");
        id_rows("post", &route, &mut rows);
        rows.extend([
            row("post", &route, "a finished instance")
                .path(format!("{HUB}/instances/{{done}}/{action}"))
                .expect(410, "instance_finished"),
            row("post", &route, "a reason given twice")
                .query("reason=a&reason=b")
                .expect(400, "invalid_input"),
        ]);
    }
    let rewind = "{hub}/instances/{instanceId}/rewind";
    id_rows("post", rewind, &mut rows);
    rows.extend([
        row("post", rewind, "a running instance").expect(409, "invalid_state"),
        row("post", rewind, "a completed instance")
            .path(format!("{HUB}/instances/{{done}}/rewind"))
            .expect(410, "instance_finished"),
    ]);
    let restart = "{hub}/instances/{instanceId}/restart";
    id_rows("post", restart, &mut rows);
    rows.extend([
        row("post", restart, "a running instance").expect(409, "invalid_state"),
        row("post", restart, "a boolean that is not one")
            .path(format!("{HUB}/instances/{{done}}/restart"))
            .query("restartWithNewInstanceId=2")
            .expect(400, "invalid_input"),
    ]);

    // Entities (the samples register `counter`).
    let entities = "{hub}/entities";
    let by_name = "{hub}/entities/{name}";
    let one = "{hub}/entities/{name}/{key}";
    let counter = |rest: &str| format!("{HUB}/entities/counter{rest}");
    let over_key = long(MAX_INSTANCE_ID_BYTES + 1);
    rows.extend([
        row("get", entities, "a negative page size")
            .path(format!("{HUB}/entities"))
            .query("top=-1")
            .expect(400, "invalid_input"),
        row("get", entities, "a time that is not one")
            .path(format!("{HUB}/entities"))
            .query("lastOperationTimeFrom=yesterday")
            .expect(400, "invalid_input"),
        row("get", by_name, "a negative page size")
            .path(counter(""))
            .query("top=-1")
            .expect(400, "invalid_input"),
        row("get", by_name, "a name with '@'")
            .path(format!("{HUB}/entities/a%40b"))
            .expect(400, "invalid_entity_id"),
        row("get", by_name, "a name over MAX_NAME_BYTES")
            .path(format!("{HUB}/entities/{over_name}"))
            .expect(400, "invalid_entity_id"),
        row("get", one, "an entity nobody addressed")
            .path(counter("/nobody"))
            .expect(404, "entity_not_found"),
        row("get", one, "a key over the id limit")
            .path(counter(&format!("/{over_key}")))
            .expect(400, "invalid_entity_id"),
        row("post", one, "no operation")
            .path(counter("/k"))
            .json("1")
            .expect(400, "invalid_input"),
        row("post", one, "an empty operation")
            .path(counter("/k"))
            .query("op=")
            .json("1")
            .expect(400, "invalid_input"),
        row("post", one, "an entity nobody registered")
            .path(format!("{HUB}/entities/nope/k"))
            .query("op=add")
            .json("1")
            .expect(404, "unknown_entity"),
        row("post", one, "a key with a control character")
            .path(counter("/a%00b"))
            .query("op=add")
            .json("1")
            .expect(400, "invalid_entity_id"),
    ]);
    for mut r in body_rows_for("post", one) {
        r.path = format!("{}?op=add", counter("/k"));
        rows.push(r);
    }

    // Routes without input: junk is ignored, never a failure.
    for route in [
        "{hub}/stats",
        "{hub}/scale",
        "/metrics",
        "/healthz",
        "/openapi.json",
    ] {
        rows.push(
            row("get", route, "junk query and body are ignored")
                .query("top=-1&%FF=%FF")
                .body("{")
                .ok(200),
        );
    }
    rows
}

/// Rows any route gets: no API key (except the open routes).
fn unauthorized_rows(doc: &Value) -> Vec<Row> {
    operations(doc)
        .into_iter()
        .filter(|(_, path)| path != "/healthz" && path != "/openapi.json")
        .map(|(method, path)| {
            let method: &'static str = Box::leak(method.into_boxed_str());
            row(method, &path, "no API key")
                .without_key()
                .expect(401, "unauthorized")
        })
        .collect()
}

/// `(method, path)` of every operation in the OpenAPI document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("a path item")
                .keys()
                .filter(|m| ["get", "post", "put", "delete", "patch"].contains(&m.as_str()))
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect()
}

/// The API with the monitoring routes, as `durable serve` mounts them, behind a key.
async fn full_server() -> Server {
    Server::with_monitoring(ApiOptions {
        api_key: Some(KEY.into()),
        ..Default::default()
    })
    .await
}

/// A declared length over the limit is refused from the headers: the server answers before the
/// body is sent (this client never sends it).
#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_reading() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = full_server().await;
    let addr = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {HUB}/orchestrators/Chaining HTTP/1.1\r\nHost: {addr}\r\nx-functions-key: {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        DEFAULT_MAX_PAYLOAD_BYTES * 1000
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(r#""code":"payload_too_large""#), "{answer}");
}

async fn run(server: &Server, row: &Row, live: &str, done: &str) -> Result<(), String> {
    let path = row.path.replace("{live}", live).replace("{done}", done);
    let method = Method::from_bytes(row.method.to_uppercase().as_bytes()).unwrap();
    let mut request = server.http.request(method, server.url(&path));
    for (name, value) in &row.headers {
        request = request.header(*name, value.as_bytes());
    }
    if let Some(body) = &row.body {
        request = request.body(body.clone());
    }
    let label = format!("{} {} ({})", row.method, row.route, row.what);
    // A second try on a send error: the server closes a connection after refusing a body it did
    // not read (413), and a pooled client can pick that connection up in the same instant. A
    // request that makes the server fail fails the second try too.
    let again = request.try_clone().expect("row bodies are bytes");
    let response = match request.send().await {
        Ok(response) => response,
        Err(_) => match again.send().await {
            Ok(response) => response,
            Err(e) => return Err(format!("{label}: no answer (a panic?): {e}")),
        },
    };
    let status = response.status();
    if status.is_server_error() {
        return Err(format!("{label}: a server error {status}"));
    }
    let text = response.text().await.unwrap_or_default();
    if status.as_u16() != row.status {
        return Err(format!(
            "{label}: {status}, expected {}: {text}",
            row.status
        ));
    }
    if let Some(code) = row.code {
        let body: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{label}: the error body is not JSON ({e}): {text}"))?;
        if body["code"] != code || !body["message"].is_string() {
            return Err(format!("{label}: expected code {code}, got {body}"));
        }
    }
    Ok(())
}

async fn healthy(server: &Server) -> bool {
    // Two tries, for the same reason as in `run`.
    for _ in 0..2 {
        if let Ok(response) = server.http.get(server.url("/healthz")).send().await {
            return response.status() == StatusCode::OK;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_gets_its_documented_answer() {
    let server = full_server().await;
    let doc: Value = server.get("/openapi.json").await.json().await.unwrap();
    let keyed = |r: reqwest::RequestBuilder| r.header("x-functions-key", KEY);
    // Approval waits for an event (no input: the default timeout of days); Chaining completes.
    let start = |name: &str, input: &'static str| {
        let url = server.url(&format!("{HUB}/orchestrators/{name}"));
        keyed(server.http.post(url)).body(input).send()
    };
    let live: Value = start("Approval", "").await.unwrap().json().await.unwrap();
    let live = live["id"].as_str().unwrap().to_string();
    let done: Value = start("Chaining", "\"a\"")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let done = done["id"].as_str().unwrap().to_string();
    let finished = server.wait_done(&done).await;
    assert_eq!(finished.status, durable::RuntimeStatus::Completed);

    let mut table = rows();
    table.extend(unauthorized_rows(&doc));
    let mut failures = Vec::new();
    for row in &table {
        if let Err(e) = run(&server, row, &live, &done).await {
            failures.push(e);
        }
        assert!(
            healthy(&server).await,
            "the server stopped serving after {}",
            row.what
        );
    }
    println!(
        "hostile HTTP table: {} rows, {} failed",
        table.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Nothing above hurt the instances or the engine.
    let state = server.client.status(&live).await.unwrap().unwrap();
    assert_eq!(state.status, durable::RuntimeStatus::Running);
    let again: Value = start("Chaining", "\"b\"")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let finished = server.wait_done(again["id"].as_str().unwrap()).await;
    assert_eq!(finished.status, durable::RuntimeStatus::Completed);
}

#[tokio::test]
async fn every_route_has_rows() {
    let server = full_server().await;
    let doc: Value = server.get("/openapi.json").await.json().await.unwrap();
    let covered: BTreeSet<(String, String)> = rows()
        .iter()
        .map(|r| (r.method.to_string(), r.route.clone()))
        .collect();
    let missing: Vec<_> = operations(&doc).difference(&covered).cloned().collect();
    assert!(
        missing.is_empty(),
        "routes without rows in the hostile table: {missing:?}"
    );
    let unknown: Vec<_> = covered.difference(&operations(&doc)).cloned().collect();
    assert!(
        unknown.is_empty(),
        "rows for routes the OpenAPI document lacks: {unknown:?}"
    );
}
