//! The Python example (examples/python) runs against the sidecar as its README says.

use std::process::Stdio;

use durable_grpc::SidecarOptions;

use crate::support::{TestServer, python};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/python");

async fn start(server: &TestServer, args: &[&str]) -> String {
    let out = tokio::process::Command::new(python())
        .arg("start.py")
        .args(args)
        .current_dir(EXAMPLE)
        .env("DURABLETASK_HOST", server.target())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "start.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_example_patterns() {
    let server = TestServer::start(SidecarOptions::default()).await;
    let mut worker = tokio::process::Command::new(python())
        .arg("worker.py")
        .current_dir(EXAMPLE)
        .env("DURABLETASK_HOST", server.target())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    assert_eq!(start(&server, &["chaining"]).await, "start,F1,F2,F3,F4");
    assert_eq!(start(&server, &["approval", "--approve"]).await, "approved");
    assert_eq!(start(&server, &["approval", "--reject"]).await, "rejected");
    assert_eq!(
        start(&server, &["approval", "--timeout", "1"]).await,
        "escalated"
    );
    worker.kill().await.unwrap();
    server.stop().await;
}
