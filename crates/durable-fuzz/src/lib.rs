//! # durable-fuzz
//!
//! The fuzz targets of durable as plain functions over bytes: the HTTP request decoders (bodies,
//! query strings), the gRPC request messages through their conversion into the engine's types,
//! and the history decoders (the stores' history rows, the protocol's `HistoryEvent`). Each
//! asserts what must hold for any input: no panic, and a refusal that blames the input (a 4xx,
//! a gRPC status of the caller's fault, `Internal` only for a corrupted stored row).
//!
//! `fuzz/` (cargo-fuzz layout, outside the workspace) wraps each in a libFuzzer target for the
//! long tier; this crate's test runs them on stable over the committed corpus in
//! `fuzz/corpus/<target>/` plus deterministic mutations of it ([`mutate`]). See
//! `docs/hostile-input.md`.

mod mutate;

pub use mutate::{Rng, mutate};
use tonic::Code;

/// A fuzz target: takes any bytes, panics only on a bug.
pub type Target = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/<name>.rs` and corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("http_body", http_body),
    ("http_query", http_query),
    ("grpc_request", grpc_request),
    ("proto_history_event", proto_history_event),
    ("history_row", history_row),
];

/// A request body as start and raiseEvent decode it.
pub fn http_body(data: &[u8]) {
    if let Err(e) = durable_http::decode::body(data) {
        assert!(e.status().is_client_error(), "{e:?} for {data:?}");
    }
}

/// A query string as every route that takes one decodes it.
pub fn http_query(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for e in durable_http::decode::query(&text) {
        assert!(e.status().is_client_error(), "{e:?} for {text:?}");
    }
}

/// A request message of the sidecar and its conversion.
pub fn grpc_request(data: &[u8]) {
    if let Err(status) = durable_grpc::decode::request(data) {
        assert_callers_fault(&status);
    }
}

/// A protocol `HistoryEvent` into the engine's event and back.
pub fn proto_history_event(data: &[u8]) {
    if let Err(status) = durable_grpc::decode::history_event(data) {
        assert_callers_fault(&status);
    }
}

/// A stored history row: decodes or is reported as corrupted; what decodes re-encodes exactly.
pub fn history_row(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // both stores keep rows as text columns: never other bytes
    };
    match durable_store::decode_history_row(text) {
        Ok(events) => {
            let again = durable_store::encode_history_row(&events);
            assert_eq!(durable_store::decode_history_row(&again).unwrap(), events);
        }
        Err(e) => assert!(e.to_string().contains("corrupted history row"), "{e}"),
    }
}

fn assert_callers_fault(status: &tonic::Status) {
    assert!(
        !matches!(
            status.code(),
            Code::Internal | Code::Unknown | Code::Unavailable | Code::DataLoss
        ),
        "{status:?}"
    );
}
