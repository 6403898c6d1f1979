//! The public face: [`Sidecar`], its options, and serving it on a listener.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use durable::{Registry, SharedStore};
use futures::StreamExt;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::codegen::http;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;

use crate::error::{RpcError, SidecarError};
use crate::hub::{self, Hub};
use crate::proto::task_hub_sidecar_service_server::TaskHubSidecarServiceServer;
use crate::service::Service;

/// Settings of the gRPC sidecar.
#[derive(Clone)]
pub struct SidecarOptions {
    /// When set, every call must carry metadata `authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// Largest message received or sent as a work item (4 MiB, the SDKs' default receive limit).
    /// Larger requests are answered RESOURCE_EXHAUSTED.
    pub max_message_bytes: usize,
    /// How long an item handed to a remote worker stays leased between renewals; the sidecar
    /// renews it every third of this while the worker has it.
    pub lock_duration: Duration,
    /// How often an idle work-item stream gets a health ping (at most 30 s: the Python worker
    /// reconnects after 120 s of silence).
    pub health_ping_interval: Duration,
}

impl Default for SidecarOptions {
    fn default() -> Self {
        SidecarOptions {
            api_key: None,
            max_message_bytes: 4 * 1024 * 1024,
            lock_duration: Duration::from_secs(30),
            health_ping_interval: Duration::from_secs(20),
        }
    }
}

impl fmt::Debug for SidecarOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SidecarOptions")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("max_message_bytes", &self.max_message_bytes)
            .field("lock_duration", &self.lock_duration)
            .field("health_ping_interval", &self.health_ping_interval)
            .finish()
    }
}

/// The `TaskHubSidecarService` server: the Durable Task SDKs' workers and clients talk to the
/// store through it, next to the native Rust worker of the same process.
#[derive(Clone)]
pub struct Sidecar {
    hub: Arc<Hub>,
}

impl fmt::Debug for Sidecar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sidecar")
            .field("options", &self.hub.options)
            .field("has_workers", &self.has_workers())
            .finish()
    }
}

impl Sidecar {
    /// `native` = the registry of the native Rust worker sharing this store; names registered
    /// there are NOT dispatched to remote workers.
    pub fn new(store: SharedStore, native: &Registry, mut options: SidecarOptions) -> Self {
        options.health_ping_interval = options
            .health_ping_interval
            .clamp(Duration::from_millis(100), Duration::from_secs(30));
        options.lock_duration = options.lock_duration.max(Duration::from_millis(300));
        Sidecar {
            hub: Arc::new(Hub::new(store, native, options)),
        }
    }

    /// Whether any remote worker stream is connected.
    pub fn has_workers(&self) -> bool {
        self.hub.has_workers()
    }

    /// Serves until `shutdown` resolves. A listener on one loopback address also gets its twin
    /// on the other (127.0.0.1 and ::1, same port) when that is free, because the SDKs dial
    /// `localhost`, which may resolve to either. On shutdown the work-item streams end, waits
    /// are answered UNAVAILABLE, and every item held for a remote worker goes back to the store.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), SidecarError> {
        let hub = self.hub;
        let addr = listener.local_addr()?;
        let mut incoming = TcpListenerStream::new(listener).boxed();
        if let Some(twin) = loopback_twin(addr).await {
            incoming = futures::stream::select(incoming, TcpListenerStream::new(twin)).boxed();
        }
        let incoming = incoming.map(|conn| {
            conn.inspect(|stream| {
                let _ = stream.set_nodelay(true);
            })
        });
        let tasks = [
            tokio::spawn(hub::run_dispatcher(hub.clone())),
            tokio::spawn(hub::run_maintenance(hub.clone())),
        ];
        let max = hub.options.max_message_bytes;
        let service = TaskHubSidecarServiceServer::new(Service::new(hub.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(usize::MAX);
        let key = hub.options.api_key.clone();
        let service = InterceptedService::new(service, move |req| authorize(key.as_deref(), req));
        let signal = {
            let hub = hub.clone();
            async move {
                shutdown.await;
                hub.shut_down();
            }
        };
        tracing::info!(%addr, "gRPC sidecar listening");
        let served = Server::builder()
            .layer(tower::util::MapResponseLayer::new(too_large_is_exhausted))
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, signal)
            .await;
        hub.shut_down();
        for task in tasks {
            let _ = task.await;
        }
        for work in hub.drain() {
            hub.decline(work, None).await;
        }
        served.map_err(SidecarError::from)
    }
}

/// The other loopback address on the same port, if the listener is on one and it is free.
async fn loopback_twin(addr: SocketAddr) -> Option<TcpListener> {
    let twin: IpAddr = match addr.ip() {
        IpAddr::V4(v4) if v4.is_loopback() => Ipv6Addr::LOCALHOST.into(),
        IpAddr::V6(v6) if v6.is_loopback() => Ipv4Addr::LOCALHOST.into(),
        _ => return None,
    };
    match TcpListener::bind((twin, addr.port())).await {
        Ok(listener) => Some(listener),
        Err(e) => {
            tracing::debug!(%twin, port = addr.port(), error = %e, "not listening on the other loopback address");
            None
        }
    }
}

/// Checks `authorization: Bearer <key>` on every call when a key is configured.
fn authorize(
    key: Option<&str>,
    request: tonic::Request<()>,
) -> Result<tonic::Request<()>, tonic::Status> {
    let Some(key) = key else { return Ok(request) };
    let given = request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(given) if same_secret(given.trim().as_bytes(), key.as_bytes()) => Ok(request),
        _ => Err(RpcError::Unauthenticated.status()),
    }
}

/// Compares without stopping at the first difference, so timing does not reveal the key.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// tonic answers an over-limit request with OUT_OF_RANGE; the protocol (and grpc-go and
/// grpc-core) use RESOURCE_EXHAUSTED. The sidecar itself never answers OUT_OF_RANGE, so the
/// rewrite is exact. (Such errors are trailers-only responses: the status is in the headers.)
fn too_large_is_exhausted<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    if headers.get("grpc-status").is_some_and(|v| v == "11") {
        headers.insert("grpc-status", http::HeaderValue::from_static("8"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_check() {
        let with = |value: &str| {
            let mut r = tonic::Request::new(());
            r.metadata_mut()
                .insert("authorization", value.parse().unwrap());
            r
        };
        assert!(authorize(None, tonic::Request::new(())).is_ok());
        assert!(authorize(Some("k1"), with("Bearer k1")).is_ok());
        let denied = authorize(Some("k1"), with("Bearer k2")).unwrap_err();
        assert_eq!(denied.code(), tonic::Code::Unauthenticated);
        assert!(authorize(Some("k1"), tonic::Request::new(())).is_err());
        assert!(authorize(Some("k1"), with("k1")).is_err());
    }

    #[test]
    fn api_key_is_not_printed() {
        let options = SidecarOptions {
            api_key: Some("secret".into()),
            ..Default::default()
        };
        assert!(!format!("{options:?}").contains("secret"));
    }
}
