//! Durable entities end to end on SQLite: signals from clients, calls and critical sections from
//! orchestrations, failures and the entity's view from outside.

use std::time::Duration;

use durable::prelude::*;
use durable::{EntityState, RuntimeStatus, WorkerOptions};
use futures::future::join_all;

use crate::sqlite_store;

const WAIT: Duration = Duration::from_secs(30);

fn fast() -> WorkerOptions {
    WorkerOptions {
        idle_poll: Duration::from_millis(100),
        ..Default::default()
    }
}

/// Every turn replays the history from the store: no live orchestrations kept.
fn replaying() -> WorkerOptions {
    WorkerOptions {
        cache_capacity: 0,
        ..fast()
    }
}

/// A counter: `add` (by the input), `get`, `set`, `reset`, `fail` (an error after changing the state,
/// which must not stick) and `panic`.
fn counter(ctx: &mut EntityContext) -> Result<i64, Error> {
    let value: i64 = ctx.state_or_default()?;
    match ctx.operation() {
        "add" => {
            let by: i64 = ctx.input()?;
            ctx.set_state(&(value + by))?;
            Ok(value + by)
        }
        "get" => Ok(value),
        "set" => {
            let to: i64 = ctx.input()?;
            ctx.set_state(&to)?;
            Ok(to)
        }
        "reset" => {
            ctx.delete_state();
            Ok(0)
        }
        "fail" => {
            ctx.set_state(&-1000)?;
            Err(Error::new("CounterError", "refused"))
        }
        "panic" => panic!("the counter broke"),
        other => Err(Error::new(
            "UnknownOperation",
            format!("no operation '{other}'"),
        )),
    }
}

fn key(k: &str) -> EntityId {
    EntityId::new("Counter", k)
}

/// Polls the entity until `done` holds for it, failing with `what` after [`WAIT`].
async fn wait_for(
    client: &Client,
    id: &EntityId,
    what: &str,
    done: impl Fn(&EntityState) -> bool,
) -> EntityState {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let e = client.get_entity(id).await.unwrap();
        if let Some(e) = e.as_ref().filter(|e| done(e)) {
            return e.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "entity {id} never {what}: {e:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for_state(client: &Client, id: &EntityId, want: i64) -> EntityState {
    let want = want.to_string();
    wait_for(client, id, &format!("reached {want}"), |e| {
        e.state.as_deref() == Some(want.as_str())
    })
    .await
}

#[tokio::test]
async fn signals_from_a_client_apply_in_order() {
    let worker = Worker::builder(sqlite_store())
        .options(fast())
        .entity("Counter", counter)
        .start();
    let client = worker.client();
    let id = key("signals");
    assert!(client.get_entity(&id).await.unwrap().is_none());
    for i in 1..=100 {
        client.signal_entity(&id, "add", i).await.unwrap();
    }
    let e = wait_for_state(&client, &id, 5050).await;
    assert_eq!((e.name.as_str(), e.key.as_str()), ("counter", "signals"));
    assert_eq!(e.locked_by, None);
    assert_eq!(e.backlog, 0);

    // A failing operation leaves the state as it was; the entity keeps working.
    client.signal_entity(&id, "fail", ()).await.unwrap();
    client.signal_entity(&id, "panic", ()).await.unwrap();
    client.signal_entity(&id, "add", 1).await.unwrap();
    wait_for_state(&client, &id, 5051).await;

    // Deleting the state makes the entity disappear from listings of stateful entities.
    client.signal_entity(&id, "reset", ()).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while client
        .get_entity(&id)
        .await
        .unwrap()
        .unwrap()
        .state
        .is_some()
    {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let listed = client
        .query_entities(Some("counter"), false, None, None)
        .await
        .unwrap();
    assert!(listed.items.iter().all(|e| e.id != id.to_string()));
    let all = client
        .query_entities(Some("counter"), true, None, None)
        .await
        .unwrap();
    assert!(all.items.iter().any(|e| e.id == id.to_string()));
    worker.shutdown().await;
}

#[tokio::test]
async fn scheduled_signals_wait_for_their_time() {
    let worker = Worker::builder(sqlite_store())
        .options(fast())
        .entity("Counter", counter)
        .start();
    let client = worker.client();
    let id = key("later");
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(600);
    client
        .signal_entity_json(&id, "add", Some("7".into()), Some(at))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let early = client.get_entity(&id).await.unwrap();
    assert!(
        early.as_ref().is_none_or(|e| e.state.is_none()),
        "applied before its time: {early:?}"
    );
    wait_for_state(&client, &id, 7).await;
    assert!(chrono::Utc::now() >= at);
    worker.shutdown().await;
}

async fn uses_counter(ctx: OrchestrationContext, k: String) -> Result<Vec<String>, Error> {
    let id = key(&k);
    ctx.signal_entity(&id, "add", 5);
    let after: i64 = ctx.call_entity(&id, "add", 10).await?;
    let mut seen = vec![after.to_string()];
    match ctx.call_entity::<_, i64>(&id, "fail", ()).await {
        Ok(v) => seen.push(format!("unexpected {v}")),
        Err(e) => seen.push(e.to_string()),
    }
    let missing = EntityId::new("NoSuchEntity", "x");
    match ctx.call_entity::<_, i64>(&missing, "get", ()).await {
        Ok(v) => seen.push(format!("unexpected {v}")),
        Err(e) => seen.push(e.to_string()),
    }
    let now: i64 = ctx.call_entity(&id, "get", ()).await?;
    seen.push(now.to_string());
    Ok(seen)
}

#[tokio::test]
async fn orchestrations_call_and_signal_entities() {
    let worker = Worker::builder(sqlite_store())
        .options(replaying())
        .entity("Counter", counter)
        .orchestration("UsesCounter", uses_counter)
        .start();
    let client = worker.client();
    let id = client.start("UsesCounter", "calls").await.unwrap();
    let done = client.wait_for_completion(&id, WAIT).await.unwrap();
    assert_eq!(done.status, RuntimeStatus::Completed, "{:?}", done.failure);
    let seen: Vec<String> = done.output_as().unwrap();
    assert_eq!(seen[0], "15", "the signal was applied before the call");
    assert!(seen[1].contains("refused"), "{}", seen[1]);
    assert!(
        seen[2].contains("no entity named 'nosuchentity'") && seen[2].contains("counter"),
        "{}",
        seen[2]
    );
    assert_eq!(seen[3], "15", "the failed operation changed nothing");
    worker.shutdown().await;
}

/// Reads two counters, then sets each to one more, holding both locks.
async fn transfer(ctx: OrchestrationContext, rounds: u32) -> Result<(), Error> {
    let (a, b) = (key("a"), key("b"));
    for _ in 0..rounds {
        let section = ctx.lock_entities(&[b.clone(), a.clone()]).await;
        let x: i64 = ctx.call_entity(&a, "get", ()).await?;
        let y: i64 = ctx.call_entity(&b, "get", ()).await?;
        ctx.call_entity::<_, i64>(&a, "set", x + 1).await?;
        ctx.call_entity::<_, i64>(&b, "set", y + 1).await?;
        section.release();
    }
    Ok(())
}

/// Increments by a read and a write inside a critical section: without the lock, concurrent
/// orchestrations would lose updates.
async fn increment_locked(ctx: OrchestrationContext, rounds: u32) -> Result<(), Error> {
    let id = key("shared");
    for _ in 0..rounds {
        let section = ctx.lock_entities(std::slice::from_ref(&id)).await;
        let value: i64 = ctx.call_entity(&id, "get", ()).await?;
        ctx.call_entity::<_, i64>(&id, "set", value + 1).await?;
        section.release();
    }
    Ok(())
}

#[tokio::test]
async fn critical_sections_exclude_each_other() {
    let worker = Worker::builder(sqlite_store())
        .options(fast())
        .entity("Counter", counter)
        .orchestration("IncrementLocked", increment_locked)
        .orchestration("Transfer", transfer)
        .start();
    let client = worker.client();
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(client.start("IncrementLocked", 100u32).await.unwrap());
    }
    for _ in 0..4 {
        ids.push(client.start("Transfer", 25u32).await.unwrap());
    }
    // Signals arriving while sections hold the lock wait for them, then apply.
    for _ in 0..50 {
        client
            .signal_entity(&key("shared"), "add", 1)
            .await
            .unwrap();
    }
    let done = join_all(
        ids.iter()
            .map(|id| client.wait_for_completion(id, WAIT * 4)),
    )
    .await;
    for d in done {
        let d = d.unwrap();
        assert_eq!(d.status, RuntimeStatus::Completed, "{:?}", d.failure);
    }
    // The last holder's release is a message of its own, applied after the holder completed.
    wait_for(
        &client,
        &key("shared"),
        "ended at 1050, unlocked and idle",
        |e| e.state.as_deref() == Some("1050") && e.locked_by.is_none() && e.backlog == 0,
    )
    .await;
    wait_for_state(&client, &key("a"), 100).await;
    wait_for_state(&client, &key("b"), 100).await;
    worker.shutdown().await;
}

/// Takes the lock and returns without releasing it.
async fn forgets_to_release(ctx: OrchestrationContext, _: ()) -> Result<(), Error> {
    let _section = ctx.lock_entities(&[key("forgotten")]).await;
    ctx.call_entity::<_, i64>(&key("forgotten"), "add", 1)
        .await?;
    Ok(())
}

async fn locks_nothing(ctx: OrchestrationContext, _: ()) -> Result<(), Error> {
    ctx.lock_entities(&[]).await.release();
    Ok(())
}

#[tokio::test]
async fn locks_are_released_when_the_orchestration_ends() {
    let worker = Worker::builder(sqlite_store())
        .options(replaying())
        .entity("Counter", counter)
        .orchestration("ForgetsToRelease", forgets_to_release)
        .orchestration("LocksNothing", locks_nothing)
        .start();
    let client = worker.client();
    let id = client.start("ForgetsToRelease", ()).await.unwrap();
    let done = client.wait_for_completion(&id, WAIT).await.unwrap();
    assert_eq!(done.status, RuntimeStatus::Completed, "{:?}", done.failure);
    // A signal sent after the orchestration ended is not held back by a stale lock.
    client
        .signal_entity(&key("forgotten"), "add", 1)
        .await
        .unwrap();
    let e = wait_for_state(&client, &key("forgotten"), 2).await;
    assert_eq!(e.locked_by, None);

    let id = client.start("LocksNothing", ()).await.unwrap();
    let done = client.wait_for_completion(&id, WAIT).await.unwrap();
    assert_eq!(done.status, RuntimeStatus::Failed);
    let failure = done.failure.unwrap();
    assert!(
        failure.error_message.contains("at least one entity"),
        "{failure}"
    );
    worker.shutdown().await;
}

/// Locks the counters of the given keys, adds one to each, then waits for an event forever
/// (or fails at once with `fail`).
async fn holds(ctx: OrchestrationContext, (keys, fail): (Vec<String>, bool)) -> Result<(), Error> {
    let ids: Vec<EntityId> = keys.iter().map(|k| key(k)).collect();
    let _section = ctx.lock_entities(&ids).await;
    for id in &ids {
        ctx.call_entity::<_, i64>(id, "add", 1).await?;
    }
    if fail {
        return Err(Error::new("Refused", "failing inside a critical section"));
    }
    ctx.wait_for_event::<()>("go").await?;
    Ok(())
}

async fn wait_for_backlog(client: &Client, id: &EntityId, want: usize) {
    wait_for(client, id, &format!("had {want} waiting"), |e| {
        e.backlog == want
    })
    .await;
}

#[tokio::test]
async fn terminated_and_failed_holders_release_their_locks() {
    let worker = Worker::builder(sqlite_store())
        .options(fast())
        .entity("Counter", counter)
        .orchestration("Holds", holds)
        .start();
    let client = worker.client();
    let start = |keys: &[&str], fail: bool| {
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        let client = client.clone();
        async move { client.start("Holds", (keys, fail)).await.unwrap() }
    };

    // Failing inside the section releases it.
    let failed = start(&["f"], true).await;
    let done = client.wait_for_completion(&failed, WAIT).await.unwrap();
    assert_eq!(done.status, RuntimeStatus::Failed);
    client.signal_entity(&key("f"), "add", 1).await.unwrap();
    wait_for_state(&client, &key("f"), 2).await;

    // A terminated holder releases its lock: signals waiting for it apply.
    let holder = start(&["z"], false).await;
    wait_for_state(&client, &key("z"), 1).await;
    // This one gets w, then waits at z behind the holder.
    let waiter = start(&["w", "z"], false).await;
    wait_for_backlog(&client, &key("z"), 1).await;
    assert!(
        client
            .get_entity(&key("w"))
            .await
            .unwrap()
            .unwrap()
            .locked_by
            .is_some()
    );
    client.signal_entity(&key("z"), "add", 10).await.unwrap();
    wait_for_backlog(&client, &key("z"), 2).await;

    // The waiter ends while its request waits at z: w is unlocked, and z will let the request
    // pass once the holder is gone, without locking.
    client.terminate(&waiter, "stop", false).await.unwrap();
    client.wait_for_completion(&waiter, WAIT).await.unwrap();
    client.signal_entity(&key("w"), "add", 1).await.unwrap();
    wait_for_state(&client, &key("w"), 1).await;

    client.terminate(&holder, "stop", false).await.unwrap();
    client.wait_for_completion(&holder, WAIT).await.unwrap();
    let z = wait_for_state(&client, &key("z"), 11).await;
    assert_eq!((z.locked_by, z.backlog), (None, 0));
    client.signal_entity(&key("z"), "add", 1).await.unwrap();
    wait_for_state(&client, &key("z"), 12).await;
    worker.shutdown().await;
}
