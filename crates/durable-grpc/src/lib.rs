//! # durable-grpc
//!
//! The Durable Task sidecar protocol (`TaskHubSidecarService`) for durable: the Durable Task SDKs
//! (Python `durabletask` 1.12, JavaScript, Java, .NET, Go) connect to [`Sidecar`] as their
//! sidecar and run their orchestrations, activities and entities on the engine and store, next to the
//! native Rust worker of the same process. A Python orchestration can call a Rust activity and a
//! Rust orchestration a Python activity: names the native worker registered stay native, every
//! other name goes to the remote workers.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use durable::{Worker, WorkerOptions};
//! use durable_grpc::{Sidecar, SidecarOptions};
//!
//! let store = durable::open_store("sqlite://durable.db")?;
//! let worker = Worker::builder(store.clone())
//!     .options(WorkerOptions { only_registered: true, ..Default::default() })
//!     .start();
//! let sidecar = Sidecar::new(store, worker.registry(), SidecarOptions::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:4001").await?;
//! sidecar.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! worker.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! See `docs/grpc.md` for what is supported, the status codes and the limits, and
//! `docs/entities.md` for durable entities written with the SDKs.

mod codec;
mod convert;
pub mod decode;
mod entities;
mod error;
mod hub;
mod instances;
mod listing;
mod server;
mod service;

/// The protocol's messages and the generated client and server, from
/// `proto/orchestrator_service.proto` (no proto package, as the SDKs expect).
#[allow(missing_docs, missing_debug_implementations, clippy::all)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/_.rs"));
}

/// The compiled `FileDescriptorSet` of the protocol (for reflection and the descriptor test).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/orchestrator_service.bin"));

pub use error::SidecarError;
pub use server::{Sidecar, SidecarOptions};
