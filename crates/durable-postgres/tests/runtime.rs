//! The real runtime on PostgreSQL: the samples, and two worker processes sharing one hub.

use std::sync::Arc;
use std::time::Duration;

use durable::{EventKind, RuntimeStatus, SharedStore, Worker, WorkerOptions};
use durable_postgres::{PostgresOptions, PostgresStore};

use crate::support::{drop_schema, fresh_options};

const WAIT: Duration = Duration::from_secs(60);

async fn store(options: &PostgresOptions) -> SharedStore {
    Arc::new(PostgresStore::connect(options.clone()).await.unwrap())
}

fn worker(store: SharedStore) -> Worker {
    let options = WorkerOptions {
        idle_poll: Duration::from_millis(200),
        ..Default::default()
    };
    durable_samples::register(Worker::builder(store))
        .options(options)
        .start()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_run_on_postgres() {
    let options = fresh_options().await;
    let worker = worker(store(&options).await);
    let client = worker.client();
    let commits = || {
        durable::core::metrics::global()
            .store_commit_seconds
            .count()
    };
    let before = commits();

    let id = client.start("FanOutFanIn", 10).await.unwrap();
    let s = client.wait_for_completion(&id, WAIT).await.unwrap();
    assert_eq!(s.status, RuntimeStatus::Completed, "{:?}", s.failure);
    assert_eq!(s.output_as::<u64>().unwrap(), 385);
    // The start, the turns and the 12 activity results are each a recorded commit.
    assert!(
        commits() - before >= 13,
        "{} commits recorded",
        commits() - before
    );

    let id = client.start("Chaining", "start").await.unwrap();
    let s = client.wait_for_completion(&id, WAIT).await.unwrap();
    assert_eq!(s.output_as::<String>().unwrap(), "start,F1,F2,F3,F4");
    worker.shutdown().await;
    drop_schema(&options.schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_hub_complete_every_instance_once() {
    let options = fresh_options().await;
    // Two stores: as two processes would have, each with its own pool and listener.
    let first = worker(store(&options).await);
    let second = worker(store(&options).await);
    let clients = [first.client(), second.client()];
    let mut expected = Vec::new();
    for i in 0..50u64 {
        let client = &clients[i as usize % 2];
        if i % 2 == 0 {
            let n = i % 10 + 1;
            let id = client.start("FanOutFanIn", n).await.unwrap();
            expected.push((id, serde_json::json!((1..=n).map(|x| x * x).sum::<u64>())));
        } else {
            let id = client.start("Chaining", format!("s{i}")).await.unwrap();
            expected.push((id, serde_json::json!(format!("s{i},F1,F2,F3,F4"))));
        }
    }
    for (i, (id, output)) in expected.iter().enumerate() {
        let client = &clients[(i + 1) % 2];
        let s = client.wait_for_completion(id, WAIT).await.unwrap();
        assert_eq!(s.status, RuntimeStatus::Completed, "{id}: {:?}", s.failure);
        let got: serde_json::Value = s.output_as().unwrap();
        assert_eq!(&got, output, "{id}");
        let completions = client
            .history(id)
            .await
            .unwrap()
            .iter()
            .filter(|e| matches!(e.kind, EventKind::ExecutionCompleted { .. }))
            .count();
        assert_eq!(completions, 1, "{id} completed exactly once");
    }
    first.shutdown().await;
    second.shutdown().await;
    drop_schema(&options.schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_opens_postgres_urls() {
    let options = fresh_options().await;
    let url = crate::support::url_with(&format!("schema={}", options.schema));
    let store = durable::connect(&url).await.unwrap();
    assert!(
        store.describe().starts_with("postgres("),
        "{}",
        store.describe()
    );
    assert!(
        durable::open_store(&url).is_err(),
        "PostgreSQL needs the async opener"
    );
    let err = durable::connect("postgres://h/db?schema=Nope")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("schema"), "{err}");
    assert!(durable::connect("memory:").await.is_ok());
    drop(store);
    drop_schema(&options.schema).await;
}
