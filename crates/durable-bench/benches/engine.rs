//! Micro-benchmarks of the two hot paths under `durable bench`: replaying a history (the engine)
//! and committing one durable step (the store). `cargo bench -p durable-bench`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use durable::core::Replayer;
use durable::core::work::ActivityResult;
use durable::core::work::{
    HistoryWrite, InstanceUpdate, NameFilter, NewActivity, OrchestrationItem, TurnCommit,
};
use durable::{EventKind, HistoryEvent, MemoryStore, SharedStore, Worker, WorkerOptions};
use durable_sqlite::{SqliteOptions, SqliteStore, Synchronous};
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// The history of a `Sequence` orchestration of `steps` activities, made by a real worker.
fn sequence_history(rt: &Runtime, steps: u32) -> Vec<HistoryEvent> {
    rt.block_on(async {
        let store: SharedStore = Arc::new(MemoryStore::default());
        let worker = Worker::builder(store)
            .options(WorkerOptions {
                idle_poll: Duration::from_millis(20),
                ..Default::default()
            })
            .registry(&durable_bench::registry())
            .start();
        let client = worker.client();
        let id = client.start("Sequence", steps).await.unwrap();
        client
            .wait_for_completion(&id, Duration::from_secs(600))
            .await
            .unwrap();
        let history = client.history(&id).await.unwrap();
        worker.shutdown().await;
        history
    })
}

fn replay(c: &mut Criterion) {
    let rt = runtime();
    let registry = durable_bench::registry();
    let handler = registry.orchestration("Sequence").unwrap().clone();
    let mut group = c.benchmark_group("replay");
    for steps in [3u32, 330, 3_330] {
        let history = sequence_history(&rt, steps);
        group.throughput(Throughput::Elements(history.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("cold", history.len()),
            &history,
            |b, history| {
                b.iter(|| {
                    let mut r = Replayer::new(handler.clone(), "bench", "e", "Sequence");
                    r.replay(history);
                    assert!(r.is_finished());
                })
            },
        );
    }
    group.finish();
}

const LOCK: Duration = Duration::from_secs(30);

/// One durable step of an orchestration: the turn that schedules an activity (claimed with the
/// commit, as the runtime does) and the activity's completion.
async fn step(store: &SharedStore, item: OrchestrationItem) {
    let id = item.instance.instance_id.clone();
    let mut events = vec![HistoryEvent::unnumbered(
        chrono::Utc::now(),
        EventKind::OrchestratorStarted,
    )];
    events.extend(item.messages.iter().map(|m| m.event.clone()));
    let task_id = item.history_len as i32;
    events.push(HistoryEvent::unnumbered(
        chrono::Utc::now(),
        EventKind::TaskScheduled {
            name: "Noop".into(),
            version: None,
            input: Some("1".into()),
            parent_trace_context: None,
            tags: Default::default(),
        },
    ));
    let commit = TurnCommit {
        lease: item.lease.clone(),
        consumed: item.messages.iter().map(|m| m.id).collect(),
        history: HistoryWrite::Append {
            from: item.history_len,
            events,
        },
        instance: InstanceUpdate {
            status: durable::RuntimeStatus::Running,
            execution_id: item.instance.execution_id.clone(),
            version: None,
            input: item.instance.input.clone(),
            output: None,
            custom_status: None,
            failure: None,
            completed_at: None,
        },
        activities: vec![NewActivity {
            instance_id: id,
            execution_id: item.instance.execution_id.clone(),
            task_id,
            name: "Noop".into(),
            version: None,
            input: Some("1".into()),
            tags: Default::default(),
            trace_context: None,
        }],
        messages: vec![],
        children: vec![],
        cancelled_timers: vec![],
        terminate_children: None,
    };
    let claimed = store
        .commit_turn_and_claim(commit, 1, &NameFilter::All, LOCK)
        .await
        .unwrap();
    for a in claimed {
        store
            .complete_activity(&a.lease, ActivityResult::Completed(Some("1".into())))
            .await
            .unwrap();
    }
}

/// Runs `steps` steps spread over `instances` instances stepping side by side.
async fn run_steps(store: &SharedStore, instances: usize, steps: u64) -> Duration {
    let per = steps.div_ceil(instances as u64);
    let began = Instant::now();
    let tasks: Vec<_> = (0..instances)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut done = 0;
                while done < per {
                    let items = store
                        .fetch_orchestration_items(1, LOCK, &NameFilter::All)
                        .await
                        .unwrap();
                    match items.into_iter().next() {
                        Some(item) => {
                            step(&store, item).await;
                            done += 1;
                        }
                        None => tokio::task::yield_now().await,
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    began.elapsed()
}

fn store_step(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("store_step");
    group.throughput(Throughput::Elements(1));
    let dir = tempfile::tempdir().unwrap();
    let stores: Vec<(&str, SharedStore)> = vec![
        ("memory", Arc::new(MemoryStore::default())),
        (
            "sqlite_off",
            Arc::new(
                SqliteStore::open(
                    SqliteOptions::file(dir.path().join("off.db"))
                        .with_synchronous(Synchronous::Off),
                )
                .unwrap(),
            ),
        ),
        (
            "sqlite_full",
            Arc::new(SqliteStore::open(SqliteOptions::file(dir.path().join("full.db"))).unwrap()),
        ),
    ];
    for (name, store) in stores {
        for instances in [1usize, 64] {
            rt.block_on(async {
                for i in 0..instances {
                    let id = format!("{instances}-{i}");
                    let new = durable::core::NewInstance::new("Bench", id);
                    store.create_instance(new).await.unwrap();
                }
            });
            group.bench_function(BenchmarkId::new(name, instances), |b| {
                b.iter_custom(|steps| rt.block_on(run_steps(&store, instances, steps)))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    targets = replay, store_step
}
criterion_main!(benches);
