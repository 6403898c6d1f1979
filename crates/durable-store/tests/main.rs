//! The in-memory store against the shared conformance suite.

use std::sync::Arc;

use durable_core::clock::ManualClock;
use durable_store::{MemoryStore, SharedStore};

async fn memory(clock: ManualClock) -> SharedStore {
    Arc::new(MemoryStore::with_clock(Arc::new(clock)))
}

durable_store::store_conformance!(memory);
