//! The interop suite: the real durabletask 1.12.0 SDK (worker and client, in Python) against
//! an in-process sidecar with a native Rust worker on the same SQLite task hub.

use std::process::Stdio;

use durable_grpc::SidecarOptions;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{TestServer, python};

const API_KEY: &str = "interop-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_scenarios_pass() {
    let server = TestServer::start(SidecarOptions {
        api_key: Some(API_KEY.into()),
        ..Default::default()
    })
    .await;
    let runner = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/run_scenarios.py"
    );
    let mut child = tokio::process::Command::new(python())
        .arg(runner)
        .env("DURABLETASK_HOST", server.target())
        .env("DURABLE_API_KEY", API_KEY)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the scenario runner");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last = String::new();
    let mut failures = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        println!("{line}");
        if line.starts_with("FAIL") {
            failures.push(line.clone());
        }
        last = line;
    }
    let status = child.wait().await.unwrap();
    assert!(
        failures.is_empty(),
        "failed scenarios:\n{}",
        failures.join("\n")
    );
    assert!(status.success(), "the runner exited with {status}");
    assert!(
        last.ends_with(" passed, 0 failed"),
        "unexpected final line: {last}"
    );
    server.stop().await;
}

/// A short smoke test with the JavaScript SDK (`@microsoft/durabletask-js`, pinned in
/// tests/interop/js/package.json, installed by scripts/setup-node).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_sdk_chaining() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/js");
    assert!(
        std::path::Path::new(dir)
            .join("node_modules/@microsoft/durabletask-js")
            .exists(),
        "the JavaScript SDK is not installed: run scripts/setup-node"
    );
    let server = TestServer::start(SidecarOptions {
        api_key: Some(API_KEY.into()),
        ..Default::default()
    })
    .await;
    let out = tokio::process::Command::new("node")
        .arg("smoke.js")
        .current_dir(dir)
        .env("DURABLETASK_HOST", server.target())
        .env("DURABLE_API_KEY", API_KEY)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the JavaScript smoke test failed");
    assert!(stdout.trim_end().ends_with("1 passed, 0 failed"));
    server.stop().await;
}
