//! The runtime on a store that fails calls, loses acknowledgements of successful commits and
//! stalls: every instance still completes with the right output, and no history records a step
//! twice.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use durable::prelude::*;
use durable::{EventKind, RuntimeStatus, SharedStore, StartRequest, WorkerOptions};
use durable_store::{Faults, FaultyStore};
use futures::future::join_all;

use crate::sqlite_store;

async fn mixed(ctx: OrchestrationContext, n: u64) -> Result<u64, Error> {
    let mut x = n;
    for _ in 0..3 {
        x = ctx.call_activity("Inc", x).await?;
    }
    let fan = join_all((0..10).map(|i| ctx.call_activity::<_, u64>("Inc", i))).await;
    let fan: u64 = fan.into_iter().map(|r| r.unwrap_or(0)).sum();
    ctx.sleep(Duration::from_millis(20)).await;
    let bonus: u64 = ctx.wait_for_event("Bonus").await?;
    let child: u64 = ctx.call_sub_orchestration("Double", x).await?;
    Ok(child + fan + bonus)
}

fn expected(n: u64) -> u64 {
    (n + 3) * 2 + (1..=10).sum::<u64>() + 7
}

/// Checks a history: each call number scheduled once and completed at most once.
fn assert_no_duplicates(id: &str, history: &[durable::HistoryEvent]) {
    let mut scheduled = HashSet::new();
    let mut completed = HashSet::new();
    for e in history {
        match &e.kind {
            EventKind::TaskScheduled { .. }
            | EventKind::TimerCreated { .. }
            | EventKind::SubOrchestrationInstanceCreated { .. } => {
                assert!(
                    scheduled.insert(e.event_id),
                    "{id}: call #{} recorded twice",
                    e.event_id
                );
            }
            kind => {
                if let Some(task) = kind.completes_task() {
                    assert!(
                        scheduled.contains(&task),
                        "{id}: result for unscheduled #{task}"
                    );
                    assert!(
                        completed.insert(task),
                        "{id}: result for #{task} recorded twice"
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_survives_injected_faults() {
    let inner = sqlite_store();
    let faults = Faults {
        seed: 7,
        fail: 0.08,
        lost_ack: 0.05,
        slow: 0.03,
        slow_for: Duration::from_millis(30),
    };
    let faulty = Arc::new(FaultyStore::new(inner.clone(), faults));
    let counts = faulty.counts.clone();
    let store: SharedStore = faulty;
    let options = WorkerOptions {
        lock_duration: Duration::from_secs(1),
        idle_poll: Duration::from_millis(50),
        ..Default::default()
    };
    let worker = Worker::builder(store)
        .options(options)
        .orchestration("Mixed", mixed)
        .orchestration("Double", |ctx: OrchestrationContext, x: u64| async move {
            Ok::<_, Error>(ctx.call_activity::<_, u64>("Inc", x).await? * 2 - 2)
        })
        .activity("Inc", |_, x: u64| async move { Ok::<_, Error>(x + 1) })
        .start();
    // The client talks to the store directly: its calls are what a user was acknowledged.
    let client = Client::new(inner);
    let ids: Vec<String> = (0..20).map(|i| format!("mixed-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let request = StartRequest::new("Mixed")
            .instance_id(id.clone())
            .input(&(i as u64));
        client.start_with(request).await.unwrap();
        client.raise_event(id, "Bonus", 7u64).await.unwrap();
    }
    for (i, id) in ids.iter().enumerate() {
        let s = match client
            .wait_for_completion(id, Duration::from_secs(40))
            .await
        {
            Ok(s) => s,
            Err(e) => {
                let st = client.status(id).await.unwrap();
                let h = client.history(id).await.unwrap();
                let stats = client.store().queue_stats().await.unwrap();
                panic!("{id}: {e}\n{st:#?}\n{h:#?}\n{stats:#?}");
            }
        };
        assert_eq!(s.status, RuntimeStatus::Completed, "{id}: {:?}", s.failure);
        assert_eq!(s.output_as::<u64>().unwrap(), expected(i as u64), "{id}");
        assert_no_duplicates(id, &client.history(id).await.unwrap());
        // Calls 1-3 chain, 4-13 fan out, 14 is the timer, 15 the child.
        let child = format!("{id}:000f");
        assert_no_duplicates(&child, &client.history(&child).await.unwrap());
    }
    worker.shutdown().await;
    let (failed, lost, slowed) = (
        counts.failed.load(std::sync::atomic::Ordering::Relaxed),
        counts.lost_acks.load(std::sync::atomic::Ordering::Relaxed),
        counts.slowed.load(std::sync::atomic::Ordering::Relaxed),
    );
    println!("injected: {failed} failed calls, {lost} lost acknowledgements, {slowed} slow calls");
    assert!(failed > 20 && lost > 10, "the faults actually ran");
}
