//! OpenTelemetry export for `durable`: a span per orchestration execution and per activity run,
//! sent over OTLP/gRPC. Off by default; [`from_env`] turns it on with the standard variables:
//!
//! * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` (e.g.
//!   `http://localhost:4317`), or `OTEL_TRACES_EXPORTER=otlp` (the default endpoint);
//! * `OTEL_TRACES_EXPORTER=none` or `OTEL_SDK_DISABLED=true` turn it off;
//! * `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` name the service (default `durable`).
//!
//! Only the gRPC protocol is built in (`OTEL_EXPORTER_OTLP_PROTOCOL=grpc`).
//!
//! The spans' ids come from the history (see `durable::spans`), so spans reported by different
//! processes for one instance, and spans of other languages' SDKs, join the same trace.

use std::borrow::Cow;
use std::sync::Arc;

use durable::spans::{FinishedSpan, SpanExporter};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, SpanData, SpanEvents, SpanLinks, SpanProcessor,
};

#[derive(Debug, thiserror::Error)]
pub enum OtelError {
    #[error("OpenTelemetry: {0}")]
    Setup(String),
}

/// Exports finished spans through an OpenTelemetry batch processor. The spans are built with
/// exactly the ids the engine derived, so the SDK's own span machinery (which mints ids) is not
/// used.
#[derive(Debug)]
pub struct OtlpExporter {
    processor: BatchSpanProcessor,
    scope: InstrumentationScope,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The exporter the environment asks for, if any.
pub fn from_env() -> Result<Option<Arc<OtlpExporter>>, OtelError> {
    if env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    let exporter = env("OTEL_TRACES_EXPORTER");
    if exporter
        .as_deref()
        .is_some_and(|e| e.eq_ignore_ascii_case("none"))
    {
        return Ok(None);
    }
    if let Some(protocol) =
        env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"))
        && protocol != "grpc"
    {
        return Err(OtelError::Setup(format!(
            "OTLP protocol '{protocol}' is not built in; use OTEL_EXPORTER_OTLP_PROTOCOL=grpc"
        )));
    }
    let endpoint =
        env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"));
    let wanted = endpoint.is_some()
        || exporter
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case("otlp"));
    if !wanted {
        return Ok(None);
    }
    OtlpExporter::new(endpoint.as_deref()).map(Some)
}

impl OtlpExporter {
    /// An exporter sending to `endpoint` (the OTLP default, `http://localhost:4317`, if `None`).
    pub fn new(endpoint: Option<&str>) -> Result<Arc<OtlpExporter>, OtelError> {
        let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
        if let Some(endpoint) = endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let exporter = builder
            .build()
            .map_err(|e| OtelError::Setup(e.to_string()))?;
        let resource = Resource::builder()
            .with_service_name(env("OTEL_SERVICE_NAME").unwrap_or_else(|| "durable".into()))
            .build();
        let mut processor = BatchSpanProcessor::builder(exporter).build();
        processor.set_resource(&resource);
        let scope = InstrumentationScope::builder("durable").build();
        Ok(Arc::new(OtlpExporter { processor, scope }))
    }

    /// Sends everything still buffered.
    pub fn flush(&self) {
        if let Err(e) = self.processor.force_flush() {
            tracing::warn!(error = %e, "could not flush spans");
        }
    }

    /// Flushes and stops the exporter.
    pub fn shutdown(&self) {
        if let Err(e) = self.processor.shutdown() {
            tracing::warn!(error = %e, "could not shut the span exporter down");
        }
    }
}

impl SpanExporter for OtlpExporter {
    fn export(&self, finished: FinishedSpan) {
        // The caller chose not to sample this trace.
        if !finished.span.sampled {
            return;
        }
        let status = match finished.error {
            Some(error) => Status::error(error),
            None => Status::Ok,
        };
        let data = SpanData {
            span_context: SpanContext::new(
                TraceId::from_bytes(finished.span.trace_id),
                SpanId::from_bytes(finished.span.span_id),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: finished
                .parent_span_id
                .map_or(SpanId::INVALID, SpanId::from_bytes),
            parent_span_is_remote: finished.parent_span_id.is_some(),
            span_kind: SpanKind::Internal,
            name: Cow::Owned(finished.name),
            start_time: finished.start,
            end_time: finished.end,
            attributes: finished
                .attributes
                .into_iter()
                .map(|(k, v)| KeyValue::new(k, v))
                .collect(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status,
            instrumentation_scope: self.scope.clone(),
        };
        self.processor.on_end(data);
    }
}
