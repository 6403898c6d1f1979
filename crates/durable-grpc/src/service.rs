//! The generated `TaskHubSidecarService` trait, implemented by delegating each RPC to the module
//! that handles it. Errors become statuses only here, through [`RpcError::status`].

use std::sync::Arc;
use std::time::Duration;

use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::entities;
use crate::error::{RpcError, RpcResult};
use crate::hub::{self, Hub, Kind};
use crate::instances::{self, Until};
use crate::listing;
use crate::proto::task_hub_sidecar_service_server::TaskHubSidecarService;
use crate::proto::*;

pub(crate) struct Service {
    hub: Arc<Hub>,
}

impl Service {
    pub fn new(hub: Arc<Hub>) -> Self {
        Service { hub }
    }
}

fn reply<T>(result: RpcResult<T>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(RpcError::status)
}

/// The call's deadline from its `grpc-timeout` header (`<digits><unit>`, units H M S m u n).
fn deadline<T>(request: &Request<T>) -> Option<Duration> {
    let value = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl TaskHubSidecarService for Service {
    async fn hello(&self, _: Request<()>) -> Reply<()> {
        Ok(Response::new(()))
    }

    async fn start_instance(
        &self,
        r: Request<CreateInstanceRequest>,
    ) -> Reply<CreateInstanceResponse> {
        reply(instances::start(&self.hub, r.into_inner()).await)
    }

    async fn get_instance(&self, r: Request<GetInstanceRequest>) -> Reply<GetInstanceResponse> {
        reply(instances::get(&self.hub, r.into_inner()).await)
    }

    async fn rewind_instance(
        &self,
        r: Request<RewindInstanceRequest>,
    ) -> Reply<RewindInstanceResponse> {
        let result = instances::rewind(&self.hub, r.into_inner()).await;
        reply(result.map(|()| RewindInstanceResponse {}))
    }

    async fn restart_instance(
        &self,
        r: Request<RestartInstanceRequest>,
    ) -> Reply<RestartInstanceResponse> {
        reply(instances::restart(&self.hub, r.into_inner()).await)
    }

    async fn wait_for_instance_start(
        &self,
        r: Request<GetInstanceRequest>,
    ) -> Reply<GetInstanceResponse> {
        let timeout = deadline(&r);
        reply(instances::wait(&self.hub, r.into_inner(), Until::Started, timeout).await)
    }

    async fn wait_for_instance_completion(
        &self,
        r: Request<GetInstanceRequest>,
    ) -> Reply<GetInstanceResponse> {
        let timeout = deadline(&r);
        reply(instances::wait(&self.hub, r.into_inner(), Until::Finished, timeout).await)
    }

    async fn raise_event(&self, r: Request<RaiseEventRequest>) -> Reply<RaiseEventResponse> {
        let result = instances::raise(&self.hub, r.into_inner()).await;
        reply(result.map(|()| RaiseEventResponse {}))
    }

    async fn terminate_instance(&self, r: Request<TerminateRequest>) -> Reply<TerminateResponse> {
        let result = instances::terminate(&self.hub, r.into_inner()).await;
        reply(result.map(|()| TerminateResponse {}))
    }

    async fn suspend_instance(&self, r: Request<SuspendRequest>) -> Reply<SuspendResponse> {
        let result = instances::suspend(&self.hub, r.into_inner()).await;
        reply(result.map(|()| SuspendResponse {}))
    }

    async fn resume_instance(&self, r: Request<ResumeRequest>) -> Reply<ResumeResponse> {
        let result = instances::resume(&self.hub, r.into_inner()).await;
        reply(result.map(|()| ResumeResponse {}))
    }

    async fn query_instances(
        &self,
        r: Request<QueryInstancesRequest>,
    ) -> Reply<QueryInstancesResponse> {
        reply(listing::query(&self.hub, r.into_inner()).await)
    }

    async fn list_instance_ids(
        &self,
        r: Request<ListInstanceIdsRequest>,
    ) -> Reply<ListInstanceIdsResponse> {
        reply(listing::list_ids(&self.hub, r.into_inner()).await)
    }

    async fn purge_instances(
        &self,
        r: Request<PurgeInstancesRequest>,
    ) -> Reply<PurgeInstancesResponse> {
        reply(listing::purge(&self.hub, r.into_inner()).await)
    }

    type GetWorkItemsStream = ReceiverStream<Result<WorkItem, Status>>;

    async fn get_work_items(
        &self,
        r: Request<GetWorkItemsRequest>,
    ) -> Reply<Self::GetWorkItemsStream> {
        if self.hub.is_shutting_down() {
            return Err(RpcError::ShuttingDown.status());
        }
        Ok(Response::new(hub::open_stream(&self.hub, r.get_ref())))
    }

    async fn complete_activity_task(
        &self,
        r: Request<ActivityResponse>,
    ) -> Reply<CompleteTaskResponse> {
        let result = hub::complete_activity(&self.hub, r.into_inner()).await;
        reply(result.map(|()| CompleteTaskResponse {}))
    }

    async fn complete_orchestrator_task(
        &self,
        r: Request<OrchestratorResponse>,
    ) -> Reply<CompleteTaskResponse> {
        let result = hub::complete_turn(&self.hub, r.into_inner()).await;
        reply(result.map(|()| CompleteTaskResponse {}))
    }

    async fn complete_entity_task(
        &self,
        r: Request<EntityBatchResult>,
    ) -> Reply<CompleteTaskResponse> {
        let result = hub::complete_entity(&self.hub, r.into_inner()).await;
        reply(result.map(|()| CompleteTaskResponse {}))
    }

    type StreamInstanceHistoryStream =
        tokio_stream::Iter<std::vec::IntoIter<Result<HistoryChunk, Status>>>;

    async fn stream_instance_history(
        &self,
        r: Request<StreamInstanceHistoryRequest>,
    ) -> Reply<Self::StreamInstanceHistoryStream> {
        let chunks = listing::history(&self.hub, r.into_inner())
            .await
            .map_err(RpcError::status)?;
        let chunks: Vec<_> = chunks.into_iter().map(Ok).collect();
        Ok(Response::new(tokio_stream::iter(chunks)))
    }

    /// Task hubs are created with the store; nothing to do.
    async fn create_task_hub(
        &self,
        _: Request<CreateTaskHubRequest>,
    ) -> Reply<CreateTaskHubResponse> {
        Ok(Response::new(CreateTaskHubResponse {}))
    }

    /// Deleting a task hub is done by deleting its store, not over the protocol; nothing to do.
    async fn delete_task_hub(
        &self,
        _: Request<DeleteTaskHubRequest>,
    ) -> Reply<DeleteTaskHubResponse> {
        Ok(Response::new(DeleteTaskHubResponse {}))
    }

    async fn signal_entity(&self, r: Request<SignalEntityRequest>) -> Reply<SignalEntityResponse> {
        let result = entities::signal(&self.hub, r.into_inner()).await;
        reply(result.map(|()| SignalEntityResponse {}))
    }

    async fn get_entity(&self, r: Request<GetEntityRequest>) -> Reply<GetEntityResponse> {
        reply(entities::get(&self.hub, r.into_inner()).await)
    }

    async fn query_entities(
        &self,
        r: Request<QueryEntitiesRequest>,
    ) -> Reply<QueryEntitiesResponse> {
        reply(entities::query(&self.hub, r.into_inner()).await)
    }

    async fn clean_entity_storage(
        &self,
        r: Request<CleanEntityStorageRequest>,
    ) -> Reply<CleanEntityStorageResponse> {
        reply(entities::clean(&self.hub, r.into_inner()).await)
    }

    async fn abandon_task_activity_work_item(
        &self,
        r: Request<AbandonActivityTaskRequest>,
    ) -> Reply<AbandonActivityTaskResponse> {
        let result =
            hub::abandon_token(&self.hub, &r.get_ref().completion_token, Kind::Activity).await;
        reply(result.map(|()| AbandonActivityTaskResponse {}))
    }

    async fn abandon_task_orchestrator_work_item(
        &self,
        r: Request<AbandonOrchestrationTaskRequest>,
    ) -> Reply<AbandonOrchestrationTaskResponse> {
        let result = hub::abandon_token(
            &self.hub,
            &r.get_ref().completion_token,
            Kind::Orchestration,
        )
        .await;
        reply(result.map(|()| AbandonOrchestrationTaskResponse {}))
    }

    async fn abandon_task_entity_work_item(
        &self,
        r: Request<AbandonEntityTaskRequest>,
    ) -> Reply<AbandonEntityTaskResponse> {
        let result =
            hub::abandon_token(&self.hub, &r.get_ref().completion_token, Kind::Entity).await;
        reply(result.map(|()| AbandonEntityTaskResponse {}))
    }

    /// A bulk terminate of the Durable Task Scheduler service; no SDK needs it against this
    /// server (TerminateInstance covers it).
    async fn skip_graceful_orchestration_terminations(
        &self,
        _: Request<SkipGracefulOrchestrationTerminationsRequest>,
    ) -> Reply<SkipGracefulOrchestrationTerminationsResponse> {
        reply(Err(RpcError::Unimplemented(
            "SkipGracefulOrchestrationTerminations is not supported; use TerminateInstance",
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_header() {
        let with = |v: &str| {
            let mut r = Request::new(());
            r.metadata_mut().insert("grpc-timeout", v.parse().unwrap());
            deadline(&r)
        };
        assert_eq!(with("29999983u"), Some(Duration::from_micros(29_999_983)));
        assert_eq!(with("3S"), Some(Duration::from_secs(3)));
        assert_eq!(with("100m"), Some(Duration::from_millis(100)));
        assert_eq!(with("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(with("x"), None);
        assert_eq!(deadline(&Request::new(())), None);
    }
}
