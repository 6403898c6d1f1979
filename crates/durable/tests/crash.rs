//! Crash safety with a real process kill: a worker process is killed with SIGKILL in the middle
//! of a fan-out of 100 activities; a new process on the same SQLite file finishes it, and no
//! activity whose result had been recorded runs again.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use durable::{EventKind, Store};
use durable_sqlite::{SqliteOptions, SqliteStore};

fn crash_worker() -> PathBuf {
    // target/<profile>/deps/main-HASH -> target/<profile>/examples/crash_worker
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("crash_worker");
    assert!(
        path.exists(),
        "build the crash_worker example first: {}",
        path.display()
    );
    path
}

fn executions(side: &std::path::Path) -> Vec<u64> {
    std::fs::read_to_string(side)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_midway_loses_nothing_and_reruns_nothing_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let side = dir.path().join("executions.log");
    let run = || {
        Command::new(crash_worker())
            .args([db.to_str().unwrap(), side.to_str().unwrap(), "100"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    };

    let mut first = run();
    let started = Instant::now();
    while executions(&side).len() < 30 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the worker made no progress"
        );
        assert!(
            first.try_wait().unwrap().is_none(),
            "the worker exited early"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();

    // What the dead process had durably recorded.
    let recorded: HashSet<u64> = {
        let store = SqliteStore::open(SqliteOptions::file(&db)).unwrap();
        let history = store.read_history("crash").await.unwrap();
        let inputs: HashMap<i32, u64> = history
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::TaskScheduled { input, .. } => {
                    Some((e.event_id, input.as_ref()?.parse().ok()?))
                }
                _ => None,
            })
            .collect();
        history
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::TaskCompleted {
                    task_scheduled_id, ..
                } => inputs.get(task_scheduled_id).copied(),
                _ => None,
            })
            .collect()
    };
    assert!(
        !recorded.is_empty(),
        "the kill came before any result was recorded"
    );
    assert!(
        recorded.len() < 100,
        "the kill came after the fan-out finished"
    );

    let second = run();
    let output = tokio::task::spawn_blocking(move || second.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(output.status.success(), "the second worker failed");
    let sum: u64 = String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(sum, (1..=100u64).map(|x| x * x).sum::<u64>());

    let runs = executions(&side);
    let mut count: HashMap<u64, usize> = HashMap::new();
    for x in &runs {
        *count.entry(*x).or_default() += 1;
    }
    assert_eq!(count.len(), 100, "every activity ran");
    for x in &recorded {
        assert_eq!(
            count[x], 1,
            "activity {x} had a recorded result but ran again"
        );
    }
    let reruns = runs.len() - 100;
    println!(
        "kill -9 after {} recorded results; {} activities re-ran (results not yet recorded at the kill)",
        recorded.len(),
        reruns
    );
}
