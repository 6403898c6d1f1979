//! Entities over the protocol with a hand-driven worker: bad input to the entity RPCs, batch
//! results that do not fit their batch, abandon, and orphaned locks.

use std::time::Duration;

use durable::core::event::{EventKind, HistoryEvent};
use durable::core::work::NewMessage;
use durable_grpc::SidecarOptions;
use durable_grpc::proto::work_item::Request;
use durable_grpc::proto::*;
use tonic::Code;

use crate::support::TestServer;
use crate::support::fake_worker::*;

fn signal(id: &str, operation: &str, input: Option<&str>) -> SignalEntityRequest {
    SignalEntityRequest {
        instance_id: id.into(),
        name: operation.into(),
        input: input.map(String::from),
        request_id: "r".into(),
        ..Default::default()
    }
}

fn query(prefix: &str) -> EntityQuery {
    EntityQuery {
        instance_id_starts_with: Some(prefix.into()),
        include_state: true,
        include_transient: true,
        ..Default::default()
    }
}

async fn entities(api: &mut Api, prefix: &str) -> Vec<EntityMetadata> {
    let request = QueryEntitiesRequest {
        query: Some(query(prefix)),
    };
    api.query_entities(request)
        .await
        .unwrap()
        .into_inner()
        .entities
}

async fn next_batch(stream: &mut tonic::Streaming<WorkItem>) -> (EntityRequest, String) {
    let item = next_item(stream, Duration::from_secs(10))
        .await
        .expect("an entity work item");
    match item.request {
        Some(Request::EntityRequestV2(r)) => (r, item.completion_token),
        other => panic!("expected an entity work item, got {other:?}"),
    }
}

fn success(result: &str) -> OperationResult {
    OperationResult {
        result_type: Some(operation_result::ResultType::Success(
            OperationResultSuccess {
                result: Some(result.into()),
                ..Default::default()
            },
        )),
    }
}

fn result(token: &str, state: Option<&str>, results: Vec<OperationResult>) -> EntityBatchResult {
    EntityBatchResult {
        results,
        entity_state: state.map(String::from),
        completion_token: token.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entity_rpcs_refuse_bad_input_and_create_nothing() {
    let server = TestServer::start(SidecarOptions::default()).await;
    let mut api = server.client().await;
    for id in ["", "counter", "@@key", "no-at@all"] {
        let refused = api
            .signal_entity(signal(id, "add", None))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{id:?}: {refused:?}");
        assert!(
            refused.message().contains("not an entity id"),
            "{refused:?}"
        );
        let request = GetEntityRequest {
            instance_id: id.into(),
            include_state: true,
        };
        let refused = api.get_entity(request).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{id:?}");
    }
    let bad_json = api
        .signal_entity(signal("@bad@k", "add", Some("{not json")))
        .await
        .unwrap_err();
    assert_eq!(bad_json.code(), Code::InvalidArgument, "{bad_json:?}");
    let no_operation = api
        .signal_entity(signal("@bad@k", "", Some("1")))
        .await
        .unwrap_err();
    assert_eq!(no_operation.code(), Code::InvalidArgument);
    // An unknown entity does not exist; nothing above created one.
    let unknown = api
        .get_entity(GetEntityRequest {
            instance_id: "@nobody@k".into(),
            include_state: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!unknown.exists && unknown.entity.is_none());
    assert!(
        entities(&mut api, "@").await.is_empty(),
        "no entity was created"
    );

    let missing = api
        .query_entities(QueryEntitiesRequest { query: None })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    let mut negative = query("@");
    negative.page_size = Some(-1);
    let refused = api
        .query_entities(QueryEntitiesRequest {
            query: Some(negative),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let mut bad_token = query("@");
    bad_token.continuation_token = Some("not-a-token".into());
    let refused = api
        .query_entities(QueryEntitiesRequest {
            query: Some(bad_token),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    let refused = api
        .clean_entity_storage(CleanEntityStorageRequest {
            continuation_token: Some("garbage".into()),
            remove_empty_entities: true,
            release_orphaned_locks: true,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_results_that_do_not_fit_are_refused_and_change_nothing() {
    let server = TestServer::start(SidecarOptions::default()).await;
    let mut api = server.client().await;
    let mut stream = open(&mut api, None).await;
    api.signal_entity(signal("@Fake@k1", "add", Some("5")))
        .await
        .unwrap();
    let (request, token) = next_batch(&mut stream).await;
    assert_eq!(request.instance_id, "@fake@k1", "the name in lower case");
    assert_eq!(request.entity_state, None);
    assert_eq!(request.operation_requests.len(), 1);
    let operation = &request.operation_requests[0];
    assert!(
        matches!(
            &operation.event_type,
            Some(history_event::EventType::EntityOperationSignaled(s))
                if s.operation == "add" && s.input.as_deref() == Some("5")
        ),
        "{operation:?}"
    );
    assert!(token.contains(".e."), "{token}");
    // Tokens: garbage and the wrong kind are INVALID_ARGUMENT; a well-formed unknown one is stale.
    let garbage = api
        .complete_entity_task(result("garbage", Some("5"), vec![success("5")]))
        .await
        .unwrap_err();
    assert_eq!(garbage.code(), Code::InvalidArgument);
    let session = token.split('.').next().unwrap();
    let wrong_kind = format!("{session}.o.1");
    let refused = api
        .complete_entity_task(result(&wrong_kind, Some("5"), vec![success("5")]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let refused = api
        .abandon_task_entity_work_item(AbandonEntityTaskRequest {
            completion_token: wrong_kind,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let stale = format!("{session}.e.999999");
    api.complete_entity_task(result(&stale, Some("99"), vec![success("99")]))
        .await
        .expect("a stale token is OK");
    assert_eq!(
        state_of(&mut api, "@fake@k1").await,
        None,
        "a stale result changes nothing"
    );

    // Results that do not fit the batch: refused, nothing changes, the batch comes back.
    let wrong_count = api
        .complete_entity_task(result(&token, Some("5"), vec![]))
        .await
        .unwrap_err();
    assert_eq!(wrong_count.code(), Code::InvalidArgument);
    assert!(
        wrong_count.message().contains("1 operations"),
        "{wrong_count:?}"
    );
    assert_eq!(state_of(&mut api, "@fake@k1").await, None);
    let (_, token) = next_batch(&mut stream).await;
    let bad_state = api
        .complete_entity_task(result(&token, Some("{not json"), vec![success("5")]))
        .await
        .unwrap_err();
    assert_eq!(bad_state.code(), Code::InvalidArgument);
    assert!(
        bad_state.message().contains("not valid JSON"),
        "{bad_state:?}"
    );
    assert_eq!(state_of(&mut api, "@fake@k1").await, None);
    let (_, token) = next_batch(&mut stream).await;
    let mut bad_signal = result(&token, Some("5"), vec![success("5")]);
    bad_signal.actions = vec![OperationAction {
        id: 0,
        operation_action_type: Some(operation_action::OperationActionType::SendSignal(
            SendSignalAction {
                instance_id: "not-an-entity".into(),
                name: "add".into(),
                ..Default::default()
            },
        )),
    }];
    let refused = api.complete_entity_task(bad_signal).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let stale_now = api
        .complete_entity_task(result(&token, Some("5"), vec![success("5")]))
        .await;
    assert!(
        stale_now.is_ok(),
        "the token went back with the refusal: stale"
    );
    assert_eq!(state_of(&mut api, "@fake@k1").await, None);
    let (_, token) = next_batch(&mut stream).await;
    let no_type = result(
        &token,
        Some("5"),
        vec![OperationResult { result_type: None }],
    );
    let refused = api.complete_entity_task(no_type).await.unwrap_err();
    assert!(
        refused.message().contains("neither success nor failure"),
        "{refused:?}"
    );

    // Abandon gives the batch back; then a fitting result commits state and signals.
    let (_, token) = next_batch(&mut stream).await;
    api.abandon_task_entity_work_item(AbandonEntityTaskRequest {
        completion_token: token,
    })
    .await
    .unwrap();
    let (request, token) = next_batch(&mut stream).await;
    assert_eq!(request.operation_requests.len(), 1, "the same operation");
    let mut fitting = result(&token, Some("5"), vec![success("5")]);
    fitting.actions = vec![OperationAction {
        id: 0,
        operation_action_type: Some(operation_action::OperationActionType::SendSignal(
            SendSignalAction {
                instance_id: "@fake@k2".into(),
                name: "add".into(),
                input: Some("1".into()),
                ..Default::default()
            },
        )),
    }];
    api.complete_entity_task(fitting).await.unwrap();
    assert_eq!(state_of(&mut api, "@fake@k1").await.as_deref(), Some("5"));
    let (request, token) = next_batch(&mut stream).await;
    assert_eq!(
        request.instance_id, "@fake@k2",
        "the signal the operation sent"
    );
    api.complete_entity_task(result(&token, Some("0"), vec![success("0")]))
        .await
        .unwrap();
    let listed = entities(&mut api, "@fake@").await;
    let states: Vec<_> = listed
        .iter()
        .map(|e| (e.instance_id.as_str(), e.serialized_state.as_deref()))
        .collect();
    assert_eq!(
        states,
        [("@fake@k1", Some("5")), ("@fake@k2", Some("0"))],
        "a falsy state is a state"
    );
    server.stop().await;
}

async fn state_of(api: &mut Api, id: &str) -> Option<String> {
    let request = GetEntityRequest {
        instance_id: id.into(),
        include_state: true,
    };
    let found = api.get_entity(request).await.unwrap().into_inner();
    found.entity.and_then(|e| e.serialized_state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_entity_storage_releases_orphaned_locks() {
    let server = TestServer::start(SidecarOptions::default()).await;
    let mut api = server.client().await;
    let mut stream = open(&mut api, None).await;
    // An orchestration that no longer exists holds the entity's lock.
    let lock = EventKind::EntityLockRequested {
        critical_section_id: "cs-ghost".into(),
        lock_set: vec!["@fake@locked".into()],
        position: 0,
        parent_instance_id: Some("ghost".into()),
    };
    server
        .store
        .send_message(NewMessage {
            instance_id: "@fake@locked".into(),
            execution_id: None,
            event: HistoryEvent::unnumbered(chrono::Utc::now(), lock),
            visible_at: None,
        })
        .await
        .unwrap();
    api.signal_entity(signal("@fake@locked", "add", Some("1")))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let listed = entities(&mut api, "@fake@locked").await;
        if listed.first().is_some_and(|e| e.backlog_queue_size == 1) {
            assert_eq!(listed[0].locked_by.as_deref(), Some("ghost"));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{listed:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        next_item(&mut stream, Duration::from_millis(500))
            .await
            .is_none(),
        "the signal waits for the lock"
    );
    let cleaned = api
        .clean_entity_storage(CleanEntityStorageRequest {
            continuation_token: None,
            remove_empty_entities: false,
            release_orphaned_locks: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cleaned.orphaned_locks_released, 1);
    assert_eq!(cleaned.continuation_token, None, "one page");
    // The waiting signal runs now.
    let (request, token) = next_batch(&mut stream).await;
    assert_eq!(request.instance_id, "@fake@locked");
    assert_eq!(request.operation_requests.len(), 1);
    api.complete_entity_task(result(&token, Some("1"), vec![success("1")]))
        .await
        .unwrap();
    let listed = entities(&mut api, "@fake@locked").await;
    assert_eq!(listed[0].locked_by, None);
    assert_eq!(listed[0].serialized_state.as_deref(), Some("1"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_of_a_remote_orchestration_are_released_when_it_ends() {
    let server = TestServer::start(SidecarOptions::default()).await;
    let mut api = server.client().await;
    let mut stream = open(&mut api, None).await;
    start(&mut api, "fake_locker", "locker-1").await;
    let (_, token) = next_turn(&mut stream).await;
    let lock = SendEntityMessageAction {
        entity_message_type: Some(
            send_entity_message_action::EntityMessageType::EntityLockRequested(
                EntityLockRequestedEvent {
                    critical_section_id: "cs-1".into(),
                    lock_set: vec!["@fake@held".into()],
                    position: 0,
                    parent_instance_id: Some("locker-1".into()),
                },
            ),
        ),
    };
    let actions = vec![action(
        1,
        orchestrator_action::OrchestratorActionType::SendEntityMessage(lock),
    )];
    api.complete_orchestrator_task(response("locker-1", &token, actions))
        .await
        .unwrap();
    // The lock is granted; the orchestration then completes without unlocking (a worker that
    // crashed out of its section, or one that never releases).
    let (request, token) = next_turn(&mut stream).await;
    assert!(
        request.new_events.iter().any(|e| matches!(
            e.event_type,
            Some(history_event::EventType::EntityLockGranted(_))
        )),
        "{request:?}"
    );
    let listed = entities(&mut api, "@fake@held").await;
    assert_eq!(listed[0].locked_by.as_deref(), Some("locker-1"));
    api.complete_orchestrator_task(response("locker-1", &token, vec![complete_action(2, "1")]))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while entities(&mut api, "@fake@held").await[0]
        .locked_by
        .is_some()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lock was not released"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let history = server.store.read_history("locker-1").await.unwrap();
    let unlock = history
        .iter()
        .position(|e| matches!(e.kind, EventKind::EntityUnlockSent { .. }))
        .expect("the unlock is recorded");
    let completed = history
        .iter()
        .position(|e| matches!(e.kind, EventKind::ExecutionCompleted { .. }))
        .unwrap();
    assert!(unlock < completed, "the unlock comes before the completion");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_keeps_failing_is_poison_and_a_lost_worker_is_replaced() {
    let server = TestServer::start(SidecarOptions::default()).await;
    let mut api = server.client().await;
    let mut stream = open(&mut api, None).await;
    api.signal_entity(signal("@fake@poison", "add", Some("1")))
        .await
        .unwrap();
    // Every answer is refused (no results for one operation): the batch comes back each time,
    // and after the tenth delivery it is failed as poison instead of sent again.
    let mut deliveries = 0;
    while let Some(item) = next_item(&mut stream, Duration::from_secs(3)).await {
        deliveries += 1;
        let refused = api
            .complete_entity_task(result(&item.completion_token, Some("1"), vec![]))
            .await;
        assert_eq!(refused.unwrap_err().code(), Code::InvalidArgument);
    }
    assert_eq!(deliveries, 10);
    let listed = entities(&mut api, "@fake@poison").await;
    assert_eq!(listed[0].serialized_state, None, "the state did not change");
    assert_eq!(listed[0].backlog_queue_size, 0, "the operation was dropped");

    // A worker that goes away mid-batch: the batch goes to the next one.
    api.signal_entity(signal("@fake@lost", "add", Some("2")))
        .await
        .unwrap();
    let (_, _lost_token) = next_batch(&mut stream).await;
    drop(stream);
    let mut stream = open(&mut api, None).await;
    let (request, token) = next_batch(&mut stream).await;
    assert_eq!(request.instance_id, "@fake@lost");
    api.complete_entity_task(result(&token, Some("2"), vec![success("2")]))
        .await
        .unwrap();
    assert_eq!(state_of(&mut api, "@fake@lost").await.as_deref(), Some("2"));
    server.stop().await;
}
