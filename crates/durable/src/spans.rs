//! Spans for distributed tracing. The runtime reports a span per finished execution and per
//! activity run to a [`SpanExporter`] (the `durable-otel` crate exports them over OTLP); trace
//! context travels in the history, so spans link up across processes and languages.

use std::time::SystemTime;

use durable_core::trace::SpanRef;

/// A finished span.
#[derive(Clone, Debug, PartialEq)]
pub struct FinishedSpan {
    pub span: SpanRef,
    pub parent_span_id: Option<[u8; 8]>,
    /// `orchestration <name>` or `activity <name>`.
    pub name: String,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<(&'static str, String)>,
    /// The failure message, when it failed.
    pub error: Option<String>,
}

/// Receives finished spans. Must not block: hand them to a background exporter.
pub trait SpanExporter: Send + Sync + std::fmt::Debug + 'static {
    fn export(&self, span: FinishedSpan);
}
