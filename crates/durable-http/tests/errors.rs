//! Every error is JSON `{code, message}` with the right status; no bad input gets a 5xx.

use durable_http::ApiOptions;
use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{HUB, Server, assert_error};

#[tokio::test]
async fn malformed_json_is_400() {
    let server = Server::start().await;
    for body in ["{", "start", r#""unterminated"#, "[1,]"] {
        for path in [
            format!("{HUB}/orchestrators/Chaining"),
            "/orchestrators/Chaining".into(),
        ] {
            let response = server.post_body(&path, "application/json", body).await;
            assert_error(response, StatusCode::BAD_REQUEST, "malformed_json").await;
        }
    }
    let deep = "[".repeat(100) + &"]".repeat(100);
    let response = server
        .post_body(
            &format!("{HUB}/orchestrators/Chaining"),
            "application/json",
            &deep,
        )
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_input").await;
}

#[tokio::test]
async fn unknown_orchestration_is_404_listing_the_registered_names() {
    let server = Server::start().await;
    let response = server.post(&format!("{HUB}/orchestrators/Nope")).await;
    let message = assert_error(response, StatusCode::NOT_FOUND, "unknown_orchestration").await;
    assert!(message.contains("Nope"), "{message}");
    assert!(
        message.contains("Approval, Chaining, Counter, DoWork, FanOutFanIn"),
        "{message}"
    );
    let response = server.post("/orchestrators/chaining").await;
    assert_error(response, StatusCode::NOT_FOUND, "unknown_orchestration").await;
}

#[tokio::test]
async fn content_types_that_cannot_carry_json_are_415() {
    let server = Server::start().await;
    for content_type in [
        "application/xml",
        "multipart/form-data; boundary=x",
        "image/png",
    ] {
        let response = server
            .post_body(
                &format!("{HUB}/orchestrators/Chaining"),
                content_type,
                "<a/>",
            )
            .await;
        assert_error(
            response,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
    }
    let id = server.start_instance("Counter", None).await;
    let path = format!("{HUB}/instances/{id}/raiseEvent/operation");
    let response = server.post_body(&path, "application/xml", "<incr/>").await;
    assert_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let server = Server::with(ApiOptions {
        max_body_bytes: 1024,
        ..Default::default()
    })
    .await;
    let big = format!("\"{}\"", "x".repeat(2000));
    let response = server
        .post_body(
            &format!("{HUB}/orchestrators/Chaining"),
            "application/json",
            &big,
        )
        .await;
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    // Just under the limit passes.
    let fits = format!("\"{}\"", "x".repeat(1000));
    let response = server
        .post_body(
            &format!("{HUB}/orchestrators/Chaining"),
            "application/json",
            &fits,
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

/// A chunked body declares no length: the limit is enforced while it streams in.
#[tokio::test]
async fn streamed_bodies_over_the_limit_are_413() {
    let server = Server::with(ApiOptions {
        max_body_bytes: 1024,
        ..Default::default()
    })
    .await;
    let addr = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {HUB}/orchestrators/Chaining HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = "x".repeat(512);
    // The server may answer (and stop reading) before every chunk is written.
    for _ in 0..8 {
        if stream
            .write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes())
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(r#""code":"payload_too_large""#), "{answer}");
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_in_json() {
    let server = Server::start().await;
    for path in [
        "/nothing",
        &format!("{HUB}/nothing"),
        &format!("{HUB}/instances/a/b/c"),
    ] {
        let message =
            assert_error(server.get(path).await, StatusCode::NOT_FOUND, "not_found").await;
        assert!(message.contains(path), "{message}");
    }
    for (method, path) in [
        (Method::GET, format!("{HUB}/orchestrators/Chaining")),
        (Method::PUT, format!("{HUB}/instances/x")),
        (Method::GET, format!("{HUB}/instances/x/terminate")),
        (Method::DELETE, "/orchestrators/Chaining".into()),
        (Method::POST, "/healthz".into()),
    ] {
        let response = server
            .http
            .request(method.clone(), server.url(&path))
            .send()
            .await
            .unwrap();
        assert!(response.headers().contains_key("allow"), "{method} {path}");
        assert_error(
            response,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        )
        .await;
    }
}

/// A sweep of hostile inputs: each gets a 4xx JSON answer, never a 5xx.
#[tokio::test]
async fn no_bad_input_gets_a_5xx() {
    let server = Server::start().await;
    let id = server.start_instance("Approval", None).await;
    let cases: Vec<(Method, String, &str, &str)> = vec![
        (
            Method::POST,
            format!("{HUB}/orchestrators/Chaining"),
            "application/json",
            "\u{0}",
        ),
        (
            Method::POST,
            format!("{HUB}/orchestrators/Chaining/%FF%FE"),
            "application/json",
            "",
        ),
        (
            Method::POST,
            format!("{HUB}/orchestrators/Chaining/a%00b"),
            "application/json",
            "",
        ),
        (
            Method::POST,
            format!("{HUB}/orchestrators/{}", "N".repeat(300)),
            "application/json",
            "",
        ),
        (
            Method::POST,
            format!("{HUB}/instances/{id}/raiseEvent/{}", "e".repeat(300)),
            "text/plain",
            "1",
        ),
        (Method::GET, format!("{HUB}/instances/%FF"), "", ""),
        (
            Method::GET,
            format!("{HUB}/instances?top=99999999999999999999999"),
            "",
            "",
        ),
        (
            Method::GET,
            format!("{HUB}/instances?createdTimeFrom=%FF"),
            "",
            "",
        ),
        (
            Method::DELETE,
            format!("{HUB}/instances?runtimeStatus=,,,"),
            "",
            "",
        ),
        (
            Method::POST,
            format!("{HUB}/instances/{id}/restart?restartWithNewInstanceId=2"),
            "",
            "",
        ),
    ];
    for (method, path, content_type, body) in cases {
        let mut request = server.http.request(method.clone(), server.url(&path));
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        let response = request.body(body.to_string()).send().await.unwrap();
        let status = response.status();
        assert!(status.is_client_error(), "{method} {path}: {status}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(
            body["code"].is_string() && body["message"].is_string(),
            "{body}"
        );
    }
}
