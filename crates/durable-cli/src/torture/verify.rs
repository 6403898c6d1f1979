//! The checks after a torture run, read from the store and the activity execution log.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use anyhow::Result;
use durable::{EventKind, HistoryEvent, RuntimeStatus, SharedStore};
use serde::Serialize;

use super::drive::Acks;
use super::workload::{self, MixOutput};

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Findings {
    pub instances_checked: usize,
    pub children_checked: usize,
    pub events_checked: usize,
    pub activity_executions: u64,
    pub activity_tasks: usize,
    pub activity_reexecutions: u64,
    pub violations: Vec<String>,
}

/// Schedules in one history, by call number: the kind of result each one expects.
fn schedules(history: &[HistoryEvent]) -> Vec<(i32, &'static str)> {
    history
        .iter()
        .filter_map(|e| {
            let kind = match &e.kind {
                EventKind::TaskScheduled { .. } => "task",
                EventKind::TimerCreated { .. } => "timer",
                EventKind::SubOrchestrationInstanceCreated { .. } => "sub-orchestration",
                EventKind::EventSent { .. } => "send",
                _ => return None,
            };
            Some((e.event_id, kind))
        })
        .collect()
}

fn result_kind(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::TimerFired { .. } => "timer",
        EventKind::SubOrchestrationInstanceCompleted { .. }
        | EventKind::SubOrchestrationInstanceFailed { .. } => "sub-orchestration",
        _ => "task",
    }
}

/// Checks one history's shape: one start, one completion, call numbers 1..=n each scheduled
/// once, every result after a schedule of its kind, no call with two results. Returns the
/// number of calls scheduled.
pub fn check_history(id: &str, history: &[HistoryEvent], out: &mut Vec<String>) -> usize {
    let count = |f: fn(&EventKind) -> bool| history.iter().filter(|e| f(&e.kind)).count();
    let started = count(|k| matches!(k, EventKind::ExecutionStarted { .. }));
    let completed = count(|k| matches!(k, EventKind::ExecutionCompleted { .. }));
    if started != 1 {
        out.push(format!("{id}: {started} ExecutionStarted events"));
    }
    if completed != 1 {
        out.push(format!(
            "{id}: {completed} completions (expected exactly one)"
        ));
    }
    let mut open: HashMap<i32, &str> = HashMap::new();
    let mut numbers = Vec::new();
    let mut done = HashSet::new();
    for e in history {
        if let Some(&(seq, kind)) = schedules(std::slice::from_ref(e)).first() {
            numbers.push(seq);
            if open.insert(seq, kind).is_some() {
                out.push(format!("{id}: call #{seq} scheduled twice"));
            }
        } else if let Some(task) = e.kind.completes_task() {
            match open.get(&task) {
                None => out.push(format!(
                    "{id}: result for #{task}, which was never scheduled before it"
                )),
                Some(kind) if *kind != result_kind(&e.kind) => {
                    out.push(format!("{id}: #{task} was a {kind}, its result is not"))
                }
                Some(_) => {}
            }
            if !done.insert(task) {
                out.push(format!("{id}: #{task} completed twice"));
            }
        }
    }
    numbers.sort_unstable();
    if numbers.iter().zip(1..).any(|(seq, want)| *seq != want) {
        out.push(format!(
            "{id}: call numbers are not 1..={}: {numbers:?}",
            numbers.len()
        ));
    }
    numbers.len()
}

/// Executions per (instance, task id) from the log the workload's activities append to.
fn executions(log: &Path) -> Result<HashMap<(String, i32), u64>> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut counts = HashMap::new();
    for line in text.lines() {
        let parsed = line
            .rsplit_once(' ')
            .and_then(|(id, task)| Some((id.to_string(), task.parse::<i32>().ok()?)));
        let Some(key) = parsed else {
            anyhow::bail!("malformed line in the execution log: '{line}'");
        };
        *counts.entry(key).or_default() += 1;
    }
    Ok(counts)
}

fn completed_tasks(id: &str, history: &[HistoryEvent]) -> Vec<(String, i32)> {
    let scheduled: HashSet<i32> = history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::TaskScheduled { .. }))
        .map(|e| e.event_id)
        .collect();
    history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TaskCompleted {
                task_scheduled_id, ..
            } if scheduled.contains(task_scheduled_id) => {
                Some((id.to_string(), *task_scheduled_id))
            }
            _ => None,
        })
        .collect()
}

/// Checks every acknowledged instance, its child and its event, and counts re-executions.
pub async fn verify(store: &SharedStore, acks: &Acks, log: &Path) -> Result<Findings> {
    let mut f = Findings::default();
    let runs = executions(log)?;
    let mut recorded: Vec<(String, i32)> = Vec::new();
    for (id, event) in &acks.started {
        f.instances_checked += 1;
        let v = &mut f.violations;
        let Some(state) = store.get_instance(id).await? else {
            v.push(format!(
                "{id}: acknowledged start, but the instance is missing"
            ));
            continue;
        };
        if state.status != RuntimeStatus::Completed {
            v.push(format!("{id}: {} ({:?})", state.status, state.failure));
            continue;
        }
        let want = workload::expected(input_n(&state.input), *event);
        match state.output_as::<MixOutput>() {
            Ok(got) if got == want => {}
            got => v.push(format!("{id}: output {got:?}, expected {want:?}")),
        }
        let history = store.read_history(id).await?;
        if check_history(id, &history, v) != 15 {
            v.push(format!(
                "{id}: expected 15 calls (13 activities, a timer, a child)"
            ));
        }
        if acks.events.get(id) == Some(event) {
            f.events_checked += 1;
            let data = event.to_string();
            let raised = history.iter().any(|e| {
                matches!(&e.kind, EventKind::EventRaised { name, input }
                    if name.eq_ignore_ascii_case(workload::EVENT) && input.as_deref() == Some(&data))
            });
            if !raised {
                v.push(format!(
                    "{id}: acknowledged event {data} is not in the history"
                ));
            }
        } else {
            v.push(format!("{id}: its event was never acknowledged"));
        }
        recorded.extend(completed_tasks(id, &history));
        for e in &history {
            if let EventKind::SubOrchestrationInstanceCreated { instance_id, .. } = &e.kind {
                f.children_checked += 1;
                let child = store.read_history(instance_id).await?;
                if check_history(instance_id, &child, v) != 2 {
                    v.push(format!("{instance_id}: expected 2 calls"));
                }
                recorded.extend(completed_tasks(instance_id, &child));
            }
        }
    }
    for task in &recorded {
        if !runs.contains_key(task) {
            f.violations.push(format!(
                "{} #{}: a result with no execution logged",
                task.0, task.1
            ));
        }
    }
    let recorded: HashSet<_> = recorded.into_iter().collect();
    let mut stray: BTreeMap<String, usize> = BTreeMap::new();
    for key in runs.keys().filter(|k| !recorded.contains(*k)) {
        *stray.entry(key.0.clone()).or_default() += 1;
    }
    for (id, n) in stray {
        f.violations.push(format!(
            "{id}: {n} executed activities have no recorded result"
        ));
    }
    f.activity_tasks = runs.len();
    f.activity_executions = runs.values().sum();
    f.activity_reexecutions = f.activity_executions - runs.len() as u64;
    Ok(f)
}

fn input_n(input: &Option<String>) -> u64 {
    input
        .as_deref()
        .and_then(|i| serde_json::from_str::<workload::MixInput>(i).ok())
        .map_or(u64::MAX, |i| i.n)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use durable::core::status::OrchestrationStatus;

    use super::*;

    fn ev(id: i32, kind: EventKind) -> HistoryEvent {
        HistoryEvent::new(id, Utc::now(), kind)
    }

    fn scheduled(id: i32) -> HistoryEvent {
        ev(
            id,
            EventKind::TaskScheduled {
                name: "A".into(),
                version: None,
                input: None,
                parent_trace_context: None,
                tags: Default::default(),
            },
        )
    }

    fn completed(task: i32) -> HistoryEvent {
        ev(
            -1,
            EventKind::TaskCompleted {
                task_scheduled_id: task,
                result: None,
            },
        )
    }

    fn ends() -> [HistoryEvent; 2] {
        let start = EventKind::ExecutionStarted {
            name: "X".into(),
            version: None,
            input: None,
            orchestration_instance: Default::default(),
            parent_instance: None,
            scheduled_start_timestamp: None,
            parent_trace_context: None,
            orchestration_span_id: None,
            tags: Default::default(),
        };
        let end = EventKind::ExecutionCompleted {
            orchestration_status: OrchestrationStatus::Completed,
            result: None,
            failure_details: None,
        };
        [ev(-1, start), ev(-1, end)]
    }

    fn problems(events: Vec<HistoryEvent>) -> Vec<String> {
        let mut out = Vec::new();
        check_history("i", &events, &mut out);
        out
    }

    #[test]
    fn well_formed_histories_pass_and_each_defect_is_named() {
        let [start, end] = ends();
        let good = vec![
            start.clone(),
            scheduled(1),
            scheduled(2),
            completed(2),
            completed(1),
            end.clone(),
        ];
        assert_eq!(problems(good), Vec::<String>::new());

        let twice = vec![
            start.clone(),
            scheduled(1),
            completed(1),
            completed(1),
            end.clone(),
        ];
        assert!(problems(twice)[0].contains("completed twice"));
        let gap = vec![
            start.clone(),
            scheduled(1),
            scheduled(3),
            completed(1),
            completed(3),
            end.clone(),
        ];
        assert!(problems(gap)[0].contains("not 1..=2"));
        let orphan = vec![start.clone(), completed(1), scheduled(1), end.clone()];
        assert!(problems(orphan)[0].contains("never scheduled"));
        let two_ends = vec![start, scheduled(1), completed(1), end.clone(), end];
        assert!(problems(two_ends)[0].contains("2 completions"));
    }
}
