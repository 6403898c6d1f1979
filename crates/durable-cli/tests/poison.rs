//! Poison and bad code against a real `durable serve`, on SQLite and on PostgreSQL: an
//! orchestration that panics, an activity that always panics, an activity nobody registered, an
//! unknown orchestration name and a corrupted history row each end in a clear state, the
//! corrupted instance after the configured number of deliveries (counted in the audit log) and
//! no more, while healthy instances beside them complete.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::cluster::{HUB_PATH, Hub, Node, Tail, check_instance, http, start_all, workload};

const LEASE: Duration = Duration::from_secs(1);
/// `WorkerOptions::max_deliveries`, which `durable serve` runs with.
const MAX_DELIVERIES: usize = durable_core::limits::DEFAULT_MAX_DELIVERIES as usize;
const HEALTHY: usize = 40;

fn get(http: &Client, node: &Node, id: &str) -> Value {
    let url = format!("{}{HUB_PATH}/instances/{id}?showHistory=false", node.url());
    http.get(url).send().unwrap().json().unwrap()
}

fn post(http: &Client, url: String, body: Value) -> (u16, Value) {
    let r = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn start(http: &Client, node: &Node, name: &str, id: &str, input: Value) {
    let url = format!("{}{HUB_PATH}/orchestrators/{name}/{id}", node.url());
    let (status, body) = post(http, url, input);
    assert_eq!(status, 202, "start {name}: {body}");
}

/// Waits until the instance has finished; its status.
fn finished(http: &Client, node: &Node, id: &str, within: Duration) -> Value {
    let began = Instant::now();
    loop {
        let s = get(http, node, id);
        if !matches!(s["runtimeStatus"].as_str(), Some("Running" | "Pending")) {
            return s;
        }
        assert!(began.elapsed() < within, "{id} did not finish: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs healthy instances (fan-outs and chains) through `node` to the end; instances per second.
fn healthy(http: &Client, node: &Node, tag: &str) -> f64 {
    let planned = workload(tag, HEALTHY, 10);
    let began = Instant::now();
    start_all(http, &[node], &planned);
    for p in &planned {
        finished(http, node, &p.id, Duration::from_secs(60));
    }
    let rate = HEALTHY as f64 / began.elapsed().as_secs_f64();
    for p in &planned {
        check_instance(http, node, p);
    }
    rate
}

/// Turn lines of `id` in the node's audit log with this phase (`claimed` lines are deliveries).
fn turns(node: &Node, id: &str, phase: &str) -> usize {
    let mut tail = Tail::new(&node.audit);
    tail.read()
        .iter()
        .filter(|l| l.op == "turn" && l.phase == phase && l.instance.as_deref() == Some(id))
        .count()
}

fn deliveries(node: &Node, id: &str) -> usize {
    turns(node, id, "claimed")
}

fn executions(log: &Path, id: &str) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(&format!("{id} ")))
        .count()
}

fn failure(s: &Value) -> (String, String) {
    assert_eq!(s["runtimeStatus"], "Failed", "{s}");
    let f = &s["failureDetails"];
    let text = |k: &str| f[k].as_str().unwrap_or_default().to_string();
    (text("errorType"), text("errorMessage"))
}

fn scenario(store: &str, corrupt: impl FnOnce(&str)) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("executions.log");
    let extra = ["--torture-log", log.to_str().unwrap()];
    let http = http();

    // An instance waiting for its approval, whose history is then overwritten with garbage
    // while no process holds it in memory.
    let first = Node::start_on("first", store, dir.path(), LEASE, &extra);
    first.wait_ready();
    let corrupted = "poison-corrupted";
    start(
        &http,
        &first,
        "Approval",
        corrupted,
        json!({"timeoutSeconds": 3600}),
    );
    let began = Instant::now();
    while turns(&first, corrupted, "committed") < 2 {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the approval never ran its second turn"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(first);
    corrupt(corrupted);

    let node = Node::start_on("second", store, dir.path(), LEASE, &extra);
    node.wait_ready();
    let clean = healthy(&http, &node, "clean");

    let event = format!(
        "{}{HUB_PATH}/instances/{corrupted}/raiseEvent/ApprovalEvent",
        node.url()
    );
    assert_eq!(post(&http, event, json!(true)).0, 202);
    start(&http, &node, "TorturePanics", "poison-panics", json!(null));
    start(
        &http,
        &node,
        "TortureCallsPanicky",
        "poison-panicky",
        json!(null),
    );
    start(
        &http,
        &node,
        "TortureCallsMissing",
        "poison-missing",
        json!(null),
    );
    let unknown = format!("{}{HUB_PATH}/orchestrators/NoSuchOrchestration", node.url());
    let (status, body) = post(&http, unknown, json!(null));
    assert!(
        (400..500).contains(&status),
        "unknown orchestration: {status} {body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("NoSuchOrchestration"),
        "{body}"
    );
    // Healthy rounds for as long as the corrupted instance is still being delivered.
    let mut rates = Vec::new();
    loop {
        let tag = format!("beside{}", rates.len());
        rates.push(healthy(&http, &node, &tag));
        let s = get(&http, &node, corrupted);
        if !matches!(s["runtimeStatus"].as_str(), Some("Running" | "Pending")) {
            break;
        }
    }
    let beside = rates.iter().sum::<f64>() / rates.len() as f64;

    let wait = Duration::from_secs(90);
    let (kind, message) = failure(&finished(&http, &node, "poison-panics", wait));
    assert!(message.contains("orchestration bug"), "{kind}: {message}");
    let (kind, message) = failure(&finished(&http, &node, "poison-panicky", wait));
    assert!(message.contains("activity bug"), "{kind}: {message}");
    let (kind, message) = failure(&finished(&http, &node, "poison-missing", wait));
    assert!(
        message.contains("no activity named 'NoSuchActivity'"),
        "{kind}: {message}"
    );
    let (kind, message) = failure(&finished(&http, &node, corrupted, wait));
    assert_eq!(kind, "PoisonMessage", "{message}");
    assert!(
        message.contains("history cannot be read") && message.contains("corrupted"),
        "{message}"
    );

    let counted = deliveries(&node, corrupted);
    assert_eq!(
        counted,
        MAX_DELIVERIES + 1,
        "the last delivery fails the instance"
    );
    // Three more lease periods: a failed instance is never delivered again.
    std::thread::sleep(LEASE * 3);
    assert_eq!(
        deliveries(&node, corrupted),
        counted,
        "delivered after it failed"
    );
    assert_eq!(
        deliveries(&node, "poison-panics"),
        1,
        "a panic fails on the first delivery"
    );
    assert_eq!(
        executions(&log, "poison-panicky"),
        1,
        "a panicking activity runs once"
    );

    println!("unknown orchestration: HTTP {status} {body}");
    println!("corrupted history: failed after {counted} deliveries: {message}");
    println!(
        "healthy throughput ({HEALTHY} fan-outs and chains a round): {clean:.1} instances/s alone, {beside:.1} instances/s beside the poison (mean of {} rounds while it was delivered)",
        rates.len()
    );
}

#[test]
fn poison_fails_clearly_beside_healthy_work_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("durable.db");
    scenario(&format!("sqlite://{}", db.display()), |id| {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let n = conn
            .execute(
                "UPDATE history SET events = '{not json' WHERE instance_id = ?1",
                [id],
            )
            .unwrap();
        assert!(n > 0, "no history rows to corrupt");
    });
}

#[test]
fn poison_fails_clearly_beside_healthy_work_on_postgres() {
    let hub = Hub::fresh();
    let sql = format!(
        "UPDATE {}.history SET events = '{{not json' WHERE instance_id = $1",
        hub.schema
    );
    scenario(&hub.url(), |id| {
        let n = crate::cluster::with_db(async |db| db.execute(&sql, &[&id]).await.unwrap());
        assert!(n > 0, "no history rows to corrupt");
    });
}

/// An activity that kills its worker process on every delivery: the test restarts the worker
/// each time, as a supervisor would, until the instance fails with the activity's
/// `PoisonMessage`. Its executions and the worker restarts.
fn killer(store: &str, dir: &Path) -> (usize, usize) {
    let log = dir.join("executions.log");
    let extra = ["--torture-log", log.to_str().unwrap()];
    let http = http();
    let id = "poison-killer";
    let began = Instant::now();
    let mut restarts = 0;
    let mut node = Node::start_on("killer-0", store, dir, LEASE, &extra);
    node.wait_ready();
    start(&http, &node, "TortureCallsKiller", id, json!(null));
    let status = loop {
        assert!(began.elapsed() < Duration::from_secs(180), "never failed");
        if node.child.try_wait().unwrap().is_some() {
            restarts += 1;
            let name: &'static str = Box::leak(format!("killer-{restarts}").into_boxed_str());
            node = Node::start_on(name, store, dir, LEASE, &extra);
            // It may run the activity, and die, before it listens.
            while std::net::TcpStream::connect(&node.http).is_err()
                && node.child.try_wait().unwrap().is_none()
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            continue;
        }
        // The worker may die during the request: no answer is not a failure here.
        let url = format!("{}{HUB_PATH}/instances/{id}", node.url());
        match http.get(url).send().and_then(|r| r.json::<Value>()) {
            Ok(s) if s["runtimeStatus"] == "Failed" => break s,
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let (kind, message) = failure(&status);
    let delivered = format!("delivered {} times", MAX_DELIVERIES + 1);
    assert!(message.contains(&delivered), "{kind}: {message}");
    let runs = executions(&log, id);
    println!(
        "activity killing its worker on {store}: {runs} executions, {restarts} worker restarts, failed after {:.1} s: {message}",
        began.elapsed().as_secs_f64()
    );
    (runs, restarts)
}

#[test]
fn an_activity_that_kills_its_worker_is_poisoned_after_max_deliveries_on_postgres() {
    let hub = Hub::fresh();
    let dir = tempfile::tempdir().unwrap();
    let (runs, restarts) = killer(&hub.url(), dir.path());
    // A claim is a committed transaction: every delivery counts.
    assert_eq!(runs, MAX_DELIVERIES, "ran on every delivery but the last");
    assert_eq!(restarts, MAX_DELIVERIES, "each run killed its worker once");
}

#[test]
fn an_activity_that_kills_its_worker_is_poisoned_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("durable.db").display());
    let (runs, restarts) = killer(&store, dir.path());
    // Activity claims reach the disk before the activity runs, so a crash never loses the
    // delivery count: exactly the configured number of runs, as on PostgreSQL.
    assert_eq!(runs, MAX_DELIVERIES, "ran on every delivery but the last");
    assert_eq!(restarts, MAX_DELIVERIES, "each run killed its worker once");
}
