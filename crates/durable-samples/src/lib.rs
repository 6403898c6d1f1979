//! The sample orchestrations of `durable serve --samples`: the seed's five patterns, with fixed
//! names and results so a newcomer can try them with `curl`.
//!
//! | orchestration | input | result |
//! |---|---|---|
//! | `Chaining` | a string, e.g. `"start"` | `"start,F1,F2,F3,F4"` |
//! | `FanOutFanIn` | n (default 10) | the sum of squares 1..=n (`385` for 10) |
//! | `DoWork` | seconds (default 5) | `"done"` after working that long |
//! | `Counter` | initial value (default 0) | the value when event `operation` = `"end"` arrives |
//! | `Approval` | `{"timeoutSeconds": n}` (default 259200) | `"approved"`, `"rejected"` or `"escalated"` |
//! | `Nested` | a list of strings (default `["a", "b"]`) | each run through `Chaining` as a sub-orchestration |
//!
//! | entity | operations |
//! |---|---|
//! | `Counter` (ids `@counter@KEY`) | `add` (a number), `reset`, `get` (the value), `delete` |
//!
//! Activity names are global in a task hub, and both `Chaining` and `FanOutFanIn` call `F1`, `F2`
//! and `F3`; so those activities act on the input they get: a string has `,Fi` appended, a number
//! is handled as the fan-out step (F1: `n` → `[1..=n]`, F2: `x` → `x*x`, F3: the sum, unchanged).

use std::time::Duration;

use durable::prelude::*;
use durable::{Registry, WorkerBuilder};
use futures::future::{Either, join_all, select};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const CHAINING: Orchestration<String, String> = Orchestration::new("Chaining");
pub const FAN_OUT_FAN_IN: Orchestration<Option<u64>, u64> = Orchestration::new("FanOutFanIn");
pub const DO_WORK: Orchestration<Option<u64>, String> = Orchestration::new("DoWork");
pub const COUNTER: Orchestration<Option<i64>, i64> = Orchestration::new("Counter");
pub const APPROVAL: Orchestration<Option<ApprovalInput>, String> = Orchestration::new("Approval");
pub const NESTED: Orchestration<Option<Vec<String>>, Vec<String>> = Orchestration::new("Nested");

/// The sample entities.
pub const ENTITIES: [&str; 1] = ["counter"];

/// The names `register` adds, for listings and error messages.
pub const ORCHESTRATIONS: [&str; 6] = [
    "Approval",
    "Chaining",
    "Counter",
    "DoWork",
    "FanOutFanIn",
    "Nested",
];

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalInput {
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

fn default_timeout() -> u64 {
    72 * 3600
}

async fn chaining(ctx: OrchestrationContext, input: String) -> Result<String, Error> {
    let mut value = input;
    for name in ["F1", "F2", "F3", "F4"] {
        value = ctx.call_activity(name, value).await?;
    }
    Ok(value)
}

async fn fan_out_fan_in(ctx: OrchestrationContext, n: Option<u64>) -> Result<u64, Error> {
    let batch: Vec<u64> = ctx.call_activity("F1", n.unwrap_or(10)).await?;
    let squares = join_all(
        batch
            .into_iter()
            .map(|x| ctx.call_activity::<_, u64>("F2", x)),
    )
    .await;
    let mut sum = 0u64;
    for square in squares {
        sum += square?;
    }
    Ok(ctx.call_activity("F3", sum).await?)
}

async fn do_work(ctx: OrchestrationContext, seconds: Option<u64>) -> Result<String, Error> {
    Ok(ctx.call_activity("DoWork", seconds.unwrap_or(5)).await?)
}

async fn counter(ctx: OrchestrationContext, value: Option<i64>) -> Result<i64, Error> {
    let value = value.unwrap_or(0);
    let operation: String = ctx.wait_for_event("operation").await?;
    let value = match operation.as_str() {
        "incr" => value + 1,
        "decr" => value - 1,
        "end" => return Ok(value),
        other => {
            return Err(Error::new(
                "InvalidOperation",
                format!("unknown operation '{other}' (expected incr, decr or end)"),
            ));
        }
    };
    ctx.set_custom_status(value);
    ctx.continue_as_new(value).await
}

async fn approval(
    ctx: OrchestrationContext,
    input: Option<ApprovalInput>,
) -> Result<String, Error> {
    let timeout = input.map_or_else(default_timeout, |i| i.timeout_seconds);
    ctx.call_activity::<_, ()>("RequestApproval", ()).await?;
    let deadline = ctx.sleep(Duration::from_secs(timeout));
    let decision = ctx.wait_for_event::<bool>("ApprovalEvent");
    match select(decision, deadline).await {
        Either::Left((approved, _)) => {
            if approved? {
                ctx.call_activity::<_, ()>("ProcessApproval", ()).await?;
                Ok("approved".into())
            } else {
                Ok("rejected".into())
            }
        }
        Either::Right(_) => {
            ctx.call_activity::<_, ()>("Escalate", ()).await?;
            Ok("escalated".into())
        }
    }
}

/// Sub-orchestrations: one `Chaining` per item, side by side.
async fn nested(
    ctx: OrchestrationContext,
    items: Option<Vec<String>>,
) -> Result<Vec<String>, Error> {
    let items = items.unwrap_or_else(|| vec!["a".into(), "b".into()]);
    let children = items
        .into_iter()
        .map(|item| ctx.call_sub_orchestration(CHAINING, item));
    let mut outputs = Vec::new();
    for output in join_all(children).await {
        outputs.push(output?);
    }
    Ok(outputs)
}

/// The `Counter` entity: a number that operations change one at a time.
fn counter_entity(ctx: &mut durable::EntityContext) -> Result<i64, Error> {
    let value: i64 = ctx.state_or_default()?;
    match ctx.operation() {
        "add" => {
            let by: i64 = ctx.input()?;
            let value = value
                .checked_add(by)
                .ok_or_else(|| Error::new("Overflow", "the counter would overflow"))?;
            ctx.set_state(&value)?;
            Ok(value)
        }
        "reset" => {
            ctx.set_state(&0)?;
            Ok(0)
        }
        "get" => Ok(value),
        "delete" => {
            ctx.delete_state();
            Ok(value)
        }
        other => Err(Error::new(
            "UnknownOperation",
            format!("the counter has no operation '{other}' (add, reset, get, delete)"),
        )),
    }
}

/// F1..F4: append `,Fi` to a string; on numbers, the fan-out steps.
async fn step(ctx: ActivityContext, input: Value) -> Result<Value, Error> {
    match (ctx.name.as_str(), input) {
        (name, Value::String(s)) => Ok(Value::String(format!("{s},{name}"))),
        ("F1", Value::Number(n)) => {
            let n = n
                .as_u64()
                .ok_or_else(|| Error::msg("F1 needs a non-negative integer"))?;
            Ok(serde_json::json!((1..=n).collect::<Vec<u64>>()))
        }
        ("F2", Value::Number(x)) => {
            let x = x
                .as_u64()
                .ok_or_else(|| Error::msg("F2 needs a non-negative integer"))?;
            Ok(serde_json::json!(x * x))
        }
        ("F3", Value::Number(sum)) => Ok(Value::Number(sum)),
        (name, other) => Err(Error::new(
            "InvalidInput",
            format!("{name} needs a string or a number, not {other}"),
        )),
    }
}

async fn work(_ctx: ActivityContext, seconds: u64) -> Result<String, Error> {
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    Ok("done".into())
}

async fn noop(_ctx: ActivityContext, _: ()) -> Result<(), Error> {
    Ok(())
}

/// A registry with every sample orchestration and activity.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    r.add_orchestration(CHAINING, chaining)
        .add_orchestration(FAN_OUT_FAN_IN, fan_out_fan_in)
        .add_orchestration(DO_WORK, do_work)
        .add_orchestration(COUNTER, counter)
        .add_orchestration(APPROVAL, approval)
        .add_orchestration(NESTED, nested);
    r.add_entity("Counter", counter_entity);
    for name in ["F1", "F2", "F3", "F4"] {
        r.add_activity(name, step);
    }
    r.add_activity("DoWork", work);
    for name in ["RequestApproval", "ProcessApproval", "Escalate"] {
        r.add_activity(name, noop);
    }
    r
}

/// Adds the samples to a worker.
pub fn register(builder: WorkerBuilder) -> WorkerBuilder {
    builder.registry(&registry())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use durable::{MemoryStore, RuntimeStatus, WorkerOptions};

    use super::*;

    async fn run(name: &str, input: Value, events: &[(&str, Value)]) -> durable::InstanceState {
        let store: durable::SharedStore = Arc::new(MemoryStore::default());
        let options = WorkerOptions {
            idle_poll: Duration::from_millis(50),
            ..Default::default()
        };
        let worker = register(Worker::builder(store)).options(options).start();
        let client = worker.client();
        let id = client
            .start_with(durable::StartRequest::new(name).input(&input))
            .await
            .unwrap();
        for (event, data) in events {
            client.raise_event(&id, event, data).await.unwrap();
        }
        let s = client
            .wait_for_completion(&id, Duration::from_secs(20))
            .await
            .unwrap();
        worker.shutdown().await;
        s
    }

    #[tokio::test]
    async fn samples_produce_their_documented_results() {
        let s = run("Chaining", serde_json::json!("start"), &[]).await;
        assert_eq!(s.output_as::<String>().unwrap(), "start,F1,F2,F3,F4");
        let s = run("FanOutFanIn", serde_json::json!(10), &[]).await;
        assert_eq!(s.output_as::<u64>().unwrap(), 385);
        let s = run("FanOutFanIn", Value::Null, &[]).await;
        assert_eq!(s.output_as::<u64>().unwrap(), 385, "n defaults to 10");
        let s = run("DoWork", serde_json::json!(0), &[]).await;
        assert_eq!(s.output_as::<String>().unwrap(), "done");
        let ops = [
            ("operation", serde_json::json!("incr")),
            ("operation", serde_json::json!("incr")),
            ("operation", serde_json::json!("decr")),
            ("operation", serde_json::json!("incr")),
            ("operation", serde_json::json!("end")),
        ];
        let s = run("Counter", serde_json::json!(5), &ops).await;
        assert_eq!(s.output_as::<i64>().unwrap(), 7);
        assert_eq!(s.custom_status_as::<i64>().unwrap(), 7);
        let approve = [("ApprovalEvent", serde_json::json!(true))];
        let s = run("Approval", Value::Null, &approve).await;
        assert_eq!(s.output_as::<String>().unwrap(), "approved");
        let reject = [("ApprovalEvent", serde_json::json!(false))];
        let s = run(
            "Approval",
            serde_json::json!({"timeoutSeconds": 600}),
            &reject,
        )
        .await;
        assert_eq!(s.output_as::<String>().unwrap(), "rejected");
        let s = run("Approval", serde_json::json!({"timeoutSeconds": 1}), &[]).await;
        assert_eq!(s.output_as::<String>().unwrap(), "escalated");
        assert_eq!(s.status, RuntimeStatus::Completed);
        let s = run("Nested", Value::Null, &[]).await;
        assert_eq!(
            s.output_as::<Vec<String>>().unwrap(),
            ["a,F1,F2,F3,F4", "b,F1,F2,F3,F4"]
        );
    }

    #[tokio::test]
    async fn the_counter_entity_adds_resets_and_deletes() {
        let store: durable::SharedStore = Arc::new(MemoryStore::default());
        let worker = register(Worker::builder(store)).start();
        let client = worker.client();
        let id = durable::EntityId::new("Counter", "sample");
        for op in [
            ("add", 5),
            ("add", -2),
            ("reset", 0),
            ("add", 4),
            ("nope", 0),
        ] {
            client.signal_entity(&id, op.0, op.1).await.unwrap();
        }
        let read = || async { client.get_entity(&id).await.unwrap().and_then(|e| e.state) };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while read().await.as_deref() != Some("4") {
            assert!(std::time::Instant::now() < deadline, "{:?}", read().await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        client.signal_entity(&id, "delete", ()).await.unwrap();
        while read().await.is_some() {
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        worker.shutdown().await;
    }

    #[test]
    fn registry_holds_every_documented_name() {
        let r = registry();
        assert_eq!(r.orchestration_names(), ORCHESTRATIONS);
        assert_eq!(r.entity_names(), ENTITIES);
    }
}
