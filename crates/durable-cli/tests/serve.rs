//! `durable serve` itself: the seed's curl flow, access control, the gRPC sidecar.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Served, durable, free_port, python, stderr, stdout, wait_done};

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::new()
}

/// The README's flow: `curl -X POST localhost:7071/orchestrators/Chaining -d '"start"'`, then
/// polling the `Location` until it answers 200.
#[test]
fn the_seed_curl_flow() {
    let served = Served::start(&[]);
    let response = client()
        .post(format!("{}/orchestrators/Chaining", served.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("\"start\"")
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap();
    let body = wait_done(location, None);
    assert_eq!(body["runtimeStatus"], "Completed");
    assert_eq!(body["output"], "start,F1,F2,F3,F4");
}

#[test]
fn public_addresses_need_an_api_key() {
    let out = durable()
        .args([
            "serve",
            "--http",
            &format!("0.0.0.0:{}", free_port()),
            "--grpc",
            "off",
            "--store",
            "sqlite::memory:",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--api-key"), "{}", stderr(&out));
}

#[test]
fn the_api_key_guards_http_and_the_cli_sends_it() {
    let served = Served::start(&["--api-key", "s3cret"]);
    let r = client()
        .post(format!("{}/orchestrators/Chaining", served.url()))
        .body("\"x\"")
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    let out = served.run(&["start", "Chaining", "--input", "\"x\""]);
    assert_eq!(out.status.code(), Some(1));
    let out = durable()
        .args([
            "start",
            "Chaining",
            "--input",
            "\"x\"",
            "--wait",
            "--api-key",
            "s3cret",
            "--url",
            &served.url(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_restart_keeps_finished_and_pending_work() {
    let mut served = Served::start(&[]);
    let out = served.run(&[
        "start", "Chaining", "--input", "\"a\"", "--id", "kept", "--wait",
    ]);
    assert!(out.status.success());
    let out = served.run(&[
        "start",
        "Approval",
        "--id",
        "waiting",
        "--input",
        "{\"timeoutSeconds\": 600}",
    ]);
    assert!(out.status.success());
    std::thread::sleep(Duration::from_millis(500));
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    // Same file, new process.
    let store = format!("sqlite://{}", served.db().display());
    let http = format!("127.0.0.1:{}", free_port());
    let mut again = durable()
        .args([
            "serve",
            "--samples",
            "--grpc",
            "off",
            "--http",
            &http,
            "--store",
            &store,
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://{http}");
    let started = Instant::now();
    while std::net::TcpStream::connect(&http).is_err() {
        assert!(started.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = |args: &[&str]| {
        durable()
            .args(args)
            .env("DURABLE_URL", &url)
            .output()
            .unwrap()
    };
    let s: Value = serde_json::from_str(&stdout(&run(&["--json", "status", "kept"]))).unwrap();
    assert_eq!(s["output"], "a,F1,F2,F3,F4");
    assert!(
        run(&["raise", "waiting", "ApprovalEvent", "true"])
            .status
            .success()
    );
    let out = run(&[
        "start", "Chaining", "--id", "after", "--input", "\"b\"", "--wait",
    ]);
    assert!(out.status.success());
    let mut done = false;
    for _ in 0..200 {
        let s: Value =
            serde_json::from_str(&stdout(&run(&["--json", "status", "waiting"]))).unwrap();
        if s["runtimeStatus"] == "Completed" {
            assert_eq!(s["output"], "approved");
            done = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = again.kill();
    let _ = again.wait();
    assert!(done, "the approval survived the restart");
}

/// The Python SDK's scenarios against the real `durable serve` (the in-process run is in
/// durable-grpc). Two scenarios need Rust orchestrations only that harness registers.
#[test]
fn python_sdk_scenarios_against_durable_serve() {
    let served = Served::start(&["--api-key", "interop"]);
    let runner = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../durable-grpc/tests/interop/run_scenarios.py"
    );
    let out = std::process::Command::new(python())
        .arg(runner)
        .env("DURABLETASK_HOST", &served.grpc)
        .env("DURABLE_API_KEY", "interop")
        .env(
            "INTEROP_SKIP",
            "rust_calls_python_activity,rust_calls_python_entity",
        )
        .output()
        .unwrap();
    let text = stdout(&out);
    println!("{text}");
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    let last = text.lines().last().unwrap_or_default();
    assert!(last.ends_with("passed, 0 failed, 2 skipped"), "{last}");
    let skipped: Vec<&str> = text.lines().filter(|l| l.starts_with("SKIP")).collect();
    assert_eq!(
        skipped,
        [
            "SKIP rust_calls_python_activity",
            "SKIP rust_calls_python_entity"
        ]
    );
}
