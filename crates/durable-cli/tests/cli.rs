//! The client subcommands against a running server.

use serde_json::Value;

use crate::support::{Served, stderr, stdout};

#[test]
fn start_wait_status_history_and_list() {
    let served = Served::start(&[]);
    let out = served.run(&[
        "start",
        "Chaining",
        "--input",
        "\"start\"",
        "--id",
        "c1",
        "--wait",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Completed"), "{text}");
    assert!(text.contains("\"start,F1,F2,F3,F4\""), "{text}");

    let out = served.run(&["--json", "status", "c1"]);
    let status: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(status["runtimeStatus"], "Completed");
    assert_eq!(status["output"], "start,F1,F2,F3,F4");

    let out = served.run(&["history", "c1"]);
    let table = stdout(&out);
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("EVENT") && header.contains("DURATION") && header.contains("RESULT"),
        "{table}"
    );
    assert_eq!(
        table
            .lines()
            .filter(|l| l.starts_with("TaskCompleted"))
            .count(),
        4,
        "{table}"
    );
    assert!(table.contains("\"start,F1,F2,F3,F4\""), "{table}");

    // A bare word is taken as a JSON string; the id is printed on stdout for scripts.
    let out = served.run(&["start", "Chaining", "--input", "go"]);
    assert!(out.status.success());
    let id = stdout(&out).trim().to_string();
    assert_eq!(id.len(), 32, "{id}");

    let out = served.run(&["list", "--status", "Completed,Running,Pending", "--all"]);
    let listing = stdout(&out);
    assert!(
        listing.lines().next().unwrap().starts_with("INSTANCE"),
        "{listing}"
    );
    assert!(listing.contains("c1") && listing.contains(&id), "{listing}");
    let out = served.run(&["--json", "list", "--prefix", "c1"]);
    let items: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(items.as_array().unwrap().len(), 1);

    // By name: both Chaining runs, and nothing under a name no instance has.
    assert!(
        served
            .run(&["start", "DoWork", "--input", "0"])
            .status
            .success()
    );
    let named = |name: &str| {
        let out = served.run(&["--json", "list", "--name", name, "--all"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let items: Value = serde_json::from_str(&stdout(&out)).unwrap();
        items
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(named("Chaining"), ["Chaining", "Chaining"]);
    assert_eq!(named("DoWork"), ["DoWork"]);
    assert!(named("NoSuchName").is_empty());
}

#[test]
fn events_and_lifecycle_commands() {
    let served = Served::start(&[]);
    assert!(
        served
            .run(&["start", "Counter", "--input", "5", "--id", "n1"])
            .status
            .success()
    );
    for op in ["incr", "incr", "decr", "end"] {
        let out = served.run(&["raise", "n1", "operation", op]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = served.run(&[
        "start",
        "Chaining",
        "--id",
        "n2",
        "--input",
        "\"x\"",
        "--wait",
        "--timeout",
        "30",
    ]);
    assert!(out.status.success());
    let out = served.run(&["--json", "status", "n1"]);
    let status: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(status["output"], 6, "{status}");

    assert!(
        served
            .run(&["start", "Approval", "--id", "a1"])
            .status
            .success()
    );
    let wait_running = || {
        for _ in 0..200 {
            let out = served.run(&["--json", "status", "a1"]);
            let s: Value = serde_json::from_str(&stdout(&out)).unwrap();
            if s["runtimeStatus"] == "Running" {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("a1 never ran");
    };
    wait_running();
    assert!(
        served
            .run(&["suspend", "a1", "--reason", "lunch"])
            .status
            .success()
    );
    assert!(served.run(&["resume", "a1"]).status.success());
    let out = served.run(&["terminate", "a1", "--reason", "no longer needed"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = served.run(&[
        "start",
        "Chaining",
        "--id",
        "a1-waiter",
        "--input",
        "\"y\"",
        "--wait",
    ]);
    assert!(out.status.success());
    let out = served.run(&["--json", "status", "a1"]);
    let s: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(s["runtimeStatus"], "Terminated");

    // Finished: terminate again is refused with a clear error and a non-zero exit code.
    let out = served.run(&["terminate", "a1"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("instance_finished") || stderr(&out).contains("already"),
        "{}",
        stderr(&out)
    );

    let out = served.run(&["restart", "n2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "n2", "in place unless --new-id");
    for _ in 0..200 {
        let s: Value =
            serde_json::from_str(&stdout(&served.run(&["--json", "status", "n2"]))).unwrap();
        if s["runtimeStatus"] == "Completed" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = served.run(&["restart", "n2", "--new-id"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_ne!(stdout(&out).trim(), "n2");
    let out = served.run(&[
        "start",
        "Chaining",
        "--id",
        "n2-waiter",
        "--input",
        "\"z\"",
        "--wait",
    ]);
    assert!(out.status.success());

    let out = served.run(&["purge", "n2"]);
    assert_eq!(stdout(&out).trim(), "1");
    let out = served.run(&["purge"]);
    assert!(
        !out.status.success(),
        "purge without an id or a filter is refused"
    );
    let out = served.run(&["purge", "--status", "Terminated"]);
    assert_eq!(stdout(&out).trim(), "1", "{}", stderr(&out));
    let out = served.run(&["--json", "status", "a1"]);
    assert_eq!(out.status.code(), Some(1), "purged");
}

#[test]
fn errors_exit_non_zero_with_a_message() {
    let served = Served::start(&[]);
    let out = served.run(&["status", "ghost"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("ghost") && stderr(&out).contains("404"),
        "{}",
        stderr(&out)
    );
    let out = served.run(&["start", "NoSuchThing"]);
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(
        message.contains("Chaining") && message.contains("FanOutFanIn"),
        "lists the names: {message}"
    );
    let out = served.run(&["start", "Chaining", "--input", "{broken"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not valid JSON"), "{}", stderr(&out));
    // A waited instance that fails exits with 2.
    let out = served.run(&["start", "FanOutFanIn", "--input", "\"ten\"", "--wait"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stdout(&out).contains("Failed"));
    // Nothing listens there.
    let out = crate::support::durable()
        .args(["status", "x", "--url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot reach"), "{}", stderr(&out));
}

/// Runs `durable --json entity get counter KEY` until the entity has `want` as its state.
fn wait_entity(served: &Served, key: &str, want: Value) -> Value {
    for _ in 0..600 {
        let out = served.run(&["--json", "entity", "get", "counter", key]);
        if out.status.success() {
            let body: Value = serde_json::from_str(&stdout(&out)).unwrap();
            if body["state"] == want {
                return body;
            }
        } else {
            assert!(
                stderr(&out).contains("entity_not_found"),
                "{}",
                stderr(&out)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("@counter@{key} never reached {want}");
}

#[test]
fn entity_signal_get_and_list() {
    let served = Served::start(&[]);
    let out = served.run(&[
        "entity", "signal", "counter", "alice", "add", "--input", "5",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("signalled 'add' to @counter@alice"),
        "{}",
        stderr(&out)
    );
    let body = wait_entity(&served, "alice", serde_json::json!(5));
    assert_eq!(body["entityId"]["key"], "alice");
    assert_eq!(body["lockedBy"], Value::Null);

    // Names in any letter case; --json prints what was accepted.
    let out = served.run(&[
        "--json", "entity", "signal", "Counter", "alice", "add", "--input", "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let accepted: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(accepted["entityId"]["name"], "counter");
    assert_eq!(accepted["operation"], "add");
    wait_entity(&served, "alice", serde_json::json!(7));
    let out = served.run(&["entity", "signal", "counter", "bob", "add", "--input", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_entity(&served, "bob", serde_json::json!(1));

    let out = served.run(&["entity", "get", "counter", "alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .to_string()
    };
    assert_eq!(field("Entity"), "@counter@alice");
    assert_eq!(field("State"), "7");
    assert_eq!(field("Locked by"), "-");
    assert_eq!(field("Backlog"), "0");

    let out = served.run(&["entity", "list", "counter"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("KEY") && lines[0].contains("LAST OPERATION"),
        "{table}"
    );
    let rows: Vec<Vec<&str>> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert_eq!(rows[0][..2], ["alice", "7"]);
    assert_eq!(rows[1][..2], ["bob", "1"]);

    // Paging: one a page, then every page.
    let out = served.run(&["--json", "entity", "list", "counter", "--top", "1"]);
    let page: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(page.as_array().unwrap().len(), 1);
    let out = served.run(&["entity", "list", "counter", "--top", "1"]);
    assert!(
        stderr(&out).contains("more entities exist"),
        "{}",
        stderr(&out)
    );
    let out = served.run(&["--json", "entity", "list", "counter", "--top", "1", "--all"]);
    let all: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let states: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["state"])
        .collect();
    assert_eq!(states, [&serde_json::json!(7), &serde_json::json!(1)]);
    // A time filter nothing matches.
    let out = served.run(&["entity", "list", "counter", "--to", "2001-01-01T00:00:00Z"]);
    assert_eq!(
        stdout(&out).lines().count(),
        1,
        "only the header: {}",
        stdout(&out)
    );

    // Errors: the server's code and message, exit code 1.
    let out = served.run(&["entity", "signal", "nope", "k", "add"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unknown_entity"), "{}", stderr(&out));
    let out = served.run(&["entity", "get", "counter", "never"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("entity_not_found"),
        "{}",
        stderr(&out)
    );
    let out = served.run(&[
        "entity", "signal", "counter", "alice", "add", "--input", "{bad",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not valid JSON"), "{}", stderr(&out));
    let out = served.run(&["entity", "list", "a@b"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid_entity_id"),
        "{}",
        stderr(&out)
    );
    // None of them changed the state.
    wait_entity(&served, "alice", serde_json::json!(7));
}
