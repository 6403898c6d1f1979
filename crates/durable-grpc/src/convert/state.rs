//! Instance states and status filters.

use durable::InstanceState;

use super::*;

/// The protocol's `OrchestrationState`. Input and output only when asked for; custom status and
/// failure always.
pub(crate) fn instance_state(s: InstanceState, payloads: bool) -> proto::OrchestrationState {
    let parent_instance_id = s.parent_instance_id().map(str::to_string);
    proto::OrchestrationState {
        instance_id: s.instance_id,
        name: s.name,
        version: s.version,
        orchestration_status: runtime_status_to_proto(s.status),
        scheduled_start_timestamp: s.scheduled_start_at.map(timestamp),
        created_timestamp: Some(timestamp(s.created_at)),
        last_updated_timestamp: Some(timestamp(s.updated_at)),
        input: if payloads { s.input } else { None },
        output: if payloads { s.output } else { None },
        custom_status: s.custom_status,
        failure_details: s.failure.as_deref().map(failure_to_proto),
        execution_id: Some(s.execution_id),
        completed_timestamp: s.completed_at.map(timestamp),
        parent_instance_id,
        tags: tags_to_proto(&s.tags),
    }
}

/// Statuses to filter by. RUNNING also selects instances between two continue-as-new
/// generations, which report RUNNING.
pub(crate) fn status_filter(statuses: &[i32]) -> RpcResult<Vec<RuntimeStatus>> {
    let mut out = Vec::new();
    for &n in statuses {
        let status = status_from_proto(n)?;
        if !out.contains(&status) {
            out.push(status);
        }
        if status == RuntimeStatus::Running && !out.contains(&RuntimeStatus::ContinuedAsNew) {
            out.push(RuntimeStatus::ContinuedAsNew);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_includes_continued_as_new() {
        let running = proto::OrchestrationStatus::Running as i32;
        let done = proto::OrchestrationStatus::Completed as i32;
        assert_eq!(
            status_filter(&[running, done, running]).unwrap(),
            [
                RuntimeStatus::Running,
                RuntimeStatus::ContinuedAsNew,
                RuntimeStatus::Completed
            ]
        );
        assert!(status_filter(&[42]).is_err());
    }
}
