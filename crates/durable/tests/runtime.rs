//! The runtime and the client, end to end on SQLite.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use durable::prelude::*;
use durable::{
    ClientError, EventKind, InstanceQuery, PurgeFilter, RuntimeStatus, StartRequest, WorkerOptions,
};
use futures::future::join_all;

use crate::sqlite_store;

const WAIT: Duration = Duration::from_secs(20);

fn fast() -> WorkerOptions {
    WorkerOptions {
        idle_poll: Duration::from_millis(100),
        ..Default::default()
    }
}

async fn echo(_: ActivityContext, input: String) -> Result<String, Error> {
    Ok(input)
}

async fn calls_missing(ctx: OrchestrationContext, _: ()) -> Result<String, Error> {
    match ctx.call_activity::<_, String>("NoSuchActivity", ()).await {
        Ok(_) => Ok("unexpected".into()),
        Err(e) => Ok(e.to_string()),
    }
}

#[tokio::test]
async fn unknown_names_fail_clearly() {
    let worker = Worker::builder(sqlite_store())
        .options(fast())
        .orchestration("CallsMissing", calls_missing)
        .activity("Echo", echo)
        .start();
    let client = worker.client();

    let id = client.start("NoSuchOrchestration", ()).await.unwrap();
    let s = client.wait_for_completion(&id, WAIT).await.unwrap();
    assert_eq!(s.status, RuntimeStatus::Failed);
    let f = s.failure.unwrap();
    assert_eq!(f.error_type, "OrchestrationNotFound");
    assert!(
        f.error_message.contains("'NoSuchOrchestration'"),
        "{}",
        f.error_message
    );
    assert!(
        f.error_message.contains("CallsMissing"),
        "lists the registered names"
    );

    let id = client.start("CallsMissing", ()).await.unwrap();
    let s = client.wait_for_completion(&id, WAIT).await.unwrap();
    assert_eq!(
        s.status,
        RuntimeStatus::Completed,
        "the orchestration handled the error"
    );
    let message: String = s.output_as().unwrap();
    assert!(
        message.contains("no activity named 'NoSuchActivity'"),
        "{message}"
    );
    worker.shutdown().await;
}

#[tokio::test]
async fn bad_starts_are_rejected_with_typed_errors() {
    let client = Client::new(sqlite_store());
    let err = client
        .start_with(StartRequest::new("X").input_json("{not json"))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidInput(_)), "{err:?}");
    assert_eq!(err.code().as_str(), "invalid_input");

    for bad in ["".to_string(), "x".repeat(257), "a\u{0}b".to_string()] {
        let err = client
            .start_with(StartRequest::new("X").instance_id(bad))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::InvalidInstanceId(_)), "{err:?}");
    }
    let ok = client
        .start_with(StartRequest::new("X").instance_id("x".repeat(256)))
        .await;
    assert!(ok.is_ok());

    let big = format!("\"{}\"", "a".repeat(3 * 1024 * 1024));
    let err = client
        .start_with(StartRequest::new("X").input_json(big))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::PayloadTooLarge { .. }),
        "{err:?}"
    );

    let err = client.raise_event("ghost", "E", 1).await.unwrap_err();
    assert!(matches!(err, ClientError::NotFound(_)), "{err:?}");
}

async fn waits_for_go(ctx: OrchestrationContext, _: ()) -> Result<String, Error> {
    ctx.set_custom_status("waiting");
    let v: String = ctx.wait_for_event("Go").await?;
    Ok(v)
}

#[tokio::test]
async fn duplicate_ids_suspend_resume_terminate() {
    let worker = Worker::builder(sqlite_store())
        .options(fast())
        .orchestration("WaitsForGo", waits_for_go)
        .start();
    let client = worker.client();
    let start = || StartRequest::new("WaitsForGo").instance_id("w1");

    client.start_with(start()).await.unwrap();
    let err = client.start_with(start()).await.unwrap_err();
    assert!(
        matches!(err, ClientError::AlreadyExists(_)),
        "a running id is refused"
    );

    let s = client.wait_for_start("w1", WAIT).await.unwrap();
    assert_eq!(s.status, RuntimeStatus::Running);
    client.suspend("w1", Some("pause")).await.unwrap();
    wait_status(&client, "w1", RuntimeStatus::Suspended).await;
    client.raise_event("w1", "Go", "now").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        client.status("w1").await.unwrap().unwrap().status,
        RuntimeStatus::Suspended
    );
    client.resume("w1", None).await.unwrap();
    let s = client.wait_for_completion("w1", WAIT).await.unwrap();
    assert_eq!(s.status, RuntimeStatus::Completed);
    assert_eq!(s.output_as::<String>().unwrap(), "now");
    assert_eq!(s.custom_status_as::<String>().unwrap(), "waiting");

    // A finished id may be reused; terminate ends a running one with the given output.
    client.start_with(start()).await.unwrap();
    client.wait_for_start("w1", WAIT).await.unwrap();
    client
        .terminate("w1", "stopped by test", false)
        .await
        .unwrap();
    let s = client.wait_for_completion("w1", WAIT).await.unwrap();
    assert_eq!(s.status, RuntimeStatus::Terminated);
    assert_eq!(s.output_as::<String>().unwrap(), "stopped by test");
    let err = client.terminate("w1", "again", false).await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidState(_)), "{err:?}");
    let err = client.raise_event("w1", "Go", 1).await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidState(_)), "{err:?}");

    let err = client
        .wait_for_completion("missing", Duration::from_millis(10))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::NotFound(_)));
    client.start_with(start()).await.unwrap();
    let err = client
        .wait_for_completion("w1", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Timeout(..)), "{err:?}");
    worker.shutdown().await;
}

async fn wait_status(client: &Client, id: &str, status: RuntimeStatus) {
    for _ in 0..200 {
        if client.status(id).await.unwrap().unwrap().status == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{id} never reached {status}");
}

async fn parent(ctx: OrchestrationContext, n: u32) -> Result<Vec<String>, Error> {
    let children = (0..n).map(|i| ctx.call_sub_orchestration::<_, String>("Child", i));
    let mut out = Vec::new();
    for r in join_all(children).await {
        out.push(match r {
            Ok(v) => v,
            Err(e) => format!("failed: {}", e.message()),
        });
    }
    Ok(out)
}

async fn child(ctx: OrchestrationContext, i: u32) -> Result<String, Error> {
    if i == 1 {
        durable::bail!("child {i} refuses");
    }
    let parent = ctx.parent_instance_id().unwrap_or_default();
    Ok(format!("{i} of {parent}"))
}

#[tokio::test]
async fn sub_orchestrations_report_results_and_failures() {
    let worker = Worker::builder(sqlite_store())
        .options(fast())
        .orchestration("Parent", parent)
        .orchestration("Child", child)
        .start();
    let client = worker.client();
    let id = client
        .start_with(StartRequest::new("Parent").instance_id("p").input(&3))
        .await
        .unwrap();
    let s = client.wait_for_completion(&id, WAIT).await.unwrap();
    assert_eq!(
        s.output_as::<Vec<String>>().unwrap(),
        ["0 of p", "failed: child 1 refuses", "2 of p"]
    );
    let c = client.status("p:0001").await.unwrap().unwrap();
    assert_eq!(c.parent_instance_id(), Some("p"));
    assert_eq!(
        client.purge("p", true).await.unwrap(),
        4,
        "parent and three children"
    );
    worker.shutdown().await;
}

async fn nested(ctx: OrchestrationContext, depth: u32) -> Result<(), Error> {
    if depth == 0 {
        let _: () = ctx.wait_for_event("never").await?;
        return Ok(());
    }
    Ok(ctx.call_sub_orchestration("Nested", depth - 1).await?)
}

#[tokio::test]
async fn recursive_terminate_reaches_grandchildren() {
    let worker = Worker::builder(sqlite_store())
        .options(fast())
        .orchestration("Nested", nested)
        .start();
    let client = worker.client();
    client
        .start_with(StartRequest::new("Nested").instance_id("root").input(&2))
        .await
        .unwrap();
    for _ in 0..400 {
        if client.status("root:0001:0001").await.unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    client.wait_for_start("root:0001:0001", WAIT).await.unwrap();
    client.terminate("root", "cleanup", true).await.unwrap();
    for id in ["root", "root:0001", "root:0001:0001"] {
        let s = client.wait_for_completion(id, WAIT).await.unwrap();
        assert_eq!(s.status, RuntimeStatus::Terminated, "{id}");
    }
    worker.shutdown().await;
}

#[tokio::test]
async fn retries_and_rewind_rerun_only_failed_work() {
    let failing = Arc::new(AtomicBool::new(true));
    let attempts = Arc::new(AtomicUsize::new(0));
    let steady_runs = Arc::new(AtomicUsize::new(0));
    let (f, a, s) = (failing.clone(), attempts.clone(), steady_runs.clone());
    let worker = Worker::builder(sqlite_store())
        .options(fast())
        .orchestration("Flaky", |ctx: OrchestrationContext, _: ()| async move {
            let first: String = ctx.call_activity("Steady", "ok".to_string()).await?;
            let policy =
                RetryPolicy::new(3, Duration::from_millis(100)).with_backoff_coefficient(2.0);
            let second: String = ctx.call_activity_with_retry("Fragile", (), policy).await?;
            Ok::<_, Error>(format!("{first}+{second}"))
        })
        .activity("Steady", move |_, x: String| {
            let s = s.clone();
            async move {
                s.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Error>(x)
            }
        })
        .activity("Fragile", move |_, _: ()| {
            let (f, a) = (f.clone(), a.clone());
            async move {
                a.fetch_add(1, Ordering::SeqCst);
                if f.load(Ordering::SeqCst) {
                    durable::bail!("still broken");
                }
                Ok("fixed".to_string())
            }
        })
        .start();
    let client = worker.client();
    let id = client.start("Flaky", ()).await.unwrap();
    let st = client.wait_for_completion(&id, WAIT).await.unwrap();
    assert_eq!(st.status, RuntimeStatus::Failed);
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        3,
        "three attempts, then give up"
    );
    let failure = st.failure.unwrap();
    assert_eq!(failure.error_type, "TaskFailedError");
    assert!(
        failure.error_message.ends_with("still broken"),
        "{}",
        failure.error_message
    );

    let err = client.rewind("ghost", None).await.unwrap_err();
    assert!(matches!(err, ClientError::NotFound(_)));
    failing.store(false, Ordering::SeqCst);
    client.rewind(&id, Some("fixed the bug")).await.unwrap();
    let st = client.wait_for_completion(&id, WAIT).await.unwrap();
    assert_eq!(st.status, RuntimeStatus::Completed, "{:?}", st.failure);
    assert_eq!(st.output_as::<String>().unwrap(), "ok+fixed");
    assert_eq!(
        steady_runs.load(Ordering::SeqCst),
        1,
        "successful work is not re-run"
    );
    let err = client.rewind(&id, None).await.unwrap_err();
    assert!(
        matches!(err, ClientError::InvalidState(_)),
        "only Failed instances rewind"
    );
    worker.shutdown().await;
}

#[tokio::test]
async fn restart_query_purge_and_history() {
    let worker = Worker::builder(sqlite_store())
        .options(fast())
        .orchestration("Echo", |ctx: OrchestrationContext, s: String| async move {
            Ok::<_, Error>(ctx.call_activity::<_, String>("Echo", s).await?)
        })
        .activity("Echo", echo)
        .start();
    let client = worker.client();
    for i in 0..5 {
        let request = StartRequest::new("Echo")
            .instance_id(format!("e{i}"))
            .input(&format!("v{i}"));
        client.start_with(request).await.unwrap();
    }
    for i in 0..5 {
        client
            .wait_for_completion(&format!("e{i}"), WAIT)
            .await
            .unwrap();
    }
    let err = client.restart("ghost", false).await.unwrap_err();
    assert!(matches!(err, ClientError::NotFound(_)));
    assert_eq!(client.restart("e0", false).await.unwrap(), "e0");
    let again = client.wait_for_completion("e0", WAIT).await.unwrap();
    assert_eq!(again.output_as::<String>().unwrap(), "v0");
    let new_id = client.restart("e1", true).await.unwrap();
    assert_ne!(new_id, "e1");
    let copy = client.wait_for_completion(&new_id, WAIT).await.unwrap();
    assert_eq!(copy.output_as::<String>().unwrap(), "v1");

    let history = client.history("e2").await.unwrap();
    let kinds: Vec<&str> = history.iter().map(|e| e.kind.type_name()).collect();
    assert_eq!(
        kinds,
        [
            "OrchestratorStarted",
            "ExecutionStarted",
            "TaskScheduled",
            "OrchestratorStarted",
            "TaskCompleted",
            "ExecutionCompleted"
        ]
    );

    let page = client
        .query(&InstanceQuery {
            instance_id_prefix: Some("e".into()),
            page_size: Some(2),
            statuses: vec![RuntimeStatus::Completed],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    assert!(page.continuation_token.is_some());
    let purged = client.purge_by(&PurgeFilter::default()).await.unwrap();
    assert_eq!(purged, 6);
    assert!(client.status("e3").await.unwrap().is_none());
    worker.shutdown().await;
}

#[tokio::test]
async fn cached_instances_are_not_replayed_from_scratch() {
    let starts = Arc::new(AtomicUsize::new(0));
    let counted = starts.clone();
    let worker = Worker::builder(sqlite_store())
        .options(fast())
        .orchestration("Long", move |ctx: OrchestrationContext, n: u32| {
            // Runs once per (re)build of the orchestration from history.
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                let mut acc = String::new();
                for i in 0..n {
                    acc = ctx.call_activity("Echo", format!("{acc}{i}")).await?;
                }
                Ok::<_, Error>(acc)
            }
        })
        .activity("Echo", echo)
        .start();
    let client = worker.client();
    let id = client.start("Long", 30u32).await.unwrap();
    let s = client.wait_for_completion(&id, WAIT).await.unwrap();
    assert_eq!(s.output_as::<String>().unwrap().len(), 50);
    assert_eq!(starts.load(Ordering::SeqCst), 1, "31 turns, one build");
    worker.shutdown().await;
}

#[tokio::test]
async fn idle_instances_leave_the_cache_and_resume_from_history() {
    let builds = Arc::new(AtomicUsize::new(0));
    let counted = builds.clone();
    let worker = Worker::builder(sqlite_store())
        .options(WorkerOptions {
            cache_idle_timeout: Some(Duration::from_secs(1)),
            ..fast()
        })
        .orchestration(
            "WaitsThenEchoes",
            move |ctx: OrchestrationContext, _: ()| {
                counted.fetch_add(1, Ordering::SeqCst);
                async move {
                    let data: String = ctx.wait_for_event("Go").await?;
                    Ok::<String, Error>(ctx.call_activity("Echo", data).await?)
                }
            },
        )
        .activity("Echo", echo)
        .start();
    let client = worker.client();
    let id = client.start("WaitsThenEchoes", ()).await.unwrap();
    let cached = |want: usize| {
        let worker = &worker;
        async move {
            let deadline = tokio::time::Instant::now() + WAIT;
            while worker.cached_orchestrations() != want {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the cache never held {want}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    // Its first turn leaves it cached, waiting; idle past the timeout, it is dropped.
    cached(1).await;
    cached(0).await;
    client.raise_event(&id, "Go", "back").await.unwrap();
    let done = client.wait_for_completion(&id, WAIT).await.unwrap();
    assert_eq!(done.status, RuntimeStatus::Completed, "{:?}", done.failure);
    assert_eq!(done.output_as::<String>().unwrap(), "back");
    assert_eq!(
        builds.load(Ordering::SeqCst),
        2,
        "built at the start, rebuilt from history after leaving the cache, then cached"
    );
    worker.shutdown().await;
}

#[tokio::test]
async fn scheduled_starts_wait_and_early_events_are_kept() {
    let worker = Worker::builder(sqlite_store())
        .options(fast())
        .orchestration("WaitsForGo", waits_for_go)
        .start();
    let client = worker.client();
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(800);
    let request = StartRequest::new("WaitsForGo")
        .instance_id("later")
        .start_at(at);
    client.start_with(request).await.unwrap();
    client.raise_event("later", "Go", "early").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        client.status("later").await.unwrap().unwrap().status,
        RuntimeStatus::Pending
    );
    let s = client.wait_for_completion("later", WAIT).await.unwrap();
    assert_eq!(s.output_as::<String>().unwrap(), "early");
    let started = client.history("later").await.unwrap()[0].timestamp;
    assert!(started >= at, "ran before its scheduled start");
    worker.shutdown().await;
}

#[tokio::test]
async fn panics_fail_cleanly() {
    let worker = Worker::builder(sqlite_store())
        .options(fast())
        .orchestration("Panics", |_ctx: OrchestrationContext, _: ()| async move {
            if true {
                panic!("orchestration bug");
            }
            Ok::<(), Error>(())
        })
        .orchestration(
            "CallsPanicky",
            |ctx: OrchestrationContext, _: ()| async move {
                match ctx.call_activity::<_, ()>("Panicky", ()).await {
                    Ok(()) => Ok::<_, Error>("no".to_string()),
                    Err(e) => Ok(e.details.error_type.clone()),
                }
            },
        )
        .activity("Panicky", |_, _: ()| async move {
            if true {
                panic!("activity bug");
            }
            Ok::<(), Error>(())
        })
        .start();
    let client = worker.client();
    let id = client.start("Panics", ()).await.unwrap();
    let s = client.wait_for_completion(&id, WAIT).await.unwrap();
    assert_eq!(s.status, RuntimeStatus::Failed);
    assert!(
        s.failure
            .unwrap()
            .error_message
            .contains("orchestration bug")
    );
    let id = client.start("CallsPanicky", ()).await.unwrap();
    let s = client.wait_for_completion(&id, WAIT).await.unwrap();
    assert_eq!(s.output_as::<String>().unwrap(), "Panic");
    worker.shutdown().await;
}

#[tokio::test]
async fn continue_as_new_keeps_events_and_history_small() {
    let worker = Worker::builder(sqlite_store())
        .options(fast())
        .orchestration("Sum", |ctx: OrchestrationContext, total: i64| async move {
            let n: i64 = ctx.wait_for_event("add").await?;
            if n == 0 {
                return Ok::<_, Error>(total);
            }
            ctx.continue_as_new(total + n).await
        })
        .start();
    let client = worker.client();
    let id = client.start("Sum", 0).await.unwrap();
    for n in [5, 10, 20, 0] {
        client.raise_event(&id, "add", n).await.unwrap();
    }
    let s = client.wait_for_completion(&id, WAIT).await.unwrap();
    assert_eq!(s.output_as::<i64>().unwrap(), 35);
    assert_eq!(s.input.as_deref(), Some("35"));
    let history = client.history(&id).await.unwrap();
    assert!(
        history.len() <= 6,
        "only the last execution's history is kept: {}",
        history.len()
    );
    assert!(
        history
            .iter()
            .any(|e| matches!(e.kind, EventKind::ExecutionCompleted { .. }))
    );
    worker.shutdown().await;
}
