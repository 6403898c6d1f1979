//! A hand-driven remote worker: opens a work-item stream with the generated client and answers
//! items however a test wants, including wrongly.

use std::time::Duration;

use durable_grpc::proto::orchestrator_action::OrchestratorActionType;
use durable_grpc::proto::task_hub_sidecar_service_client::TaskHubSidecarServiceClient;
use durable_grpc::proto::work_item::Request;
use durable_grpc::proto::*;
use tonic::Streaming;
use tonic::transport::Channel;

pub type Api = TaskHubSidecarServiceClient<Channel>;

pub async fn open(api: &mut Api, filters: Option<WorkItemFilters>) -> Streaming<WorkItem> {
    let request = GetWorkItemsRequest {
        max_concurrent_orchestration_work_items: 10,
        max_concurrent_activity_work_items: 10,
        work_item_filters: filters,
        ..Default::default()
    };
    api.get_work_items(request).await.unwrap().into_inner()
}

/// The next work item that is not a health ping, or `None` if none comes within `within`.
pub async fn next_item(stream: &mut Streaming<WorkItem>, within: Duration) -> Option<WorkItem> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let item = tokio::time::timeout_at(deadline, stream.message())
            .await
            .ok()?
            .unwrap()?;
        if !matches!(item.request, Some(Request::HealthPing(_))) {
            return Some(item);
        }
    }
}

pub async fn next_turn(stream: &mut Streaming<WorkItem>) -> (OrchestratorRequest, String) {
    let item = next_item(stream, Duration::from_secs(10))
        .await
        .expect("an orchestrator work item");
    match item.request {
        Some(Request::OrchestratorRequest(r)) => (r, item.completion_token),
        other => panic!("expected an orchestrator work item, got {other:?}"),
    }
}

pub fn action(id: i32, kind: OrchestratorActionType) -> OrchestratorAction {
    OrchestratorAction {
        id,
        orchestrator_action_type: Some(kind),
    }
}

pub fn complete_action(id: i32, result: &str) -> OrchestratorAction {
    action(
        id,
        OrchestratorActionType::CompleteOrchestration(CompleteOrchestrationAction {
            orchestration_status: OrchestrationStatus::Completed as i32,
            result: Some(result.to_string()),
            ..Default::default()
        }),
    )
}

pub fn schedule_action(id: i32, name: &str) -> OrchestratorAction {
    action(
        id,
        OrchestratorActionType::ScheduleTask(ScheduleTaskAction {
            name: name.to_string(),
            input: Some("1".into()),
            ..Default::default()
        }),
    )
}

pub fn response(
    instance_id: &str,
    token: &str,
    actions: Vec<OrchestratorAction>,
) -> OrchestratorResponse {
    OrchestratorResponse {
        instance_id: instance_id.to_string(),
        actions,
        completion_token: token.to_string(),
        ..Default::default()
    }
}

pub async fn start(api: &mut Api, name: &str, id: &str) {
    let request = CreateInstanceRequest {
        instance_id: id.to_string(),
        name: name.to_string(),
        ..Default::default()
    };
    api.start_instance(request).await.unwrap();
}

pub fn status_of(api_state: &GetInstanceResponse) -> OrchestrationStatus {
    let state = api_state.orchestration_state.as_ref().expect("a state");
    OrchestrationStatus::try_from(state.orchestration_status).unwrap()
}
