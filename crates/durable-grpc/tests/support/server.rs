//! An in-process server for tests: a SQLite store in a temp dir, a native worker with the
//! samples and two Rust orchestrations that call a Python activity and a Python entity, and the sidecar on a free
//! loopback port.

use std::net::SocketAddr;
use std::time::Duration;

use durable::prelude::*;
use durable::{SharedStore, WorkerOptions};
use durable_grpc::proto::task_hub_sidecar_service_client::TaskHubSidecarServiceClient;
use durable_grpc::{Sidecar, SidecarError, SidecarOptions};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// Calls the Python activity `py_shout` from Rust.
async fn rust_calls_python(ctx: OrchestrationContext, text: String) -> Result<String, Error> {
    let shouted: String = ctx.call_activity("py_shout", text).await?;
    Ok(format!("rust got {shouted}"))
}

/// Signals the Python entity `py_counter` (add 2), then calls it (add 3): the value it returns.
async fn rust_calls_python_entity(ctx: OrchestrationContext, key: String) -> Result<i64, Error> {
    let counter = EntityId::new("py_counter", &key);
    ctx.signal_entity(&counter, "add", 2);
    Ok(ctx.call_entity(&counter, "add", 3).await?)
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub store: SharedStore,
    pub sidecar: Sidecar,
    stop: Option<oneshot::Sender<()>>,
    served: Option<JoinHandle<Result<(), SidecarError>>>,
    worker: Option<Worker>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start(options: SidecarOptions) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/hub.db?sync=normal", dir.path().display());
        let store = durable::open_store(&url).unwrap();
        let worker = durable_samples::register(Worker::builder(store.clone()))
            .orchestration("RustCallsPython", rust_calls_python)
            .orchestration("RustCallsPythonEntity", rust_calls_python_entity)
            .options(WorkerOptions {
                only_registered: true,
                idle_poll: Duration::from_millis(200),
                ..Default::default()
            })
            .start();
        let sidecar = Sidecar::new(store.clone(), worker.registry(), options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(sidecar.clone().serve(listener, async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            store,
            sidecar,
            stop: Some(stop),
            served: Some(served),
            worker: Some(worker),
            _dir: dir,
        }
    }

    /// The address the SDKs dial (`localhost`, which may resolve to either loopback).
    pub fn target(&self) -> String {
        format!("localhost:{}", self.addr.port())
    }

    pub async fn client(&self) -> TaskHubSidecarServiceClient<Channel> {
        TaskHubSidecarServiceClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024)
    }

    pub fn durable_client(&self) -> Client {
        Client::new(self.store.clone())
    }

    /// Stops the sidecar (it must stop cleanly) and the native worker.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let served = self.served.take().unwrap();
        tokio::time::timeout(Duration::from_secs(20), served)
            .await
            .expect("the sidecar stops within 20 s")
            .unwrap()
            .unwrap();
        self.worker.take().unwrap().shutdown().await;
    }
}
