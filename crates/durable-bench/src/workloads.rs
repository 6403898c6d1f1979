//! The workloads. Every workload gets a fresh store, runs a real `Worker` on it and measures from
//! the outside (client calls) or from the recorded history (turn timestamps).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use durable::prelude::*;
use durable::{
    ClientError, EventKind, HistoryEvent, Registry, SharedStore, StartRequest, WorkerOptions,
};
use futures::stream::{self, StreamExt};
use serde_json::json;

use crate::stats::{Report, peak_rss_mib, quantile, rss_mib};

/// The workloads of `durable bench`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Sequence,
    Fanout,
    Latency,
    Events,
    History,
    Idle,
    Timers,
    Http,
    Entities,
}

impl Workload {
    pub const ALL: [Workload; 9] = [
        Workload::Sequence,
        Workload::Fanout,
        Workload::Latency,
        Workload::Events,
        Workload::History,
        Workload::Idle,
        Workload::Timers,
        Workload::Http,
        Workload::Entities,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Sequence => "sequence",
            Workload::Fanout => "fanout",
            Workload::Latency => "latency",
            Workload::Events => "events",
            Workload::History => "history",
            Workload::Idle => "idle",
            Workload::Timers => "timers",
            Workload::Http => "http",
            Workload::Entities => "entities",
        }
    }

    /// The default size (N) of the workload.
    pub fn default_size(self) -> u64 {
        match self {
            Workload::Sequence => 1_000,
            Workload::Fanout => 10_000,
            Workload::Latency => 200,
            Workload::Events => 5_000,
            Workload::History => 10_000,
            Workload::Idle => 100_000,
            Workload::Timers => 10_000,
            Workload::Http => 200,
            Workload::Entities => 20_000,
        }
    }

    pub fn parse(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }
}

/// How to run a workload.
pub struct Options {
    /// N; `None` for the workload's default.
    pub size: Option<u64>,
    /// Label of the durability setting, for the report.
    pub sync: String,
    /// Called with (done, total) as the workload progresses.
    pub progress: Arc<dyn Fn(u64, u64) + Send + Sync>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("size", &self.size)
            .field("sync", &self.sync)
            .finish()
    }
}

const STEPS: u32 = 5;

fn options() -> WorkerOptions {
    WorkerOptions {
        idle_poll: Duration::from_millis(250),
        ..Default::default()
    }
}

async fn noop(_: ActivityContext, x: u64) -> Result<u64, Error> {
    Ok(x)
}

/// Every orchestration and activity the workloads use (also run by `durable bench` workers in
/// other processes).
pub fn registry() -> Registry {
    let mut r = Registry::new();
    r.add_activity("Noop", noop)
        .add_orchestration(
            "Sequence",
            |ctx: OrchestrationContext, steps: u32| async move {
                let mut x = 0u64;
                for _ in 0..steps {
                    x = ctx.call_activity("Noop", x + 1).await?;
                }
                Ok::<_, Error>(x)
            },
        )
        .add_orchestration("Fanout", |ctx: OrchestrationContext, n: u64| async move {
            let calls = (0..n).map(|i| ctx.call_activity::<_, u64>("Noop", i));
            let mut sum = 0u64;
            for r in futures::future::join_all(calls).await {
                sum += r?;
            }
            Ok::<_, Error>(sum)
        })
        .add_orchestration("Events", |ctx: OrchestrationContext, n: u64| async move {
            for _ in 0..n {
                let _: u64 = ctx.wait_for_event("e").await?;
            }
            Ok::<_, Error>(n)
        })
        .add_orchestration("Idle", |ctx: OrchestrationContext, _: ()| async move {
            let _: () = ctx.wait_for_event("never").await?;
            Ok::<_, Error>(())
        })
        .add_orchestration("Timer", |ctx: OrchestrationContext, ms: u64| async move {
            ctx.sleep(Duration::from_millis(ms)).await;
            Ok::<_, Error>(())
        })
        .add_orchestration("OneStep", |ctx: OrchestrationContext, x: u64| async move {
            Ok::<_, Error>(ctx.call_activity::<_, u64>("Noop", x).await?)
        })
        .add_entity("Tally", |ctx: &mut durable::EntityContext| {
            let value: u64 = ctx.state_or_default()?;
            let by: u64 = ctx.input()?;
            ctx.set_state(&(value + by))?;
            Ok::<_, Error>(())
        });
    r
}

fn worker(store: &SharedStore) -> Worker {
    Worker::builder(store.clone())
        .options(options())
        .registry(&registry())
        .start()
}

pub(crate) fn report(
    workload: Workload,
    store: &SharedStore,
    opts: &Options,
    instances: u64,
    steps: u64,
    wall: Duration,
) -> Report {
    let wall_s = wall.as_secs_f64();
    Report {
        workload: workload.name().into(),
        store: store.describe(),
        sync: opts.sync.clone(),
        instances,
        steps,
        wall_s,
        steps_per_s: if wall_s > 0.0 {
            steps as f64 / wall_s
        } else {
            0.0
        },
        p50_ms: 0.0,
        p99_ms: 0.0,
        peak_rss_mib: peak_rss_mib(),
        extra: Default::default(),
    }
}

fn ms(d: chrono::Duration) -> f64 {
    d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
}

/// Durations between consecutive turns (OrchestratorStarted events) of a history, in ms.
fn turn_gaps(history: &[HistoryEvent]) -> Vec<f64> {
    let starts: Vec<DateTime<Utc>> = history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::OrchestratorStarted))
        .map(|e| e.timestamp)
        .collect();
    starts.windows(2).map(|w| ms(w[1] - w[0])).collect()
}

/// Runs one workload on `store` and returns its report.
pub async fn run(
    workload: Workload,
    store: SharedStore,
    opts: &Options,
) -> Result<Report, Box<dyn std::error::Error>> {
    let n = opts.size.unwrap_or_else(|| workload.default_size()).max(1);
    let worker = worker(&store);
    let client = worker.client();
    let result = match workload {
        Workload::Sequence => sequence(&client, &store, opts, n).await,
        Workload::Fanout => fanout(&client, &store, opts, n).await,
        Workload::Latency => latency(&client, &store, opts, n).await,
        Workload::Events => events(&client, &store, opts, n).await,
        Workload::History => history(&client, &store, opts, n, &worker).await,
        Workload::Idle => idle(&client, &store, opts, n).await,
        Workload::Timers => timers(&client, &store, opts, n).await,
        Workload::Http => crate::http::run(&worker, &store, opts, n).await,
        Workload::Entities => entities(&client, &store, opts, n).await,
    };
    worker.shutdown().await;
    result
}

const WAIT: Duration = Duration::from_secs(3600);

async fn sequence(
    client: &Client,
    store: &SharedStore,
    opts: &Options,
    n: u64,
) -> Result<Report, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let ids: Vec<String> = stream::iter(0..n)
        .map(|_| client.start("Sequence", STEPS))
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut latencies: Vec<f64> = stream::iter(ids)
        .map(|id| {
            let done = done.clone();
            async move {
                let s = client.wait_for_completion(&id, WAIT).await?;
                (opts.progress)(
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
                    n,
                );
                Ok::<_, durable::ClientError>(ms(s.updated_at - s.created_at))
            }
        })
        .buffer_unordered(1024)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let mut r = report(
        Workload::Sequence,
        store,
        opts,
        n,
        n * STEPS as u64,
        started.elapsed(),
    );
    r.p50_ms = quantile(&mut latencies, 0.5);
    r.p99_ms = quantile(&mut latencies, 0.99);
    Ok(r)
}

async fn fanout(
    client: &Client,
    store: &SharedStore,
    opts: &Options,
    n: u64,
) -> Result<Report, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let id = client.start("Fanout", n).await?;
    let s = client.wait_for_completion(&id, WAIT).await?;
    let wall = started.elapsed();
    (opts.progress)(1, 1);
    if s.output_as::<u64>()? != n * (n - 1) / 2 {
        return Err("fan-out returned a wrong sum".into());
    }
    let mut r = report(Workload::Fanout, store, opts, 1, n, wall);
    r.p50_ms = wall.as_secs_f64() * 1000.0;
    r.p99_ms = r.p50_ms;
    Ok(r)
}

async fn latency(
    client: &Client,
    store: &SharedStore,
    opts: &Options,
    n: u64,
) -> Result<Report, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let id = client.start("Sequence", n as u32).await?;
    client.wait_for_completion(&id, WAIT).await?;
    let wall = started.elapsed();
    (opts.progress)(1, 1);
    let mut gaps = turn_gaps(&client.history(&id).await?);
    let mut r = report(Workload::Latency, store, opts, 1, n, wall);
    r.p50_ms = quantile(&mut gaps, 0.5);
    r.p99_ms = quantile(&mut gaps, 0.99);
    Ok(r)
}

async fn events(
    client: &Client,
    store: &SharedStore,
    opts: &Options,
    n: u64,
) -> Result<Report, Box<dyn std::error::Error>> {
    let id = client.start("Events", n).await?;
    client.wait_for_start(&id, WAIT).await?;
    let started = Instant::now();
    let mut raise_ms: Vec<f64> = stream::iter(0..n)
        .map(|i| {
            let id = id.clone();
            async move {
                let t = Instant::now();
                client.raise_event(&id, "e", i).await?;
                if i.is_multiple_of(100) {
                    (opts.progress)(i, n);
                }
                Ok::<_, durable::ClientError>(t.elapsed().as_secs_f64() * 1000.0)
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    client.wait_for_completion(&id, WAIT).await?;
    let mut r = report(Workload::Events, store, opts, 1, n, started.elapsed());
    r.p50_ms = quantile(&mut raise_ms, 0.5);
    r.p99_ms = quantile(&mut raise_ms, 0.99);
    Ok(r)
}

/// Per-step cost early in a history and at `n` events, and a cold replay of `n` events.
async fn history(
    client: &Client,
    store: &SharedStore,
    opts: &Options,
    n: u64,
    worker: &Worker,
) -> Result<Report, Box<dyn std::error::Error>> {
    // Each step adds three events (OrchestratorStarted, TaskCompleted, TaskScheduled).
    let steps = n / 3 + 20;
    let started = Instant::now();
    let id = client.start("Sequence", steps as u32).await?;
    client.wait_for_completion(&id, WAIT).await?;
    let wall = started.elapsed();
    (opts.progress)(1, 1);
    let history = client.history(&id).await?;
    let gaps = turn_gaps(&history);
    let window = 20.min(gaps.len() / 4).max(1);
    let mut early: Vec<f64> = gaps[1..=window].to_vec();
    let mut late: Vec<f64> = gaps[gaps.len() - window..].to_vec();
    let early_ms = quantile(&mut early, 0.5);
    let late_ms = quantile(&mut late, 0.5);

    let handler = worker
        .registry()
        .orchestration("Sequence")
        .expect("registered")
        .clone();
    let mut replays = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut replayer = durable::core::Replayer::new(handler.clone(), &id, "bench", "Sequence");
        replayer.replay(&history);
        replays.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let cold_ms = quantile(&mut replays, 0.5);

    let mut r = report(Workload::History, store, opts, 1, steps, wall);
    r.p50_ms = late_ms;
    r.p99_ms = quantile(&mut late, 0.99);
    r.extra
        .insert("history_events".into(), json!(history.len()));
    r.extra.insert("step_ms_at_start".into(), json!(early_ms));
    r.extra.insert("step_ms_at_end".into(), json!(late_ms));
    r.extra.insert(
        "ratio".into(),
        json!(if early_ms > 0.0 {
            late_ms / early_ms
        } else {
            0.0
        }),
    );
    r.extra.insert("cold_replay_ms".into(), json!(cold_ms));
    Ok(r)
}

async fn idle(
    client: &Client,
    store: &SharedStore,
    opts: &Options,
    n: u64,
) -> Result<Report, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut start_ms = timed_calls(n, opts, |i| async move {
        let request = StartRequest::new("Idle").instance_id(format!("idle-{i}"));
        client.start_with(request).await.map(drop)
    })
    .await?;
    let start_wall = started.elapsed();
    // Wait until every instance has run its first turn and is waiting.
    loop {
        let stats = store.queue_stats().await?;
        if stats.orchestration_backlog == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wall = started.elapsed();
    let mut r = report(Workload::Idle, store, opts, n, n, wall);
    r.p50_ms = quantile(&mut start_ms, 0.5);
    r.p99_ms = quantile(&mut start_ms, 0.99);
    r.extra.insert(
        "starts_per_s".into(),
        json!(n as f64 / start_wall.as_secs_f64()),
    );
    r.extra.insert("rss_mib_waiting".into(), json!(rss_mib()));
    Ok(r)
}

async fn timers(
    client: &Client,
    store: &SharedStore,
    opts: &Options,
    n: u64,
) -> Result<Report, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let ids: Vec<String> = stream::iter(0..n)
        .map(|_| client.start("Timer", 1000u64))
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut lags: Vec<f64> = stream::iter(ids)
        .map(|id| {
            let done = done.clone();
            async move {
                client.wait_for_completion(&id, WAIT).await?;
                (opts.progress)(
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
                    n,
                );
                let history = client.history(&id).await?;
                let fired_turn = history
                    .iter()
                    .rposition(|e| matches!(e.kind, EventKind::TimerFired { .. }))
                    .and_then(|i| {
                        history[..i]
                            .iter()
                            .rev()
                            .find(|e| matches!(e.kind, EventKind::OrchestratorStarted))
                    })
                    .map(|e| e.timestamp);
                let fire_at = history.iter().find_map(|e| match e.kind {
                    EventKind::TimerCreated { fire_at } => Some(fire_at),
                    _ => None,
                });
                Ok::<_, durable::ClientError>(match (fired_turn, fire_at) {
                    (Some(t), Some(f)) => ms(t - f),
                    _ => f64::NAN,
                })
            }
        })
        .buffer_unordered(256)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    lags.retain(|l| l.is_finite());
    let mut r = report(Workload::Timers, store, opts, n, n, started.elapsed());
    r.p50_ms = quantile(&mut lags, 0.5);
    r.p99_ms = quantile(&mut lags, 0.99);
    Ok(r)
}

/// Makes `n` client calls, 64 at a time, reporting progress; returns each call's latency in ms.
async fn timed_calls<F, Fut>(n: u64, opts: &Options, call: F) -> Result<Vec<f64>, ClientError>
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = Result<(), ClientError>>,
{
    let done = std::sync::atomic::AtomicU64::new(0);
    let done = &done;
    stream::iter(0..n)
        .map(|i| {
            let call = call(i);
            async move {
                let t = Instant::now();
                call.await?;
                let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if d.is_multiple_of(500) {
                    (opts.progress)(d, n);
                }
                Ok(t.elapsed().as_secs_f64() * 1000.0)
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Signals into one entity: the time from the first signal until the entity's state shows all
/// of them applied; p50/p99 are the signal calls (acknowledged and durable).
async fn entities(
    client: &Client,
    store: &SharedStore,
    opts: &Options,
    n: u64,
) -> Result<Report, Box<dyn std::error::Error>> {
    let id = durable::EntityId::new("Tally", "bench");
    let started = Instant::now();
    let id = &id;
    let mut signal_ms = timed_calls(n, opts, |_| async move {
        client.signal_entity(id, "add", 1u64).await
    })
    .await?;
    let sent = started.elapsed();
    let want = n.to_string();
    loop {
        let state = client.get_entity(id).await?.and_then(|e| e.state);
        if state.as_deref() == Some(want.as_str()) {
            break;
        }
        if started.elapsed() > WAIT {
            return Err(format!("the entity reached {state:?} of {n}").into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut r = report(Workload::Entities, store, opts, 1, n, started.elapsed());
    r.p50_ms = quantile(&mut signal_ms, 0.5);
    r.p99_ms = quantile(&mut signal_ms, 0.99);
    r.extra.insert(
        "signals_sent_per_s".into(),
        json!(n as f64 / sent.as_secs_f64()),
    );
    Ok(r)
}
