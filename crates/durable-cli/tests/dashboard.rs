//! The dashboard in a real browser: `durable serve --samples` as a process, Debian's headless
//! Chromium driven by Playwright (tests/browser/dashboard.mjs), and the results checked against
//! the HTTP API and `durable history`.
//!
//! Needs `node`, the packages of `scripts/setup-node` and Chromium (`scripts/setup-chromium`);
//! `scripts/test` installs both. Screenshots go to `$DURABLE_SCREENSHOTS` (relative to the
//! repository; `docs/images` refreshes the documentation's) or else under the target folder.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Served, stderr, stdout};

const HUB: &str = "/runtime/webhooks/durabletask";
const DEADLINE: Duration = Duration::from_secs(60);
const REASON: &str = "stopped from the dashboard";

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::new()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Starts `name` with `input` (JSON text) under `id`, through the API.
fn start(served: &Served, name: &str, id: &str, input: &str) {
    let response = http()
        .post(format!("{}{HUB}/orchestrators/{name}/{id}", served.url()))
        .body(input.to_string())
        .send()
        .unwrap();
    assert_eq!(response.status(), 202, "start {name} {id}");
}

fn status(served: &Served, id: &str, key: Option<&str>) -> Value {
    let mut request = http().get(format!("{}{HUB}/instances/{id}", served.url()));
    if let Some(key) = key {
        request = request.header("x-functions-key", key);
    }
    request.send().unwrap().json().unwrap()
}

/// Polls the instance until `done` holds for its status body.
fn wait_for(served: &Served, id: &str, key: Option<&str>, done: impl Fn(&Value) -> bool) {
    let started = Instant::now();
    loop {
        let body = status(served, id, key);
        if done(&body) {
            return;
        }
        assert!(started.elapsed() < DEADLINE, "{id} never got there: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_status(served: &Served, id: &str, wanted: &str) {
    wait_for(served, id, None, |b| b["runtimeStatus"] == wanted);
}

fn raise(served: &Served, id: &str, event: &str, data: &str) {
    let url = format!("{}{HUB}/instances/{id}/raiseEvent/{event}", served.url());
    let response = http().post(url).body(data.to_string()).send().unwrap();
    assert_eq!(response.status(), 202);
}

fn screenshots() -> PathBuf {
    match std::env::var_os("DURABLE_SCREENSHOTS") {
        Some(dir) => repo().join(dir),
        None => Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots"),
    }
}

/// Runs the browser script with `plan`; its report.
fn drive(plan: Value) -> Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run scripts/setup-node"
    );
    let chromium = plan["chromium"].as_str().unwrap();
    assert!(
        Path::new(chromium).exists(),
        "no Chromium at {chromium}: run scripts/setup-chromium (Debian's chromium package), or \
         set DURABLE_CHROMIUM"
    );
    let out = Command::new("node")
        .arg("dashboard.mjs")
        .current_dir(&dir)
        .env("DASHBOARD_PLAN", plan.to_string())
        .output()
        .expect("node must be installed to run the browser tests");
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "the browser script failed (screenshot in {}):\n{}\n{text}",
        screenshots().display(),
        stderr(&out)
    );
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("no report ({e}): {text}"))
}

fn plan(served: &Served, scenario: &str, ids: Value) -> Value {
    let chromium = std::env::var("DURABLE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    json!({
        "scenario": scenario,
        "url": served.url(),
        "chromium": chromium,
        "screenshots": screenshots(),
        "ids": ids,
        "reason": REASON,
        // Polls the live charts wait for: a longer history makes a better picture for the docs.
        "samples": if std::env::var_os("DURABLE_SCREENSHOTS").is_some() { 20 } else { 6 },
        "batchPrefix": "batch-",
        "durations": DURATIONS,
    })
}

/// Durations whose text is easy to get wrong: unit boundaries and exact halves.
const DURATIONS: [i64; 12] = [
    0, 999, 1000, 1125, 1135, 1375, 59_999, 75_000, 90_000, 3_600_000, 4_500_000, 5_400_000,
];

/// How `durable history` writes a duration (crates/durable-cli/src/render.rs).
fn cli_duration(ms: i64) -> String {
    match ms {
        ms if ms < 1_000 => format!("{ms} ms"),
        ms if ms < 60_000 => format!("{:.2} s", ms as f64 / 1000.0),
        ms if ms < 3_600_000 => format!("{:.1} min", ms as f64 / 60_000.0),
        ms => format!("{:.1} h", ms as f64 / 3_600_000.0),
    }
}

/// The rows of a text table as `durable` prints it: columns start where the header's words do.
fn table_rows(text: &str) -> Vec<Vec<String>> {
    let mut lines = text.lines();
    let header: Vec<char> = lines.next().unwrap().chars().collect();
    let starts: Vec<usize> = (0..header.len())
        .filter(|&i| header[i] != ' ' && (i == 0 || header[i - 1] == ' '))
        .collect();
    lines
        .map(|line| {
            let chars: Vec<char> = line.chars().collect();
            starts
                .iter()
                .enumerate()
                .map(|(n, &from)| {
                    let to = starts.get(n + 1).copied().unwrap_or(chars.len());
                    let cell: String = chars[from.min(chars.len())..to.min(chars.len())]
                        .iter()
                        .collect();
                    cell.trim().to_string()
                })
                .collect()
        })
        .collect()
}

#[test]
fn the_dashboard_lists_shows_and_acts() {
    let served = Served::start(&[]);
    start(&served, "Chaining", "chaining", r#""dashboard""#);
    start(&served, "Nested", "nested", r#"["x", "y"]"#);
    start(&served, "FanOutFanIn", "fan-out", "10");
    start(&served, "Counter", "failed-counter", "1");
    start(&served, "Approval", "approval", "");
    start(&served, "Counter", "counter", "5");
    let batch: Vec<String> = (0..11).map(|n| format!("batch-{n:02}")).collect();
    for id in &batch {
        start(&served, "Chaining", id, r#""b""#);
    }
    raise(&served, "failed-counter", "operation", r#""explode""#);
    raise(&served, "counter", "operation", r#""incr""#);
    for id in ["chaining", "nested", "fan-out", "batch-10"] {
        wait_status(&served, id, "Completed");
    }
    wait_status(&served, "failed-counter", "Failed");
    wait_status(&served, "approval", "Running");
    wait_for(&served, "counter", None, |b| {
        b["runtimeStatus"] == "Running" && b["customStatus"] == 6
    });

    let all = [
        "chaining",
        "nested",
        "fan-out",
        "failed-counter",
        "approval",
        "counter",
    ];
    let ids = json!({
        "all": all,
        "running": ["approval", "counter"],
        "nested": "nested",
        "failed": "failed-counter",
        "approval": "approval",
        "counter": "counter",
        "restart": "chaining",
        "purge": "batch-00",
        "batch": batch,
    });
    let report = drive(plan(&served, "main", ids));

    // The list showed every instance started.
    let listed: Vec<&str> = report["listed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for id in all.into_iter().chain(batch.iter().map(String::as_str)) {
        assert!(listed.contains(&id), "{id} not listed: {listed:?}");
    }

    // The page's timeline is the CLI's, cell for cell.
    let out = served.run(&["history", "nested"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let cli = table_rows(&stdout(&out));
    let page: Vec<Vec<String>> = serde_json::from_value(report["timeline"].clone()).unwrap();
    assert_eq!(page, cli, "dashboard timeline != durable history");
    assert!(
        cli.iter()
            .any(|r| r[0] == "SubOrchestrationInstanceCompleted")
    );

    // The children it linked are the ones the history names.
    let history = http()
        .get(format!(
            "{}{HUB}/instances/nested?showHistory=true",
            served.url()
        ))
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    let mut children: Vec<String> = history["historyEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["eventType"] == "SubOrchestrationInstanceCreated")
        .map(|e| e["instanceId"].as_str().unwrap().to_string())
        .collect();
    let mut linked: Vec<String> = serde_json::from_value(report["children"].clone()).unwrap();
    children.sort();
    linked.sort();
    assert_eq!(linked, children);

    assert!(
        report["failure"]
            .as_str()
            .unwrap()
            .contains("InvalidOperation"),
        "{report}"
    );
    let expected: Vec<String> = DURATIONS.iter().map(|&ms| cli_duration(ms)).collect();
    assert_eq!(report["durations"], json!(expected));
    assert!(report["legends"].to_string().contains("Activities"));

    // Terminated from the page; the API agrees.
    assert_eq!(report["terminated"], true);
    let body = status(&served, "approval", None);
    assert_eq!(body["runtimeStatus"], "Terminated", "{body}");
    assert_eq!(body["output"], REASON);

    // The other actions, each confirmed in its dialog.
    let counter = status(&served, "counter", None);
    assert_eq!(counter["runtimeStatus"], "Running", "{counter}");
    assert_eq!(counter["customStatus"], 7, "raised incr: {counter}");
    let restarted = report["restartedAs"].as_str().unwrap();
    assert_ne!(restarted, "chaining");
    wait_status(&served, restarted, "Completed");
    let body = status(&served, restarted, None);
    assert_eq!(body["output"], "dashboard,F1,F2,F3,F4", "{body}");
    assert_eq!(report["purged"], true);
    let purged = http()
        .get(format!("{}{HUB}/instances/batch-00", served.url()))
        .send()
        .unwrap();
    assert_eq!(purged.status(), 404);
    // The rewind reaches the history once the instance has taken it in.
    let history = format!("{}{HUB}/instances/failed-counter/timeline", served.url());
    let started = Instant::now();
    loop {
        let rows = http().get(&history).send().unwrap().text().unwrap();
        if rows.contains("ExecutionRewound") {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "no rewind in {rows}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Signals `op` with `input` (JSON text) to `@counter@key`, through the API.
fn signal(served: &Served, key: &str, op: &str, input: &str) {
    let url = format!("{}{HUB}/entities/counter/{key}?op={op}", served.url());
    let response = http().post(url).body(input.to_string()).send().unwrap();
    assert_eq!(response.status(), 202, "signal {op} to {key}");
}

/// The counter's state through the API, once it answers `200`.
fn counter(served: &Served, key: &str) -> Value {
    let url = format!("{}{HUB}/entities/counter/{key}", served.url());
    let started = Instant::now();
    loop {
        let response = http().get(&url).send().unwrap();
        if response.status() == 200 {
            return response.json().unwrap();
        }
        assert_eq!(response.status(), 404, "{url}");
        assert!(started.elapsed() < DEADLINE, "{key} never got a state");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_entities_page_lists_shows_and_signals() {
    let served = Served::start(&[]);
    signal(&served, "alice", "add", "5");
    signal(&served, "bob", "add", "1");
    assert_eq!(counter(&served, "alice"), 5);
    assert_eq!(counter(&served, "bob"), 1);

    let ids = json!({ "all": [] });
    let mut plan = plan(&served, "entities", ids);
    plan["entities"] = json!({
        "keys": ["alice", "bob"],
        "created": "carol",
        "open": "alice",
        "before": 5,
        "add": 3,
    });
    let report = drive(plan);

    assert_eq!(report["entityRows"], json!([["alice", "5"], ["bob", "1"]]));
    assert_eq!(report["stateBefore"], "5");
    assert_eq!(report["stateAfter"], "8");
    // The API agrees: the signal from the page was applied once, the cancelled one never.
    assert_eq!(counter(&served, "alice"), 8);
    assert_eq!(counter(&served, "carol"), 2);
    assert_eq!(counter(&served, "bob"), 1);
    assert_eq!(report["entityTile"], "Entities3");
}

#[test]
fn with_an_api_key_the_page_asks_for_it() {
    const KEY: &str = "dash-Key+/=";
    let served = Served::start(&["--api-key", KEY]);
    let response = http()
        .post(format!(
            "{}{HUB}/orchestrators/Approval/waiting",
            served.url()
        ))
        .header("x-functions-key", KEY)
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
    wait_for(&served, "waiting", Some(KEY), |b| {
        b["runtimeStatus"] == "Running"
    });
    // The page itself loads without the key; the data does not.
    assert_eq!(http().get(served.url()).send().unwrap().status(), 200);
    let listing = http()
        .get(format!("{}{HUB}/instances", served.url()))
        .send()
        .unwrap();
    assert_eq!(listing.status(), 401);

    let mut plan = plan(&served, "key", json!({ "all": ["waiting"] }));
    plan["key"] = json!(KEY);
    let report = drive(plan);
    assert_eq!(report["keyed"], true);
    let address = report["addressAfterCode"].as_str().unwrap();
    assert!(!address.contains("code="), "{address}");
    assert!(address.ends_with("/#/live"), "{address}");
}
