//! Lifecycle events, the replay-safe logger and metrics.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use durable::WorkerOptions;
use durable::prelude::*;
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

use crate::sqlite_store;

#[derive(Clone, Debug)]
struct Captured {
    target: String,
    fields: BTreeMap<String, String>,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

/// One capturing subscriber for the whole test process (thread-local subscribers race with the
/// callsite cache when tests run in parallel); tests pick their events by instance id.
fn capture() -> &'static Capture {
    static CAPTURE: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry().with(
            capture.clone().with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target("durable", tracing::Level::DEBUG),
            ),
        );
        tracing::subscriber::set_global_default(subscriber).expect("the first subscriber");
        capture
    })
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(Captured {
            target: event.metadata().target().to_string(),
            fields,
        });
    }
}

async fn logged(ctx: OrchestrationContext, n: u32) -> Result<u32, Error> {
    for i in 0..n {
        let _: u32 = ctx.call_activity("Echo", i).await?;
        ctx.log().info(format!("finished step {i}"));
    }
    Ok(n)
}

#[tokio::test]
async fn lifecycle_events_and_replay_safe_logging() {
    let capture = capture();

    // No cache: every turn replays the history from the start, so a naive logger would repeat.
    let options = WorkerOptions {
        cache_capacity: 0,
        idle_poll: Duration::from_millis(50),
        ..Default::default()
    };
    let worker = Worker::builder(sqlite_store())
        .options(options)
        .orchestration("Logged", logged)
        .activity("Echo", |_, x: u32| async move { Ok::<_, Error>(x) })
        .start();
    let client = worker.client();
    let id = client.start("Logged", 4u32).await.unwrap();
    client
        .wait_for_completion(&id, Duration::from_secs(20))
        .await
        .unwrap();
    worker.shutdown().await;

    let events = capture.0.lock().unwrap().clone();
    let mine: Vec<&Captured> = events
        .iter()
        .filter(|e| e.fields.get("instance_id").map(String::as_str) == Some(id.as_str()))
        .collect();
    for i in 0..4 {
        let lines = mine
            .iter()
            .filter(|e| e.target == "durable::orchestration")
            .filter(|e| {
                e.fields.get("message").map(String::as_str)
                    == Some(format!("finished step {i}").as_str())
            })
            .count();
        assert_eq!(lines, 1, "step {i} logged once despite the replays");
    }
    let lifecycle: Vec<&str> = mine
        .iter()
        .filter(|e| e.target == "durable::lifecycle")
        .filter_map(|e| e.fields.get("event").map(String::as_str))
        .collect();
    for expected in [
        "started",
        "activity_scheduled",
        "activity_completed",
        "completed",
    ] {
        assert!(
            lifecycle.contains(&expected),
            "no '{expected}' event in {lifecycle:?}"
        );
    }
    assert_eq!(
        lifecycle
            .iter()
            .filter(|e| **e == "activity_scheduled")
            .count(),
        4
    );
    for e in mine.iter().filter(|e| e.target == "durable::lifecycle") {
        assert_eq!(e.fields.get("is_replay").map(String::as_str), Some("false"));
        assert!(e.fields.contains_key("name"));
        assert!(e.fields.contains_key("execution_id") && e.fields.contains_key("seq"));
    }
}

#[tokio::test]
async fn metrics_count_turns_and_activities() {
    let m = durable::core::metrics::global();
    let (turns, activities) = (m.turns.get(), m.activities_completed.get());
    let worker = Worker::builder(sqlite_store())
        .orchestration("Logged", logged)
        .activity("Echo", |_, x: u32| async move { Ok::<_, Error>(x) })
        .start();
    let client = worker.client();
    let id = client.start("Logged", 3u32).await.unwrap();
    client
        .wait_for_completion(&id, Duration::from_secs(20))
        .await
        .unwrap();
    worker.shutdown().await;
    // Other tests run in parallel in this process: the counters grew by at least this run.
    assert!(m.turns.get() >= turns + 4);
    assert!(m.activities_completed.get() >= activities + 3);
    let mut text = String::new();
    m.render(&mut text);
    assert!(text.contains("# TYPE durable_turns_total counter"));
    assert!(text.contains("durable_store_batch_size_count"));
}
