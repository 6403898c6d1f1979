//! Spans reach an OTLP collector (an in-process gRPC server here) with the right parents:
//! client trace → orchestration → activities and sub-orchestration → its activity.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use durable::prelude::*;
use durable::{StartRequest, WorkerOptions};
use durable_otel::OtlpExporter;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans);
        self.0.lock().unwrap().extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

async fn parent(ctx: OrchestrationContext, _: ()) -> Result<String, Error> {
    let a: String = ctx.call_activity("Echo", "a".to_string()).await?;
    let b: String = ctx.call_sub_orchestration("Child", "b".to_string()).await?;
    Ok(format!("{a}{b}"))
}

async fn child(ctx: OrchestrationContext, s: String) -> Result<String, Error> {
    Ok(ctx.call_activity("Echo", s).await?)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_linked_from_the_client_to_every_activity() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let exporter = OtlpExporter::new(Some(&format!("http://{address}"))).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let store =
        durable::open_store(&format!("sqlite://{}", dir.path().join("t.db").display())).unwrap();
    let options = WorkerOptions {
        spans: Some(exporter.clone()),
        idle_poll: Duration::from_millis(50),
        ..Default::default()
    };
    let worker = Worker::builder(store)
        .options(options)
        .orchestration("Parent", parent)
        .orchestration("Child", child)
        .activity("Echo", |_, s: String| async move { Ok::<_, Error>(s) })
        .start();
    let client = worker.client();
    // The caller's trace, as an HTTP traceparent header would bring it.
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let context = durable::core::trace::SpanRef::parse(caller)
        .unwrap()
        .to_context();
    let request = StartRequest::new("Parent")
        .instance_id("p")
        .trace_context(context);
    client.start_with(request).await.unwrap();
    let done = client
        .wait_for_completion("p", Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(done.output_as::<String>().unwrap(), "ab");
    worker.shutdown().await;
    exporter.flush();

    let spans = collector.0.lock().unwrap().clone();
    let named =
        |name: &str| -> Vec<Span> { spans.iter().filter(|s| s.name == name).cloned().collect() };
    let orchestration = named("orchestration Parent");
    let sub = named("orchestration Child");
    let activities = named("activity Echo");
    assert_eq!(
        (orchestration.len(), sub.len(), activities.len()),
        (1, 1, 2),
        "{spans:#?}"
    );
    let (orchestration, sub) = (&orchestration[0], &sub[0]);

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    for span in &spans {
        assert_eq!(hex(&span.trace_id), trace, "one trace: {}", span.name);
    }
    assert_eq!(
        hex(&orchestration.parent_span_id),
        "00f067aa0ba902b7",
        "child of the caller"
    );
    assert_eq!(
        sub.parent_span_id, orchestration.span_id,
        "sub-orchestration under its parent"
    );
    let parents: Vec<&Vec<u8>> = activities.iter().map(|a| &a.parent_span_id).collect();
    assert!(
        parents.contains(&&orchestration.span_id),
        "the parent's activity"
    );
    assert!(parents.contains(&&sub.span_id), "the child's activity");
    assert!(orchestration.end_time_unix_nano > orchestration.start_time_unix_nano);
    assert!(
        orchestration
            .attributes
            .iter()
            .any(|a| a.key == "durable.instance_id")
    );
    server.abort();
}
