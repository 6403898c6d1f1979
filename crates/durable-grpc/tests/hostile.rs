//! The hostile-input table of the sidecar: for every RPC of the service descriptor, malformed,
//! oversized and wrong-type requests with the documented status code; never INTERNAL, UNKNOWN or
//! UNAVAILABLE, and the server still serves after each. Adding an RPC means adding rows:
//! `every_rpc_has_rows` fails for an RPC of the descriptor without a typed row.

use std::collections::BTreeSet;
use std::str::FromStr;

use durable::core::limits::{DEFAULT_MAX_PAYLOAD_BYTES, MAX_INSTANCE_ID_BYTES, MAX_NAME_BYTES};
use durable_grpc::SidecarOptions;
use durable_grpc::proto::task_hub_sidecar_service_client::TaskHubSidecarServiceClient;
use durable_grpc::proto::*;
use futures::future::BoxFuture;
use prost::bytes::{Buf, BufMut};
use prost_reflect::DescriptorPool;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::support::TestServer;

const KEY: &str = "hostile-key";
/// A running instance no worker serves (it stays pending) and a completed one.
const LIVE: &str = "live";
const DONE: &str = "done";
/// The message limit of the server under test (smaller than the default to keep rows cheap).
const MAX_MESSAGE: usize = 3 * 1024 * 1024;

type Interceptor = fn(Request<()>) -> Result<Request<()>, Status>;
type Api = TaskHubSidecarServiceClient<InterceptedService<Channel, Interceptor>>;

fn with_key(mut request: Request<()>) -> Result<Request<()>, Status> {
    let value = format!("Bearer {KEY}").parse().unwrap();
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

/// One typed call and the code it must get (`Code::Ok` for calls that must succeed).
struct Row {
    rpc: &'static str,
    what: &'static str,
    code: Code,
    call: Box<dyn Fn(Api) -> BoxFuture<'static, Result<(), Status>>>,
}

macro_rules! row {
    ($rpc:literal, $what:literal, $code:expr, $method:ident, $request:expr) => {
        Row {
            rpc: $rpc,
            what: $what,
            code: $code,
            call: Box::new(move |mut api: Api| {
                let request = $request;
                Box::pin(async move { api.$method(request).await.map(drop) })
            }),
        }
    };
}

fn s(text: &str) -> String {
    text.to_string()
}

fn long(n: usize) -> String {
    "x".repeat(n)
}

fn over_id() -> String {
    long(MAX_INSTANCE_ID_BYTES + 1)
}

fn over_name() -> String {
    long(MAX_NAME_BYTES + 1)
}

fn deep() -> String {
    "[".repeat(100) + &"]".repeat(100)
}

fn oversized_payload() -> String {
    format!("\"{}\"", long(DEFAULT_MAX_PAYLOAD_BYTES))
}

fn start(id: &str, name: &str, input: Option<String>) -> CreateInstanceRequest {
    CreateInstanceRequest {
        instance_id: s(id),
        name: s(name),
        input,
        ..Default::default()
    }
}

fn get(id: &str) -> GetInstanceRequest {
    GetInstanceRequest {
        instance_id: s(id),
        get_inputs_and_outputs: true,
    }
}

fn raise(id: &str, name: &str, input: Option<String>) -> RaiseEventRequest {
    RaiseEventRequest {
        instance_id: s(id),
        name: s(name),
        input,
    }
}

fn far_future() -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: i64::MAX,
        nanos: 0,
    })
}

fn query(q: InstanceQuery) -> QueryInstancesRequest {
    QueryInstancesRequest { query: Some(q) }
}

fn rows() -> Vec<Row> {
    use purge_instances_request::Request as Purge;
    let activity_response = |token: &str| ActivityResponse {
        instance_id: s(LIVE),
        task_id: 1,
        result: Some(s("1")),
        failure_details: None,
        completion_token: s(token),
    };
    let turn_response = |token: &str| OrchestratorResponse {
        instance_id: s(LIVE),
        completion_token: s(token),
        ..Default::default()
    };
    vec![
        row!("Hello", "an empty call", Code::Ok, hello, ()),
        // Starts.
        row!(
            "StartInstance",
            "empty name",
            Code::InvalidArgument,
            start_instance,
            start("s1", "", None)
        ),
        row!(
            "StartInstance",
            "name over MAX_NAME_BYTES",
            Code::InvalidArgument,
            start_instance,
            start("s2", &over_name(), None)
        ),
        row!(
            "StartInstance",
            "id over MAX_INSTANCE_ID_BYTES",
            Code::InvalidArgument,
            start_instance,
            start(&over_id(), "fake_orch", None)
        ),
        row!(
            "StartInstance",
            "id with a control character",
            Code::InvalidArgument,
            start_instance,
            start("a\u{0}b", "fake_orch", None)
        ),
        row!(
            "StartInstance",
            "input that is not JSON",
            Code::InvalidArgument,
            start_instance,
            start("s3", "fake_orch", Some(s("{")))
        ),
        row!(
            "StartInstance",
            "input nested past MAX_JSON_DEPTH",
            Code::InvalidArgument,
            start_instance,
            start("s4", "fake_orch", Some(deep()))
        ),
        row!(
            "StartInstance",
            "input over the payload limit",
            Code::ResourceExhausted,
            start_instance,
            start("s5", "fake_orch", Some(oversized_payload()))
        ),
        row!(
            "StartInstance",
            "the id of an existing instance",
            Code::AlreadyExists,
            start_instance,
            start(LIVE, "fake_orch", None)
        ),
        row!(
            "StartInstance",
            "a reuse policy with an unknown status",
            Code::InvalidArgument,
            start_instance,
            CreateInstanceRequest {
                orchestration_id_reuse_policy: Some(OrchestrationIdReusePolicy {
                    replaceable_status: vec![99],
                }),
                ..start("s6", "fake_orch", None)
            }
        ),
        row!(
            "StartInstance",
            "a start time out of range",
            Code::InvalidArgument,
            start_instance,
            CreateInstanceRequest {
                scheduled_start_timestamp: far_future(),
                ..start("s7", "fake_orch", None)
            }
        ),
        // Reads and waits.
        row!(
            "GetInstance",
            "unknown instance: exists = false",
            Code::Ok,
            get_instance,
            get("nobody")
        ),
        row!(
            "GetInstance",
            "id over MAX_INSTANCE_ID_BYTES",
            Code::InvalidArgument,
            get_instance,
            get(&over_id())
        ),
        row!(
            "WaitForInstanceStart",
            "unknown instance: exists = false",
            Code::Ok,
            wait_for_instance_start,
            get("nobody")
        ),
        row!(
            "WaitForInstanceStart",
            "id over MAX_INSTANCE_ID_BYTES",
            Code::InvalidArgument,
            wait_for_instance_start,
            get(&over_id())
        ),
        row!(
            "WaitForInstanceCompletion",
            "unknown instance: exists = false",
            Code::Ok,
            wait_for_instance_completion,
            get("nobody")
        ),
        row!(
            "WaitForInstanceCompletion",
            "id over MAX_INSTANCE_ID_BYTES",
            Code::InvalidArgument,
            wait_for_instance_completion,
            get(&over_id())
        ),
        // Events and management.
        row!(
            "RaiseEvent",
            "unknown instance",
            Code::NotFound,
            raise_event,
            raise("nobody", "E", None)
        ),
        row!(
            "RaiseEvent",
            "empty event name",
            Code::InvalidArgument,
            raise_event,
            raise(LIVE, "", None)
        ),
        row!(
            "RaiseEvent",
            "event name over MAX_NAME_BYTES",
            Code::InvalidArgument,
            raise_event,
            raise(LIVE, &over_name(), None)
        ),
        row!(
            "RaiseEvent",
            "data that is not JSON",
            Code::InvalidArgument,
            raise_event,
            raise(LIVE, "E", Some(s("nope")))
        ),
        row!(
            "RaiseEvent",
            "data over the payload limit",
            Code::ResourceExhausted,
            raise_event,
            raise(LIVE, "E", Some(oversized_payload()))
        ),
        row!(
            "RaiseEvent",
            "a finished instance drops it",
            Code::Ok,
            raise_event,
            raise(DONE, "E", None)
        ),
        row!(
            "RaiseEvent",
            "id over MAX_INSTANCE_ID_BYTES",
            Code::InvalidArgument,
            raise_event,
            raise(&over_id(), "E", None)
        ),
        row!(
            "TerminateInstance",
            "unknown instance",
            Code::NotFound,
            terminate_instance,
            TerminateRequest {
                instance_id: s("nobody"),
                ..Default::default()
            }
        ),
        row!(
            "TerminateInstance",
            "output that is not JSON",
            Code::InvalidArgument,
            terminate_instance,
            TerminateRequest {
                instance_id: s(LIVE),
                output: Some(s("{")),
                recursive: false
            }
        ),
        row!(
            "TerminateInstance",
            "a finished instance: no-op",
            Code::Ok,
            terminate_instance,
            TerminateRequest {
                instance_id: s(DONE),
                ..Default::default()
            }
        ),
        row!(
            "SuspendInstance",
            "unknown instance",
            Code::NotFound,
            suspend_instance,
            SuspendRequest {
                instance_id: s("nobody"),
                reason: None
            }
        ),
        row!(
            "SuspendInstance",
            "a finished instance",
            Code::FailedPrecondition,
            suspend_instance,
            SuspendRequest {
                instance_id: s(DONE),
                reason: None
            }
        ),
        row!(
            "SuspendInstance",
            "id over MAX_INSTANCE_ID_BYTES",
            Code::InvalidArgument,
            suspend_instance,
            SuspendRequest {
                instance_id: over_id(),
                reason: None
            }
        ),
        row!(
            "ResumeInstance",
            "unknown instance",
            Code::NotFound,
            resume_instance,
            ResumeRequest {
                instance_id: s("nobody"),
                reason: None
            }
        ),
        row!(
            "ResumeInstance",
            "a finished instance: no-op",
            Code::Ok,
            resume_instance,
            ResumeRequest {
                instance_id: s(DONE),
                reason: None
            }
        ),
        row!(
            "RestartInstance",
            "unknown instance",
            Code::NotFound,
            restart_instance,
            RestartInstanceRequest {
                instance_id: s("nobody"),
                restart_with_new_instance_id: true
            }
        ),
        row!(
            "RestartInstance",
            "a running instance",
            Code::FailedPrecondition,
            restart_instance,
            RestartInstanceRequest {
                instance_id: s(LIVE),
                restart_with_new_instance_id: false
            }
        ),
        row!(
            "RewindInstance",
            "unknown instance",
            Code::NotFound,
            rewind_instance,
            RewindInstanceRequest {
                instance_id: s("nobody"),
                reason: None
            }
        ),
        row!(
            "RewindInstance",
            "a completed instance",
            Code::FailedPrecondition,
            rewind_instance,
            RewindInstanceRequest {
                instance_id: s(DONE),
                reason: None
            }
        ),
        // Listings and purges.
        row!(
            "QueryInstances",
            "malformed continuation token",
            Code::InvalidArgument,
            query_instances,
            query(InstanceQuery {
                continuation_token: Some(s("garbage")),
                ..Default::default()
            })
        ),
        row!(
            "QueryInstances",
            "unknown status",
            Code::InvalidArgument,
            query_instances,
            query(InstanceQuery {
                runtime_status: vec![99],
                ..Default::default()
            })
        ),
        row!(
            "QueryInstances",
            "a time out of range",
            Code::InvalidArgument,
            query_instances,
            query(InstanceQuery {
                created_time_from: far_future(),
                ..Default::default()
            })
        ),
        row!(
            "QueryInstances",
            "a negative page size is the default",
            Code::Ok,
            query_instances,
            query(InstanceQuery {
                max_instance_count: -5,
                ..Default::default()
            })
        ),
        row!(
            "ListInstanceIds",
            "malformed lastInstanceKey",
            Code::InvalidArgument,
            list_instance_ids,
            ListInstanceIdsRequest {
                last_instance_key: Some(s("no-bar")),
                ..Default::default()
            }
        ),
        row!(
            "ListInstanceIds",
            "unknown status",
            Code::InvalidArgument,
            list_instance_ids,
            ListInstanceIdsRequest {
                runtime_status: vec![-1],
                ..Default::default()
            }
        ),
        row!(
            "PurgeInstances",
            "no request",
            Code::InvalidArgument,
            purge_instances,
            PurgeInstancesRequest::default()
        ),
        row!(
            "PurgeInstances",
            "a batch over 500 ids",
            Code::InvalidArgument,
            purge_instances,
            PurgeInstancesRequest {
                request: Some(Purge::InstanceBatch(InstanceBatch {
                    instance_ids: (0..501).map(|i| i.to_string()).collect(),
                })),
                ..Default::default()
            }
        ),
        // Only finished instances are purged: 0 deleted (the live one is checked at the end).
        row!(
            "PurgeInstances",
            "a live instance",
            Code::Ok,
            purge_instances,
            PurgeInstancesRequest {
                request: Some(Purge::InstanceId(s(LIVE))),
                ..Default::default()
            }
        ),
        row!(
            "PurgeInstances",
            "a filter with an unknown status",
            Code::InvalidArgument,
            purge_instances,
            PurgeInstancesRequest {
                request: Some(Purge::PurgeInstanceFilter(PurgeInstanceFilter {
                    runtime_status: vec![42],
                    ..Default::default()
                })),
                ..Default::default()
            }
        ),
        row!(
            "StreamInstanceHistory",
            "unknown instance",
            Code::NotFound,
            stream_instance_history,
            StreamInstanceHistoryRequest {
                instance_id: s("nobody"),
                ..Default::default()
            }
        ),
        row!(
            "StreamInstanceHistory",
            "id over MAX_INSTANCE_ID_BYTES",
            Code::InvalidArgument,
            stream_instance_history,
            StreamInstanceHistoryRequest {
                instance_id: over_id(),
                ..Default::default()
            }
        ),
        // Work items.
        row!(
            "GetWorkItems",
            "concurrency far over the cap is capped",
            Code::Ok,
            get_work_items,
            GetWorkItemsRequest {
                max_concurrent_orchestration_work_items: i32::MAX,
                max_concurrent_activity_work_items: -1,
                ..Default::default()
            }
        ),
        row!(
            "CompleteActivityTask",
            "malformed token",
            Code::InvalidArgument,
            complete_activity_task,
            activity_response("garbage")
        ),
        row!(
            "CompleteActivityTask",
            "a token of the other kind",
            Code::InvalidArgument,
            complete_activity_task,
            activity_response("0123abcd.o.1")
        ),
        row!(
            "CompleteActivityTask",
            "a stale token is OK and ignored",
            Code::Ok,
            complete_activity_task,
            activity_response("0123abcd.a.99")
        ),
        row!(
            "CompleteOrchestratorTask",
            "malformed token",
            Code::InvalidArgument,
            complete_orchestrator_task,
            turn_response("a.b")
        ),
        row!(
            "CompleteOrchestratorTask",
            "a stale token is OK and ignored",
            Code::Ok,
            complete_orchestrator_task,
            turn_response("0123abcd.o.99")
        ),
        row!(
            "AbandonTaskActivityWorkItem",
            "malformed token",
            Code::InvalidArgument,
            abandon_task_activity_work_item,
            AbandonActivityTaskRequest {
                completion_token: s("")
            }
        ),
        row!(
            "AbandonTaskActivityWorkItem",
            "a stale token",
            Code::Ok,
            abandon_task_activity_work_item,
            AbandonActivityTaskRequest {
                completion_token: s("0123abcd.a.98")
            }
        ),
        row!(
            "AbandonTaskOrchestratorWorkItem",
            "malformed token",
            Code::InvalidArgument,
            abandon_task_orchestrator_work_item,
            AbandonOrchestrationTaskRequest {
                completion_token: s("0123abcd.x.1")
            }
        ),
        row!(
            "AbandonTaskOrchestratorWorkItem",
            "a stale token",
            Code::Ok,
            abandon_task_orchestrator_work_item,
            AbandonOrchestrationTaskRequest {
                completion_token: s("0123abcd.o.98")
            }
        ),
        // No-ops and what is not supported.
        row!(
            "CreateTaskHub",
            "a no-op",
            Code::Ok,
            create_task_hub,
            CreateTaskHubRequest::default()
        ),
        row!(
            "DeleteTaskHub",
            "a no-op",
            Code::Ok,
            delete_task_hub,
            DeleteTaskHubRequest::default()
        ),
        // Entities.
        row!(
            "SignalEntity",
            "no entity id",
            Code::InvalidArgument,
            signal_entity,
            SignalEntityRequest::default()
        ),
        row!(
            "SignalEntity",
            "an id that is not @name@key",
            Code::InvalidArgument,
            signal_entity,
            SignalEntityRequest {
                instance_id: s("counter"),
                name: s("add"),
                ..Default::default()
            }
        ),
        row!(
            "SignalEntity",
            "an input that is not JSON",
            Code::InvalidArgument,
            signal_entity,
            SignalEntityRequest {
                instance_id: s("@counter@k"),
                name: s("add"),
                input: Some(s("{not json")),
                ..Default::default()
            }
        ),
        row!(
            "SignalEntity",
            "no operation",
            Code::InvalidArgument,
            signal_entity,
            SignalEntityRequest {
                instance_id: s("@counter@k"),
                input: Some(s("1")),
                ..Default::default()
            }
        ),
        row!(
            "GetEntity",
            "no entity id",
            Code::InvalidArgument,
            get_entity,
            GetEntityRequest::default()
        ),
        row!(
            "GetEntity",
            "an empty name",
            Code::InvalidArgument,
            get_entity,
            GetEntityRequest {
                instance_id: s("@@key"),
                include_state: true,
            }
        ),
        row!(
            "GetEntity",
            "an entity nobody addressed",
            Code::Ok,
            get_entity,
            GetEntityRequest {
                instance_id: s("@nobody@k"),
                include_state: true,
            }
        ),
        row!(
            "QueryEntities",
            "no query",
            Code::InvalidArgument,
            query_entities,
            QueryEntitiesRequest::default()
        ),
        row!(
            "QueryEntities",
            "a negative page size",
            Code::InvalidArgument,
            query_entities,
            QueryEntitiesRequest {
                query: Some(EntityQuery {
                    page_size: Some(-1),
                    ..Default::default()
                })
            }
        ),
        row!(
            "QueryEntities",
            "a garbage continuation token",
            Code::InvalidArgument,
            query_entities,
            QueryEntitiesRequest {
                query: Some(EntityQuery {
                    continuation_token: Some(s("not-a-token")),
                    ..Default::default()
                })
            }
        ),
        row!(
            "CleanEntityStorage",
            "a garbage continuation token",
            Code::InvalidArgument,
            clean_entity_storage,
            CleanEntityStorageRequest {
                continuation_token: Some(s("garbage")),
                remove_empty_entities: true,
                release_orphaned_locks: true,
            }
        ),
        row!(
            "CleanEntityStorage",
            "nothing to clean",
            Code::Ok,
            clean_entity_storage,
            CleanEntityStorageRequest::default()
        ),
        row!(
            "CompleteEntityTask",
            "no completion token",
            Code::InvalidArgument,
            complete_entity_task,
            EntityBatchResult::default()
        ),
        row!(
            "AbandonTaskEntityWorkItem",
            "no completion token",
            Code::InvalidArgument,
            abandon_task_entity_work_item,
            AbandonEntityTaskRequest::default()
        ),
        row!(
            "SkipGracefulOrchestrationTerminations",
            "not supported",
            Code::Unimplemented,
            skip_graceful_orchestration_terminations,
            SkipGracefulOrchestrationTerminationsRequest::default()
        ),
    ]
}

/// The RPCs of the compiled descriptor: (name, server-streaming).
fn rpcs() -> Vec<(String, bool)> {
    let pool = DescriptorPool::decode(durable_grpc::FILE_DESCRIPTOR_SET).unwrap();
    pool.services()
        .flat_map(|service| {
            service
                .methods()
                .map(|m| (m.name().to_string(), m.is_server_streaming()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Bytes in, bytes out: for requests the generated client cannot express.
#[derive(Clone, Copy, Debug, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let bytes = buf.chunk().to_vec();
        buf.advance(bytes.len());
        Ok(Some(bytes))
    }
}

/// Sends raw bytes to an RPC; a streaming RPC's status may come with its first message.
async fn raw_call(
    channel: &Channel,
    rpc: &str,
    streaming: bool,
    bytes: Vec<u8>,
    key: bool,
) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone())
        .max_encoding_message_size(usize::MAX)
        .max_decoding_message_size(usize::MAX);
    grpc.ready()
        .await
        .map_err(|e| Status::unknown(format!("not ready: {e}")))?;
    let path = PathAndQuery::from_str(&format!("/TaskHubSidecarService/{rpc}")).unwrap();
    let mut request = Request::new(bytes);
    if key {
        let value = format!("Bearer {KEY}").parse().unwrap();
        request.metadata_mut().insert("authorization", value);
    }
    if streaming {
        let mut stream = grpc
            .server_streaming(request, path, Raw)
            .await?
            .into_inner();
        stream.message().await.map(drop)
    } else {
        grpc.unary(request, path, Raw).await.map(drop)
    }
}

/// Requests every RPC gets whatever its message: (what, bytes, with the key, expected code).
fn raw_rows() -> Vec<(&'static str, Vec<u8>, bool, Code)> {
    vec![
        // Field 1, length-delimited, says 5 bytes and carries 1.
        (
            "a truncated message",
            vec![0x0a, 0x05, 0x41],
            true,
            Code::InvalidArgument,
        ),
        // A varint that never ends.
        (
            "a runaway varint",
            vec![
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
            true,
            Code::InvalidArgument,
        ),
        (
            "a message over the limit",
            vec![0; MAX_MESSAGE + 1],
            true,
            Code::ResourceExhausted,
        ),
        ("no API key", Vec::new(), false, Code::Unauthenticated),
    ]
}

async fn server() -> TestServer {
    TestServer::start(SidecarOptions {
        api_key: Some(KEY.into()),
        max_message_bytes: MAX_MESSAGE,
        ..Default::default()
    })
    .await
}

async fn api(server: &TestServer) -> Api {
    let channel = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    TaskHubSidecarServiceClient::with_interceptor(channel, with_key as Interceptor)
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024)
}

fn bad_code(code: Code) -> bool {
    matches!(
        code,
        Code::Internal | Code::Unknown | Code::Unavailable | Code::DataLoss
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_gets_its_documented_code() {
    let server = server().await;
    let mut client = api(&server).await;
    client
        .start_instance(start(LIVE, "fake_orch", None))
        .await
        .unwrap();
    client
        .start_instance(start(DONE, "Chaining", Some(s("\"a\""))))
        .await
        .unwrap();
    let done = client
        .wait_for_instance_completion(get(DONE))
        .await
        .unwrap()
        .into_inner();
    let completed = OrchestrationStatus::Completed as i32;
    assert_eq!(
        done.orchestration_state.unwrap().orchestration_status,
        completed
    );

    let mut failures = Vec::new();
    let table = rows();
    for row in &table {
        let outcome = (row.call)(client.clone()).await;
        let code = outcome.as_ref().err().map_or(Code::Ok, Status::code);
        if code != row.code || bad_code(code) {
            failures.push(format!(
                "{} ({}): {outcome:?}, expected {:?}",
                row.rpc, row.what, row.code
            ));
        }
        client
            .hello(())
            .await
            .unwrap_or_else(|e| panic!("not serving after {}: {e}", row.what));
    }

    let channel = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut raw = 0;
    for (rpc, streaming) in rpcs() {
        for (what, bytes, key, expected) in raw_rows() {
            let outcome = raw_call(&channel, &rpc, streaming, bytes, key).await;
            raw += 1;
            let code = outcome.as_ref().err().map_or(Code::Ok, Status::code);
            if code != expected || bad_code(code) {
                failures.push(format!(
                    "{rpc} ({what}): {outcome:?}, expected {expected:?}"
                ));
            }
        }
        client
            .hello(())
            .await
            .unwrap_or_else(|e| panic!("not serving after raw {rpc}: {e}"));
    }
    println!(
        "hostile gRPC table: {} typed rows, {raw} raw rows over {} RPCs, {} failed",
        table.len(),
        rpcs().len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The live instance is untouched and the engine still runs orchestrations.
    let live = client.get_instance(get(LIVE)).await.unwrap().into_inner();
    let pending = OrchestrationStatus::Pending as i32;
    assert_eq!(
        live.orchestration_state.unwrap().orchestration_status,
        pending
    );
    client
        .start_instance(start("after", "Chaining", Some(s("\"b\""))))
        .await
        .unwrap();
    let after = client
        .wait_for_instance_completion(get("after"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        after.orchestration_state.unwrap().orchestration_status,
        completed
    );
    server.stop().await;
}

#[test]
fn every_rpc_has_rows() {
    let covered: BTreeSet<&str> = rows().iter().map(|r| r.rpc).collect();
    let all: BTreeSet<String> = rpcs().into_iter().map(|(name, _)| name).collect();
    let missing: Vec<_> = all
        .iter()
        .filter(|n| !covered.contains(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "RPCs without rows in the hostile table: {missing:?}"
    );
    let unknown: Vec<_> = covered.iter().filter(|n| !all.contains(**n)).collect();
    assert!(
        unknown.is_empty(),
        "rows for RPCs the descriptor lacks: {unknown:?}"
    );
}

/// The pending-tasks limit for remote workers: a response that would leave more than
/// `DEFAULT_MAX_PENDING_TASKS` tasks pending fails the instance with an error naming the limit,
/// counting the tasks already pending in history (the second turn) as well as the new ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_pending_tasks_fail_the_instance() {
    use crate::support::fake_worker::{next_turn, open, response, schedule_action, start};
    use durable::core::limits::DEFAULT_MAX_PENDING_TASKS;

    let server = TestServer::start(SidecarOptions::default()).await;
    let mut api = server.client().await;
    // Orchestrations only: the scheduled activities stay queued, hence pending.
    let filters = WorkItemFilters {
        orchestrations: vec![OrchestrationFilter {
            name: "fake_orch".into(),
            versions: vec![],
        }],
        activities: vec![ActivityFilter {
            name: "nobody_runs_this".into(),
            versions: vec![],
        }],
        entities: vec![],
    };
    let mut stream = open(&mut api, Some(filters)).await;
    start(&mut api, "fake_orch", "many").await;
    let first = DEFAULT_MAX_PENDING_TASKS as i32 / 2;
    let (_, token) = next_turn(&mut stream).await;
    let actions = (1..=first)
        .map(|id| schedule_action(id, "py_slow"))
        .collect();
    api.complete_orchestrator_task(response("many", &token, actions))
        .await
        .unwrap();
    let client = server.durable_client();
    let state = client.status("many").await.unwrap().unwrap();
    assert_eq!(
        state.status,
        durable::RuntimeStatus::Running,
        "half the limit fits"
    );

    // A second turn adds one more than the rest of the limit.
    api.raise_event(raise("many", "more", None)).await.unwrap();
    let (request, token) = next_turn(&mut stream).await;
    assert_eq!(request.past_events.len() as i32, first + 2);
    let rest = DEFAULT_MAX_PENDING_TASKS as i32 - first + 1;
    let actions = (first + 1..=first + rest)
        .map(|id| schedule_action(id, "py_slow"))
        .collect();
    api.complete_orchestrator_task(response("many", &token, actions))
        .await
        .unwrap();
    let state = client.status("many").await.unwrap().unwrap();
    assert_eq!(state.status, durable::RuntimeStatus::Failed);
    let failure = state.failure.expect("failure details");
    assert_eq!(failure.error_type, "PendingTasksLimitExceeded");
    assert!(
        failure.error_message.contains("max_pending_tasks")
            && failure
                .error_message
                .contains(&format!("{}", DEFAULT_MAX_PENDING_TASKS + 1)),
        "{}",
        failure.error_message
    );
    server.stop().await;
}
