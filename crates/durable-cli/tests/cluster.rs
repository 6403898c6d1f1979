//! Several `durable serve` processes on one PostgreSQL task hub, the workload they share, and
//! the audit logs (`--audit-log`) they write.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::support::{durable, free_port};

pub const HUB_PATH: &str = "/runtime/webhooks/durabletask";
/// The worker's idle poll (`WorkerOptions::idle_poll`, not a flag): the slowest a worker
/// notices work that another process's lease gave up.
pub const POLL: Duration = Duration::from_secs(1);
/// Schemas of these tests start with this and the test process's pid, so a later run can drop
/// what a dead run left behind.
const PREFIX: &str = "dcli_";

fn base_url() -> String {
    std::env::var("DURABLE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Runs `f` with a connection to the test database.
pub fn with_db<T>(f: impl AsyncFnOnce(&tokio_postgres::Client) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&base_url(), tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL at DURABLE_TEST_POSTGRES");
        tokio::spawn(connection);
        f(&client).await
    })
}

/// A fresh task hub (schema), dropped at the end.
pub struct Hub {
    pub schema: String,
}

impl Hub {
    pub fn fresh() -> Hub {
        with_db(async |db| {
            let rows = db
                .query(
                    "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)",
                    &[&PREFIX],
                )
                .await
                .unwrap();
            for row in rows {
                let schema: String = row.get(0);
                let pid = schema[PREFIX.len()..].split('_').next().unwrap_or("");
                if !Path::new("/proc").join(pid).exists() {
                    let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                    let _ = db.batch_execute(&drop).await;
                }
            }
        });
        let random = durable_core::ids::new_instance_id();
        Hub {
            schema: format!("{PREFIX}{}_{}", std::process::id(), &random[..12]),
        }
    }

    /// The store URL: the schema, small pools, and the schema as the application name (to find
    /// the sessions in `pg_stat_activity`).
    pub fn url(&self) -> String {
        let base = base_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        let s = &self.schema;
        format!("{base}{sep}schema={s}&pool_size=6&application_name={s}")
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let drop = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
        with_db(async |db| db.batch_execute(&drop).await.unwrap());
    }
}

/// One `durable serve --samples` process of the hub, with its audit log.
pub struct Node {
    pub name: &'static str,
    pub child: Child,
    pub pid: u32,
    pub http: String,
    pub audit: PathBuf,
}

impl Node {
    pub fn start(name: &'static str, hub: &Hub, dir: &Path, lease: Duration) -> Node {
        Node::start_on(name, &hub.url(), dir, lease, &[])
    }

    /// A node on any store URL, with extra `serve` arguments.
    pub fn start_on(
        name: &'static str,
        store: &str,
        dir: &Path,
        lease: Duration,
        extra: &[&str],
    ) -> Node {
        let http = format!("127.0.0.1:{}", free_port());
        let audit = dir.join(format!("{name}.jsonl"));
        let child = durable()
            .args(["serve", "--samples", "--grpc", "off", "--http", &http])
            .args(["--store", store])
            .args(["--lock-duration", &lease.as_secs_f64().to_string()])
            .arg("--audit-log")
            .arg(&audit)
            .args(extra)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Node {
            name,
            pid: child.id(),
            child,
            http,
            audit,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    pub fn wait_ready(&self) {
        let started = Instant::now();
        while std::net::TcpStream::connect(&self.http).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{} did not start",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends a signal by name (`STOP`, `CONT`, `TERM`) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {}", self.pid);
    }

    /// Waits for the process to exit; its exit status.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < within, "{} did not exit", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.pid.to_string()])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// One line of an audit log.
#[derive(Clone, Debug, Deserialize)]
pub struct Line {
    pub at_us: i64,
    pub pid: u32,
    pub op: String,
    pub phase: String,
    pub epoch: u64,
    pub instance: Option<String>,
    pub position: Option<u32>,
    pub events: Option<usize>,
    pub activity: Option<i64>,
}

impl Line {
    /// A committed turn that wrote history.
    pub fn is_turn_commit(&self) -> bool {
        self.op == "turn" && self.phase == "committed" && self.events.unwrap_or(0) > 0
    }
}

/// Reads an audit log as it grows; a line still being written is left for the next read.
pub struct Tail {
    path: PathBuf,
    offset: u64,
    pub lines: Vec<Line>,
    /// The leases of the file's process, as of its last line read.
    pub leases: Leases,
    /// Its committed turns so far.
    pub commits: usize,
}

impl Tail {
    pub fn new(path: &Path) -> Tail {
        Tail {
            path: path.to_path_buf(),
            offset: 0,
            lines: Vec::new(),
            leases: Leases::default(),
            commits: 0,
        }
    }

    pub fn read(&mut self) -> &[Line] {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return &self.lines;
        };
        file.seek(SeekFrom::Start(self.offset)).unwrap();
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        for line in text[..complete].lines() {
            let parsed = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: bad line ({e}): {line}", self.path.display()));
            self.leases.apply(&parsed);
            self.commits += usize::from(parsed.is_turn_commit());
            self.lines.push(parsed);
        }
        self.offset += complete as u64;
        &self.lines
    }
}

/// An instance to run and the output it must end with.
#[derive(Clone, Debug)]
pub struct Planned {
    pub id: String,
    pub name: &'static str,
    pub input: Value,
    pub output: Value,
}

/// `count` instances, `FanOutFanIn` and `Chaining` alternating, ids prefixed with `tag`.
pub fn workload(tag: &str, count: usize, fan_out: u64) -> Vec<Planned> {
    (0..count)
        .map(|i| {
            if i % 2 == 0 {
                let n = fan_out / 2 + (i as u64 % fan_out);
                Planned {
                    id: format!("{tag}-fo-{i:03}"),
                    name: "FanOutFanIn",
                    input: json!(n),
                    output: json!(n * (n + 1) * (2 * n + 1) / 6),
                }
            } else {
                let input = format!("{tag}{i}");
                Planned {
                    id: format!("{tag}-ch-{i:03}"),
                    name: "Chaining",
                    output: json!(format!("{input},F1,F2,F3,F4")),
                    input: json!(input),
                }
            }
        })
        .collect()
}

pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Starts the instances through the nodes in turn, eight requests at a time (a burst, so work
/// queues up). A node that does not answer (killed meanwhile) is passed over; a start it may
/// have recorded before dying is found by the retry (`409`).
pub fn start_all(http: &reqwest::blocking::Client, nodes: &[&Node], planned: &[Planned]) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = planned.get(i) else { return };
                    start_one(http, nodes, i, p);
                }
            });
        }
    });
}

/// Starts the instances one after another, one every `every`, through the nodes in turn,
/// until `stop` is set; how many it started.
pub fn start_paced(
    http: &reqwest::blocking::Client,
    nodes: &[&Node],
    planned: &[Planned],
    every: Duration,
    stop: &AtomicBool,
) -> usize {
    let began = Instant::now();
    for (i, p) in planned.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            return i;
        }
        start_one(http, nodes, i, p);
        let due = began + every * (i as u32 + 1);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    panic!(
        "started all {} planned instances before being stopped",
        planned.len()
    );
}

fn start_one(http: &reqwest::blocking::Client, nodes: &[&Node], i: usize, p: &Planned) {
    for tries in 0..=nodes.len() {
        let node = nodes[(i + tries) % nodes.len()];
        let url = format!("{}{HUB_PATH}/orchestrators/{}/{}", node.url(), p.name, p.id);
        let sent = http
            .post(url)
            .header("content-type", "application/json")
            .body(p.input.to_string())
            .send();
        match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let retried_after_a_start = tries > 0 && status == 409;
                assert!(
                    status == 202 || retried_after_a_start,
                    "start {} on {}: {status}",
                    p.id,
                    node.name
                );
                return;
            }
            Err(_) => continue,
        }
    }
    panic!("no node started {}", p.id);
}

/// Checks an instance through `node`'s API: Completed once, with the planned output, every
/// scheduled task completed exactly once. Its history's turn positions (where each
/// `OrchestratorStarted` stands).
pub fn check_instance(http: &reqwest::blocking::Client, node: &Node, p: &Planned) -> Vec<u32> {
    let url = format!(
        "{}{HUB_PATH}/instances/{}?showHistory=true&showHistoryOutput=true",
        node.url(),
        p.id
    );
    let body: Value = http.get(url).send().unwrap().json().unwrap();
    assert_eq!(body["runtimeStatus"], "Completed", "{}: {body}", p.id);
    assert_eq!(body["output"], p.output, "{}", p.id);
    let events = body["historyEvents"].as_array().unwrap();
    let of = |kind: &'static str| events.iter().filter(move |e| e["eventType"] == kind);
    assert_eq!(of("ExecutionStarted").count(), 1, "{}", p.id);
    assert_eq!(of("ExecutionCompleted").count(), 1, "{}", p.id);
    let mut scheduled: Vec<i64> = of("TaskScheduled")
        .map(|e| e["eventId"].as_i64().unwrap())
        .collect();
    let mut completed: Vec<i64> = of("TaskCompleted")
        .map(|e| e["taskScheduledId"].as_i64().unwrap())
        .collect();
    scheduled.sort();
    completed.sort();
    assert_eq!(scheduled, completed, "{}: each task completes once", p.id);
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| e["eventType"] == "OrchestratorStarted")
        .map(|(i, _)| i as u32)
        .collect()
}

/// Percentile of sorted seconds (nearest rank).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `n=…, min, p50, p99, max` of seconds.
pub fn summary(mut seconds: Vec<f64>) -> (String, f64) {
    seconds.sort_by(f64::total_cmp);
    let p99 = percentile(&seconds, 99.0);
    let text = format!(
        "n={} min={:.3}s p50={:.3}s p99={:.3}s max={:.3}s",
        seconds.len(),
        seconds.first().copied().unwrap_or(f64::NAN),
        percentile(&seconds, 50.0),
        p99,
        seconds.last().copied().unwrap_or(f64::NAN),
    );
    (text, p99)
}

/// What a lease is on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Item {
    Turn(String),
    Activity(i64),
}

impl Line {
    pub fn item(&self) -> Item {
        match self.op.as_str() {
            "turn" => Item::Turn(self.instance.clone().unwrap()),
            _ => Item::Activity(self.activity.unwrap()),
        }
    }
}

/// The leases one process holds, from its log: claims not yet committed, refused or given
/// back, by item and epoch, with the instance each belongs to.
#[derive(Debug, Default)]
pub struct Leases {
    open: HashMap<(Item, u64), String>,
}

impl Leases {
    /// Takes in the process's next line.
    pub fn apply(&mut self, l: &Line) {
        let key = (l.item(), l.epoch);
        match l.phase.as_str() {
            "claimed" => {
                self.open.insert(key, l.instance.clone().unwrap());
            }
            "begin" => {}
            _ => {
                self.open.remove(&key);
            }
        }
    }

    pub fn items(&self) -> HashSet<Item> {
        self.open.keys().map(|(item, _)| item.clone()).collect()
    }

    /// The instances whose turn or activity is leased.
    pub fn instances(&self) -> HashSet<String> {
        self.open.values().cloned().collect()
    }
}

/// The leases `pid` held just before `at_us`.
pub fn leases_at(lines: &[Line], pid: u32, at_us: i64) -> Leases {
    let mut leases = Leases::default();
    for l in lines.iter().filter(|l| l.pid == pid && l.at_us < at_us) {
        leases.apply(l);
    }
    leases
}

/// For each of `items`: seconds from `at_us` until a process other than `pid` claimed it.
pub fn claimed_after(lines: &[Line], pid: u32, at_us: i64, items: &HashSet<Item>) -> Vec<f64> {
    let mut first: HashMap<Item, i64> = HashMap::new();
    for l in lines {
        if l.phase == "claimed" && l.pid != pid && l.at_us >= at_us {
            let item = l.item();
            if items.contains(&item) {
                let at = first.entry(item).or_insert(l.at_us);
                *at = (*at).min(l.at_us);
            }
        }
    }
    seconds_since(at_us, first.into_values())
}

/// For each of `instances`: seconds from `at_us` until a process other than `pid` committed a
/// turn of it (instances `pid` finished itself are left out).
pub fn progressed_after(
    lines: &[Line],
    pid: u32,
    at_us: i64,
    instances: &HashSet<String>,
) -> Vec<f64> {
    let mut first: HashMap<&str, i64> = HashMap::new();
    for l in lines.iter().filter(|l| l.is_turn_commit()) {
        let instance = l.instance.as_deref().unwrap();
        if l.pid != pid && l.at_us >= at_us && instances.contains(instance) {
            let at = first.entry(instance).or_insert(l.at_us);
            *at = (*at).min(l.at_us);
        }
    }
    seconds_since(at_us, first.into_values())
}

fn seconds_since(at_us: i64, times: impl Iterator<Item = i64>) -> Vec<f64> {
    times.map(|at| (at - at_us) as f64 / 1e6).collect()
}
