//! Golden histories: histories of every event kind, recorded by the real runtime and committed
//! under `tests/golden/`. CI replays each with today's code; a change to the engine or the event
//! format that would break instances already in flight fails here.
//!
//! Regenerate (only when a format change is intended) with
//! `UPDATE_GOLDEN=1 cargo test -p durable --test main golden`.

use std::path::PathBuf;
use std::time::Duration;

use durable::prelude::*;
use durable::{EventKind, HistoryEvent, Registry, RuntimeStatus, StartRequest, WorkerOptions};
use futures::future::{Either, select};
use serde::{Deserialize, Serialize};

use crate::sqlite_store;

#[derive(Serialize, Deserialize)]
struct Golden {
    orchestration: String,
    status: RuntimeStatus,
    output: Option<String>,
    history: Vec<HistoryEvent>,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

async fn everything(ctx: OrchestrationContext, _: ()) -> Result<String, Error> {
    let a: String = ctx.call_activity("Echo", "a".to_string()).await?;
    let failed = ctx.call_activity::<_, String>("Fails", ()).await.is_err();
    let child: String = ctx.call_sub_orchestration("Child", 2u32).await?;
    let child_failed = ctx
        .call_sub_orchestration::<_, String>("Child", 0u32)
        .await
        .is_err();
    ctx.send_event("nobody", "Note", 1);
    ctx.sleep(Duration::from_millis(10)).await;
    let timer = ctx.sleep(Duration::from_millis(50));
    let go = ctx.wait_for_event::<String>("Go");
    let raced = match select(go, timer).await {
        Either::Left((v, _)) => v?,
        Either::Right(_) => "timer".into(),
    };
    let after: String = ctx.wait_for_event("Resume").await?;
    Ok(format!(
        "{a} {failed} {child} {child_failed} {raced} {after}"
    ))
}

async fn child(_ctx: OrchestrationContext, n: u32) -> Result<String, Error> {
    if n == 0 {
        durable::bail!("child refuses zero");
    }
    Ok(format!("child {n}"))
}

async fn waits(ctx: OrchestrationContext, _: ()) -> Result<String, Error> {
    Ok(ctx.wait_for_event("Never").await?)
}

async fn generation(ctx: OrchestrationContext, n: u32) -> Result<u32, Error> {
    if n < 2 {
        return ctx.continue_as_new(n + 1).await;
    }
    let _: String = ctx.call_activity("Echo", "last".to_string()).await?;
    Ok(n)
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.add_orchestration("Everything", everything)
        .add_orchestration("Child", child)
        .add_orchestration("Waits", waits)
        .add_orchestration("Generations", generation)
        .add_activity("Echo", |_, s: String| async move { Ok::<_, Error>(s) })
        .add_activity("Fails", |_, _: ()| async move {
            Err::<(), _>(Error::new("Boom", "always fails"))
        });
    r
}

/// Runs the scenarios on the real runtime and writes their histories.
async fn record() {
    let options = WorkerOptions {
        idle_poll: Duration::from_millis(50),
        ..Default::default()
    };
    let worker = Worker::builder(sqlite_store())
        .options(options)
        .registry(&registry())
        .start();
    let client = worker.client();
    let wait = Duration::from_secs(20);
    let start = |name: &str, id: &str| StartRequest::new(name).instance_id(id);

    client
        .start_with(start("Everything", "everything"))
        .await
        .unwrap();
    client.raise_event("everything", "Go", "go").await.unwrap();
    for _ in 0..200 {
        let h = client.history("everything").await.unwrap();
        if h.iter()
            .any(|e| matches!(&e.kind, EventKind::EventRaised { name, .. } if name == "Go"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.suspend("everything", Some("pause")).await.unwrap();
    client
        .raise_event("everything", "Resume", "later")
        .await
        .unwrap();
    client.resume("everything", Some("go on")).await.unwrap();
    client
        .wait_for_completion("everything", wait)
        .await
        .unwrap();

    client
        .start_with(start("Waits", "terminated"))
        .await
        .unwrap();
    client.wait_for_start("terminated", wait).await.unwrap();
    client.terminate("terminated", "stop", false).await.unwrap();
    client
        .wait_for_completion("terminated", wait)
        .await
        .unwrap();

    client
        .start_with(start("Child", "rewound").input(&0u32))
        .await
        .unwrap();
    client.wait_for_completion("rewound", wait).await.unwrap();
    client.rewind("rewound", Some("try again")).await.unwrap();
    client.wait_for_completion("rewound", wait).await.unwrap();

    client
        .start_with(start("Generations", "generations").input(&0u32))
        .await
        .unwrap();
    client
        .wait_for_completion("generations", wait)
        .await
        .unwrap();

    std::fs::create_dir_all(dir()).unwrap();
    for (id, file) in [
        ("everything", "everything"),
        ("everything:0003", "child_completed"),
        ("everything:0004", "child_failed"),
        ("terminated", "terminated"),
        ("rewound", "rewound"),
        ("generations", "continued_as_new"),
    ] {
        let state = client.status(id).await.unwrap().unwrap();
        let golden = Golden {
            orchestration: state.name,
            status: state.status,
            output: state.output,
            history: client.history(id).await.unwrap(),
        };
        let text = serde_json::to_string_pretty(&golden).unwrap() + "\n";
        std::fs::write(dir().join(format!("{file}.json")), text).unwrap();
    }
    worker.shutdown().await;
}

#[tokio::test]
async fn golden_histories_replay_with_todays_code() {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        record().await;
    }
    let registry = registry();
    let mut kinds = std::collections::BTreeSet::new();
    let mut files: Vec<_> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 6,
        "golden files are missing from {}",
        dir().display()
    );
    for path in files {
        let golden: Golden = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{} no longer parses: {e}", path.display()));
        kinds.extend(golden.history.iter().map(|e| e.kind.type_name()));
        let handler = registry
            .orchestration(&golden.orchestration)
            .unwrap()
            .clone();
        // Replay everything but the completion, then deliver nothing: the code must end exactly
        // as recorded without issuing anything new.
        let end = golden
            .history
            .iter()
            .rposition(|e| matches!(e.kind, EventKind::OrchestratorStarted))
            .unwrap();
        let mut replayer =
            durable::core::Replayer::new(handler, "golden", "golden", &golden.orchestration);
        replayer.replay(&golden.history[..end]);
        let turn: Vec<HistoryEvent> = golden.history[end..]
            .iter()
            .filter(|e| e.event_id < 0 && !matches!(e.kind, EventKind::ExecutionCompleted { .. }))
            .cloned()
            .collect();
        let output = replayer.run_turn(&turn);
        match output.completion() {
            Some(durable::core::ActionKind::CompleteOrchestration {
                orchestration_status,
                result,
                failure_details,
                ..
            }) => {
                assert_eq!(
                    *orchestration_status,
                    golden.status,
                    "{}: {failure_details:?}",
                    path.display()
                );
                assert_eq!(result, &golden.output, "{}", path.display());
            }
            other => panic!(
                "{}: the replay did not end as recorded: {other:?}",
                path.display()
            ),
        }
    }
    for kind in [
        "ExecutionStarted",
        "ExecutionCompleted",
        "ExecutionTerminated",
        "ExecutionSuspended",
        "ExecutionResumed",
        "ExecutionRewound",
        "TaskScheduled",
        "TaskCompleted",
        "TaskFailed",
        "SubOrchestrationInstanceCreated",
        "SubOrchestrationInstanceCompleted",
        "SubOrchestrationInstanceFailed",
        "TimerCreated",
        "TimerFired",
        "OrchestratorStarted",
        "EventSent",
        "EventRaised",
        "GenericEvent",
    ] {
        assert!(
            kinds.contains(kind),
            "no golden history holds a {kind} event"
        );
    }
}
