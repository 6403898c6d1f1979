//! # durable
//!
//! Durable functions in Rust. Orchestrations are ordinary `async` functions; every step they
//! take is checkpointed into an append-only history, and after a crash or restart they are rebuilt
//! by replaying it. They can fan out to thousands of activities, wait for events or timers for
//! days without holding memory, and survive `kill -9`.
//!
//! ```no_run
//! use durable::prelude::*;
//!
//! const F1: Activity<String, String> = Activity::new("F1");
//!
//! async fn hello(ctx: OrchestrationContext, name: String) -> Result<String, Error> {
//!     let greeting = ctx.call_activity(F1, name).await?;
//!     Ok(greeting)
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = durable::open_store("sqlite://durable.db")?;
//! let worker = Worker::builder(store)
//!     .orchestration("Hello", hello)
//!     .activity(F1, |_ctx, name: String| async move { Ok::<_, Error>(format!("Hello, {name}!")) })
//!     .start();
//! let client = worker.client();
//! let id = client.start("Hello", "world").await?;
//! let done = client.wait_for_completion(&id, std::time::Duration::from_secs(10)).await?;
//! assert_eq!(done.output_as::<String>()?, "Hello, world!");
//! worker.shutdown().await;
//! # Ok(()) }
//! ```

mod client;
mod entity_query;
pub mod spans;
mod store;
mod worker;

pub use client::{Client, ClientError, ClientResult, StartRequest, StartTarget};
pub use durable_core::entity::{EntityContext, EntityId, EntityState};
pub use durable_core::{
    self as core, Activity, ActivityContext, Error, EventKind, FailureDetails, HistoryEvent,
    IfExists, InstanceQuery, InstanceState, Orchestration, OrchestrationContext, Page, PurgeFilter,
    Registry, RetryPolicy, RuntimeStatus, SubOrchestrationOptions, TaskError, bail,
};
#[cfg(feature = "postgres")]
pub use durable_postgres::{PostgresOptions, PostgresStore};
pub use durable_store::{MemoryStore, SharedStore, Store, StoreError};
pub use entity_query::EntityQuery;
pub use store::{connect, open_store};
pub use worker::{UnknownOrchestrations, Worker, WorkerBuilder, WorkerOptions};

/// Everything an orchestration author needs.
pub mod prelude {
    pub use crate::{
        Activity, ActivityContext, Client, EntityContext, EntityId, Error, Orchestration,
        OrchestrationContext, RetryPolicy, RuntimeStatus, SubOrchestrationOptions, TaskError,
        Worker,
    };
}
