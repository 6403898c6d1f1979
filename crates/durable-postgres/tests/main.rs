//! The PostgreSQL store against the shared conformance suite and its own faults, hubs and
//! runtime smoke tests. Needs a PostgreSQL server: `DURABLE_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`). Every store gets a fresh schema.

mod faults;
mod hubs;
mod runtime;
mod support;

use std::sync::Arc;

use durable_core::clock::ManualClock;
use durable_postgres::PostgresStore;
use durable_store::SharedStore;

async fn store(clock: ManualClock) -> SharedStore {
    let options = support::fresh_options().await;
    Arc::new(
        PostgresStore::connect_with_clock(options, Arc::new(clock))
            .await
            .unwrap(),
    )
}

durable_store::store_conformance!(store);
