//! `durable serve`: the engine, the HTTP API and the gRPC sidecar in one process.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use durable::{Registry, Worker, WorkerOptions};
use durable_grpc::{Sidecar, SidecarOptions};
use durable_http::metrics::ScaleOptions;
use durable_http::{ApiOptions, OrchestrationCatalog};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::audit::AuditStore;

#[derive(Debug, Clone)]
pub struct ServeArgs {
    pub http: String,
    /// `None` turns the gRPC sidecar off.
    pub grpc: Option<String>,
    pub store: String,
    pub samples: bool,
    pub api_key: Option<String>,
    pub insecure: bool,
    pub lock_duration: Duration,
    pub audit_log: Option<PathBuf>,
    /// Registers the torture workload, logging activity executions to this file.
    pub torture_log: Option<PathBuf>,
    pub scale: ScaleOptions,
}

fn resolve(what: &str, addr: &str) -> Result<SocketAddr> {
    addr.to_socket_addrs()
        .with_context(|| format!("{what} address '{addr}' is not HOST:PORT"))?
        .next()
        .with_context(|| format!("{what} address '{addr}' resolves to nothing"))
}

/// Without an API key, only loopback addresses are served, unless `--insecure` says otherwise.
fn guard_exposure(addrs: &[(&str, SocketAddr)], args: &ServeArgs) -> Result<()> {
    if args.api_key.is_some() || args.insecure {
        return Ok(());
    }
    for (what, addr) in addrs {
        if !addr.ip().is_loopback() {
            bail!(
                "refusing to serve {what} on {addr} without an API key: anyone who can reach it could \
                 start and terminate instances. Set --api-key (or DURABLE_API_KEY), or pass --insecure"
            );
        }
    }
    Ok(())
}

/// Start requests and entity signals may name the native orchestrations and entities, or
/// anything while a gRPC worker (whose names the server cannot know) is connected.
struct Catalog {
    registry: Registry,
    sidecar: Option<Sidecar>,
}

impl Catalog {
    fn native(&self, names: Vec<&str>) -> Option<Vec<String>> {
        let remote = self.sidecar.as_ref().is_some_and(Sidecar::has_workers);
        (!remote).then(|| names.into_iter().map(String::from).collect())
    }
}

impl OrchestrationCatalog for Catalog {
    fn known(&self) -> Option<Vec<String>> {
        self.native(self.registry.orchestration_names())
    }

    fn known_entities(&self) -> Option<Vec<String>> {
        self.native(self.registry.entity_names())
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

pub async fn run(args: ServeArgs) -> Result<()> {
    let http_addr = resolve("HTTP", &args.http)?;
    let grpc_addr = args
        .grpc
        .as_deref()
        .map(|a| resolve("gRPC", a))
        .transpose()?;
    let mut exposed = vec![("the HTTP API", http_addr)];
    exposed.extend(grpc_addr.map(|a| ("gRPC", a)));
    guard_exposure(&exposed, &args)?;

    let mut store = durable::connect(&args.store)
        .await
        .with_context(|| format!("cannot open the store '{}'", args.store))?;
    if let Some(path) = &args.audit_log {
        let audited = AuditStore::open(store, path)
            .with_context(|| format!("cannot open the audit log {}", path.display()))?;
        store = Arc::new(audited);
    }
    let mut registry = if args.samples {
        durable_samples::registry()
    } else {
        Registry::new()
    };
    if let Some(log) = &args.torture_log {
        let torture = crate::torture::workload::registry(log)
            .with_context(|| format!("cannot open the execution log {}", log.display()))?;
        registry.merge(&torture);
    }
    let spans = durable_otel::from_env().context("cannot set up OpenTelemetry export")?;
    let options = WorkerOptions {
        only_registered: grpc_addr.is_some(),
        spans: spans
            .clone()
            .map(|s| s as Arc<dyn durable::spans::SpanExporter>),
        lock_duration: args.lock_duration,
        ..Default::default()
    };
    let worker = Worker::builder(store.clone())
        .registry(&registry)
        .options(options)
        .start();
    let sidecar = grpc_addr.map(|_| {
        let options = SidecarOptions {
            api_key: args.api_key.clone(),
            lock_duration: args.lock_duration,
            ..Default::default()
        };
        Sidecar::new(store.clone(), &registry, options)
    });
    let catalog = Arc::new(Catalog {
        registry: registry.clone(),
        sidecar: sidecar.clone(),
    });
    let api = ApiOptions {
        api_key: args.api_key.clone(),
        ..Default::default()
    };
    let monitoring = durable_http::metrics::router(worker.client(), args.scale.clone())
        .method_not_allowed_fallback(durable_http::method_not_allowed)
        .layer(durable_http::require_api_key(args.api_key.clone()));
    // The dashboard's files are open (they hold no data); the API calls it makes need the key.
    let dashboard =
        durable_dashboard::router().method_not_allowed_fallback(durable_http::method_not_allowed);
    let app = durable_http::router(worker.client(), catalog, api)
        .merge(monitoring)
        .merge(dashboard);

    let http_listener = TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("cannot listen for HTTP on {http_addr}"))?;
    let grpc_listener = match grpc_addr {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for gRPC on {addr}"))?,
        ),
        None => None,
    };

    eprintln!("durable serve");
    eprintln!("  store      {}", store.describe());
    eprintln!("  HTTP API   http://{}", http_listener.local_addr()?);
    eprintln!("  dashboard  http://{}/", http_listener.local_addr()?);
    match &grpc_listener {
        Some(l) => eprintln!(
            "  gRPC       {} (Durable Task sidecar protocol)",
            l.local_addr()?
        ),
        None => eprintln!("  gRPC       off"),
    }
    if args.samples {
        eprintln!(
            "  samples    {}",
            durable_samples::ORCHESTRATIONS.join(", ")
        );
    }
    eprintln!(
        "  monitoring {} (Prometheus), {}",
        durable_http::metrics::METRICS_PATH,
        durable_http::metrics::SCALE_PATH
    );
    eprintln!("  leases     {:?}", args.lock_duration);
    if let Some(path) = &args.audit_log {
        eprintln!("  audit log  {}", path.display());
    }
    eprintln!(
        "  auth       {}",
        if args.api_key.is_some() {
            "API key required"
        } else {
            "none (loopback only)"
        }
    );
    tracing::info!(http = %http_addr, grpc = ?grpc_addr, store = %store.describe(), "durable serve started");

    let (stop, stop_rx) = watch::channel(false);
    let http = tokio::spawn(
        axum::serve(http_listener, app.into_make_service())
            .with_graceful_shutdown(stopped(stop_rx.clone()))
            .into_future(),
    );
    let grpc = match (sidecar, grpc_listener) {
        (Some(sidecar), Some(listener)) => {
            Some(tokio::spawn(sidecar.serve(listener, stopped(stop_rx))))
        }
        _ => None,
    };

    signal().await;
    eprintln!("durable serve: shutting down (finishing running work, releasing leases)");
    let _ = stop.send(true);
    if let Err(e) = http.await? {
        tracing::warn!(error = %e, "HTTP server ended with an error");
    }
    if let Some(grpc) = grpc
        && let Err(e) = grpc.await?
    {
        tracing::warn!(error = %e, "gRPC server ended with an error");
    }
    worker.shutdown().await;
    if let Some(spans) = spans {
        spans.shutdown();
    }
    eprintln!("durable serve: stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(key: Option<&str>, insecure: bool) -> ServeArgs {
        ServeArgs {
            http: "0.0.0.0:7071".into(),
            grpc: None,
            store: "sqlite::memory:".into(),
            samples: false,
            api_key: key.map(String::from),
            insecure,
            lock_duration: Duration::from_secs(30),
            audit_log: None,
            torture_log: None,
            scale: ScaleOptions::default(),
        }
    }

    #[test]
    fn public_addresses_need_a_key_or_insecure() {
        let public = [("HTTP", "0.0.0.0:7071".parse().unwrap())];
        let local = [("HTTP", "127.0.0.1:7071".parse().unwrap())];
        let err = guard_exposure(&public, &args(None, false)).unwrap_err();
        assert!(err.to_string().contains("--api-key"), "{err}");
        assert!(guard_exposure(&public, &args(Some("k"), false)).is_ok());
        assert!(guard_exposure(&public, &args(None, true)).is_ok());
        assert!(guard_exposure(&local, &args(None, false)).is_ok());
    }
}
