//! The work-item stream: health pings, re-dispatch after a disconnect, late completions,
//! abandon, and work-item filters.

use std::time::Duration;

use durable_grpc::SidecarOptions;
use durable_grpc::proto::work_item::Request;
use durable_grpc::proto::*;

use crate::support::TestServer;
use crate::support::fake_worker::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_streams_get_health_pings() {
    let options = SidecarOptions {
        health_ping_interval: Duration::from_millis(200),
        ..Default::default()
    };
    let server = TestServer::start(options).await;
    let mut api = server.client().await;
    let mut stream = open(&mut api, None).await;
    let ping = tokio::time::timeout(Duration::from_secs(3), stream.message())
        .await
        .expect("a ping within 3 s")
        .unwrap()
        .unwrap();
    assert!(matches!(ping.request, Some(Request::HealthPing(_))));
    assert!(ping.completion_token.is_empty());
    assert!(server.sidecar.has_workers());
    drop(stream);
    tokio::time::timeout(Duration::from_secs(5), async {
        while server.sidecar.has_workers() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the closed stream is noticed");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_completion_after_a_disconnect_is_still_accepted() {
    let server = TestServer::start(SidecarOptions::default()).await;
    let mut api = server.client().await;
    let mut stream = open(&mut api, None).await;
    start(&mut api, "fake_orch", "late-1").await;
    let (_, token) = next_turn(&mut stream).await;
    drop(stream);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let done = response("late-1", &token, vec![complete_action(1, "\"late\"")]);
    api.complete_orchestrator_task(done).await.unwrap();
    let state = server
        .durable_client()
        .status("late-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.output.as_deref(), Some("\"late\""));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_of_a_vanished_worker_is_dispatched_again() {
    let server = TestServer::start(SidecarOptions::default()).await;
    let mut api = server.client().await;
    let mut first = open(&mut api, None).await;
    start(&mut api, "fake_orch", "gone-1").await;
    let (_, old_token) = next_turn(&mut first).await;
    drop(first);
    let mut second = open(&mut api, None).await;
    // After the grace period for late completions the item goes to the other stream.
    let item = next_item(&mut second, Duration::from_secs(15))
        .await
        .expect("re-dispatched");
    let Some(Request::OrchestratorRequest(request)) = item.request else {
        panic!("expected the orchestration turn again");
    };
    assert_eq!(request.instance_id, "gone-1");
    assert_ne!(item.completion_token, old_token);
    // The old token is stale now: OK, and ignored.
    let stale = response("gone-1", &old_token, vec![complete_action(1, "\"old\"")]);
    api.complete_orchestrator_task(stale).await.unwrap();
    let done = response(
        "gone-1",
        &item.completion_token,
        vec![complete_action(1, "\"new\"")],
    );
    api.complete_orchestrator_task(done).await.unwrap();
    let state = server
        .durable_client()
        .status("gone-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.output.as_deref(), Some("\"new\""));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_items_come_back_and_activities_round_trip() {
    let server = TestServer::start(SidecarOptions::default()).await;
    let mut api = server.client().await;
    let mut stream = open(&mut api, None).await;
    start(&mut api, "fake_orch", "ab-1").await;
    let (_, token) = next_turn(&mut stream).await;
    let abandon = AbandonOrchestrationTaskRequest {
        completion_token: token.clone(),
    };
    api.abandon_task_orchestrator_work_item(abandon)
        .await
        .unwrap();
    let (request, token) = next_turn(&mut stream).await;
    assert_eq!(request.new_events.len(), 2, "the same events again");
    let schedule = response("ab-1", &token, vec![schedule_action(1, "fake_activity")]);
    api.complete_orchestrator_task(schedule).await.unwrap();

    let item = next_item(&mut stream, Duration::from_secs(10))
        .await
        .unwrap();
    let Some(Request::ActivityRequest(activity)) = item.request else {
        panic!("expected the activity");
    };
    assert_eq!(
        (activity.name.as_str(), activity.task_id),
        ("fake_activity", 1)
    );
    let abandon = AbandonActivityTaskRequest {
        completion_token: item.completion_token,
    };
    api.abandon_task_activity_work_item(abandon).await.unwrap();
    let item = next_item(&mut stream, Duration::from_secs(10))
        .await
        .unwrap();
    let failed = ActivityResponse {
        instance_id: "ab-1".into(),
        task_id: 1,
        result: None,
        // Failure is decided by the presence of details, even with an empty message.
        failure_details: Some(TaskFailureDetails {
            error_type: "builtins.ValueError".into(),
            ..Default::default()
        }),
        completion_token: item.completion_token,
    };
    api.complete_activity_task(failed).await.unwrap();
    let (request, _) = next_turn(&mut stream).await;
    let failure = request.new_events.iter().find_map(|e| match &e.event_type {
        Some(history_event::EventType::TaskFailed(f)) => Some(f.clone()),
        _ => None,
    });
    let failure = failure.expect("a taskFailed event");
    assert_eq!(failure.task_scheduled_id, 1);
    assert_eq!(
        failure.failure_details.unwrap().error_type,
        "builtins.ValueError"
    );
    assert_eq!(
        request.past_events.len(),
        3,
        "orchestratorStarted, executionStarted, taskScheduled"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_item_filters_route_and_hold_back_work() {
    let server = TestServer::start(SidecarOptions::default()).await;
    let mut api = server.client().await;
    let filters = WorkItemFilters {
        orchestrations: vec![OrchestrationFilter {
            name: "wanted".into(),
            versions: vec!["2".into()],
        }],
        activities: vec![],
        entities: vec![],
    };
    let mut picky = open(&mut api, Some(filters)).await;
    let versioned = |id: &str, name: &str, version: &str| CreateInstanceRequest {
        instance_id: id.into(),
        name: name.into(),
        version: Some(version.into()),
        ..Default::default()
    };
    api.start_instance(versioned("f-v1", "wanted", "1"))
        .await
        .unwrap();
    api.start_instance(versioned("f-other", "unwanted", "2"))
        .await
        .unwrap();
    api.start_instance(versioned("f-v2", "wanted", "2"))
        .await
        .unwrap();
    let (request, _) = next_turn(&mut picky).await;
    assert_eq!(request.instance_id, "f-v2");
    assert!(
        next_item(&mut picky, Duration::from_millis(1500))
            .await
            .is_none()
    );
    let get = |id: &str| GetInstanceRequest {
        instance_id: id.into(),
        get_inputs_and_outputs: false,
    };
    for id in ["f-v1", "f-other"] {
        let state = api.get_instance(get(id)).await.unwrap().into_inner();
        assert_eq!(
            status_of(&state),
            OrchestrationStatus::Pending,
            "{id} stays pending"
        );
    }
    // A worker without filters takes the rest.
    let mut any = open(&mut api, None).await;
    let mut ids = vec![
        next_turn(&mut any).await.0.instance_id,
        next_turn(&mut any).await.0.instance_id,
    ];
    ids.sort();
    assert_eq!(ids, ["f-other", "f-v1"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_server_ends_streams_and_gives_work_back() {
    let server = TestServer::start(SidecarOptions::default()).await;
    let store = server.store.clone();
    let mut api = server.client().await;
    let mut stream = open(&mut api, None).await;
    start(&mut api, "fake_orch", "stop-1").await;
    next_turn(&mut stream).await;
    server.stop().await;
    let end = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("the stream ends");
    assert!(!matches!(end, Ok(Some(_))), "no more items: {end:?}");
    // The held turn was given back: it can be claimed at once, not only after its lease expires.
    let filter = durable::core::work::NameFilter::All;
    let items = store
        .fetch_orchestration_items(10, Duration::from_secs(30), &filter)
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].lease.instance_id, "stop-1");
}

/// Abandons are a worker declining an item (a version it rejects): they never make it poison.
/// Responses that keep being refused do, after the delivery limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_items_are_not_poison_but_refused_ones_are() {
    let server = TestServer::start(SidecarOptions::default()).await;
    let mut api = server.client().await;
    let mut stream = open(&mut api, None).await;
    start(&mut api, "fake_orch", "declined").await;
    start(&mut api, "fake_orch", "refused").await;
    let limit = durable::core::limits::DEFAULT_MAX_DELIVERIES as usize;
    let mut refusals = 0;
    let mut abandons = 0;
    // Deliveries 1..=limit of "refused" are refused; the next one fails it instead. "declined"
    // is abandoned more often than that and still runs afterwards.
    while refusals < limit || abandons <= limit {
        let (request, token) = next_turn(&mut stream).await;
        if request.instance_id == "declined" {
            let abandon = AbandonOrchestrationTaskRequest {
                completion_token: token,
            };
            api.abandon_task_orchestrator_work_item(abandon)
                .await
                .unwrap();
            abandons += 1;
        } else {
            let bad = vec![complete_action(1, "1"), schedule_action(2, "x")];
            let _ = api
                .complete_orchestrator_task(response("refused", &token, bad))
                .await
                .unwrap_err();
            refusals += 1;
        }
    }
    let client = server.durable_client();
    let refused = client
        .wait_for_completion("refused", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(refused.status, durable::RuntimeStatus::Failed);
    assert_eq!(refused.failure.unwrap().error_type, "PoisonMessage");
    let (_, token) = next_turn(&mut stream).await;
    let done = response("declined", &token, vec![complete_action(1, "\"fine\"")]);
    api.complete_orchestrator_task(done).await.unwrap();
    let declined = client.status("declined").await.unwrap().unwrap();
    assert_eq!(declined.output.as_deref(), Some("\"fine\""));
    server.stop().await;
}
