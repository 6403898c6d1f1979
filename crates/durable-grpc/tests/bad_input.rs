//! Bad input gets a status code and changes nothing: malformed or inconsistent responses,
//! stale tokens, oversized messages, unknown instances, a missing API key. Entities: see
//! `entities.rs`.

use std::time::Duration;

use durable_grpc::SidecarOptions;
use durable_grpc::proto::*;
use tonic::Code;

use crate::support::TestServer;
use crate::support::fake_worker::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_responses_are_refused_and_history_stays_unchanged() {
    let server = TestServer::start(SidecarOptions::default()).await;
    let mut api = server.client().await;
    let mut stream = open(&mut api, None).await;
    start(&mut api, "fake_orch", "bad-1").await;
    let (request, token) = next_turn(&mut stream).await;
    assert_eq!(
        request.new_events.len(),
        2,
        "orchestratorStarted + executionStarted"
    );
    let history = || async { server.store.read_history("bad-1").await.unwrap().len() };

    // Tokens: garbage and the wrong kind are INVALID_ARGUMENT; well-formed unknown ones are stale.
    let garbage = api
        .complete_orchestrator_task(response("bad-1", "garbage", vec![]))
        .await;
    assert_eq!(garbage.unwrap_err().code(), Code::InvalidArgument);
    let session = token.split('.').next().unwrap();
    let activity_token = format!("{session}.a.1");
    let wrong_kind = api
        .complete_orchestrator_task(response("bad-1", &activity_token, vec![]))
        .await;
    assert_eq!(wrong_kind.unwrap_err().code(), Code::InvalidArgument);
    let stale = format!("{session}.o.999999");
    api.complete_orchestrator_task(response("bad-1", &stale, vec![complete_action(1, "1")]))
        .await
        .expect("a stale token is answered OK");
    assert_eq!(history().await, 0);

    // Duplicate action ids.
    let duplicate = vec![schedule_action(1, "a"), schedule_action(1, "b")];
    let refused = api
        .complete_orchestrator_task(response("bad-1", &token, duplicate))
        .await;
    assert_eq!(refused.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(history().await, 0, "history unchanged");

    // The item comes back; now an action after the completion.
    let (_, token) = next_turn(&mut stream).await;
    let after = vec![complete_action(1, "1"), schedule_action(2, "a")];
    let refused = api
        .complete_orchestrator_task(response("bad-1", &token, after))
        .await;
    assert_eq!(refused.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(history().await, 0, "history unchanged");

    // A response for another instance than the token's.
    let (_, token) = next_turn(&mut stream).await;
    let refused = api
        .complete_orchestrator_task(response("someone-else", &token, vec![]))
        .await;
    assert_eq!(refused.unwrap_err().code(), Code::InvalidArgument);

    // A well-formed answer is recorded; repeating it is stale and harmless.
    let (_, token) = next_turn(&mut stream).await;
    let done = response("bad-1", &token, vec![complete_action(1, "\"ok\"")]);
    api.complete_orchestrator_task(done.clone()).await.unwrap();
    api.complete_orchestrator_task(done).await.unwrap();
    let state = server
        .durable_client()
        .status("bad-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.output.as_deref(), Some("\"ok\""));
    assert_eq!(history().await, 3, "started, execution started, completed");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_resource_exhausted() {
    let options = SidecarOptions {
        max_message_bytes: 64 * 1024,
        ..Default::default()
    };
    let server = TestServer::start(options).await;
    let mut api = server.client().await;
    let request = CreateInstanceRequest {
        instance_id: "big".into(),
        name: "fake_orch".into(),
        input: Some(format!("\"{}\"", "x".repeat(100 * 1024))),
        ..Default::default()
    };
    let refused = api.start_instance(request).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let small = CreateInstanceRequest {
        instance_id: "small".into(),
        name: "fake_orch".into(),
        ..Default::default()
    };
    api.start_instance(small)
        .await
        .expect("the server still works");
    server.stop().await;

    // Under the message limit but over the payload limit (2 MiB) of the engine.
    let server = TestServer::start(SidecarOptions::default()).await;
    let mut api = server.client().await;
    let request = CreateInstanceRequest {
        instance_id: "big".into(),
        name: "fake_orch".into(),
        input: Some(format!("\"{}\"", "x".repeat(3 * 1024 * 1024))),
        ..Default::default()
    };
    let refused = api.start_instance(request).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_instances_are_not_found() {
    let server = TestServer::start(SidecarOptions::default()).await;
    let mut api = server.client().await;
    let id = || "nobody".to_string();
    let get = GetInstanceRequest {
        instance_id: id(),
        get_inputs_and_outputs: true,
    };
    let found = api.get_instance(get.clone()).await.unwrap().into_inner();
    assert!(!found.exists && found.orchestration_state.is_none());
    let waited = api.wait_for_instance_completion(get).await.unwrap();
    assert!(!waited.into_inner().exists);

    let codes = [
        api.raise_event(RaiseEventRequest {
            instance_id: id(),
            name: "E".into(),
            input: None,
        })
        .await
        .map(drop),
        api.terminate_instance(TerminateRequest {
            instance_id: id(),
            ..Default::default()
        })
        .await
        .map(drop),
        api.suspend_instance(SuspendRequest {
            instance_id: id(),
            reason: None,
        })
        .await
        .map(drop),
        api.resume_instance(ResumeRequest {
            instance_id: id(),
            reason: None,
        })
        .await
        .map(drop),
        api.restart_instance(RestartInstanceRequest {
            instance_id: id(),
            restart_with_new_instance_id: false,
        })
        .await
        .map(drop),
        api.rewind_instance(RewindInstanceRequest {
            instance_id: id(),
            reason: None,
        })
        .await
        .map(drop),
        api.stream_instance_history(StreamInstanceHistoryRequest {
            instance_id: id(),
            ..Default::default()
        })
        .await
        .map(drop),
    ];
    for (i, result) in codes.into_iter().enumerate() {
        assert_eq!(result.unwrap_err().code(), Code::NotFound, "call #{i}");
    }
    let purged = api
        .purge_instances(PurgeInstancesRequest {
            request: Some(purge_instances_request::Request::InstanceId(id())),
            recursive: true,
            is_orchestration: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(purged.deleted_instance_count, 0);
    assert_eq!(purged.is_complete, Some(true));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_is_checked_on_every_call() {
    let options = SidecarOptions {
        api_key: Some("k-123".into()),
        ..Default::default()
    };
    let server = TestServer::start(options).await;
    let mut api = server.client().await;
    let anonymous = api.hello(()).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let with_key = |key: &str| {
        let mut r = tonic::Request::new(());
        r.metadata_mut()
            .insert("authorization", format!("Bearer {key}").parse().unwrap());
        r
    };
    let wrong = api.hello(with_key("nope")).await.unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    api.hello(with_key("k-123")).await.expect("the right key");
    let stream = api.get_work_items(GetWorkItemsRequest::default()).await;
    assert_eq!(stream.unwrap_err().code(), Code::Unauthenticated);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_end_at_the_deadline() {
    let server = TestServer::start(SidecarOptions::default()).await;
    let mut api = server.client().await;
    start(&mut api, "nobody_runs_this", "pending-1").await;
    let mut request = tonic::Request::new(GetInstanceRequest {
        instance_id: "pending-1".into(),
        get_inputs_and_outputs: false,
    });
    request.set_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let waited = api.wait_for_instance_start(request).await.unwrap_err();
    // The server answers DEADLINE_EXCEEDED at the deadline; tonic's own client timer, which
    // races it, reports CANCELLED (grpc-core clients, like Python's, say DEADLINE_EXCEEDED).
    assert!(
        matches!(waited.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{waited:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_over_the_message_limit_fails_the_instance() {
    let options = SidecarOptions {
        max_message_bytes: 64 * 1024,
        ..Default::default()
    };
    let server = TestServer::start(options).await;
    let mut api = server.client().await;
    let mut stream = open(&mut api, None).await;
    start(&mut api, "fake_orch", "long").await;
    let (_, token) = next_turn(&mut stream).await;
    let three = (1..=3)
        .map(|id| schedule_action(id, "fake_activity"))
        .collect();
    api.complete_orchestrator_task(response("long", &token, three))
        .await
        .unwrap();
    let big = format!("\"{}\"", "y".repeat(30 * 1024));
    let client = server.durable_client();
    // Each result fits a message; together they make the next work item too large to send.
    loop {
        let state = client.status("long").await.unwrap().unwrap();
        if state.status.is_terminal() {
            let failure = state.failure.expect("failure details");
            assert_eq!(failure.error_type, "MessageTooLarge", "{failure:?}");
            break;
        }
        let Some(item) = next_item(&mut stream, Duration::from_millis(500)).await else {
            continue;
        };
        match item.request {
            Some(work_item::Request::ActivityRequest(a)) => {
                let done = ActivityResponse {
                    instance_id: "long".into(),
                    task_id: a.task_id,
                    result: Some(big.clone()),
                    failure_details: None,
                    completion_token: item.completion_token,
                };
                api.complete_activity_task(done).await.unwrap();
            }
            Some(work_item::Request::OrchestratorRequest(_)) => {
                let waiting = response("long", &item.completion_token, vec![]);
                api.complete_orchestrator_task(waiting).await.unwrap();
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_hub_calls_are_no_ops() {
    let server = TestServer::start(SidecarOptions::default()).await;
    let mut api = server.client().await;
    api.create_task_hub(CreateTaskHubRequest::default())
        .await
        .expect("a no-op");
    api.delete_task_hub(DeleteTaskHubRequest::default())
        .await
        .expect("a no-op");
    server.stop().await;
}
