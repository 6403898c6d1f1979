//! The `http` workload: start-to-result latency of a one-step orchestration driven entirely
//! through the HTTP API (start with a POST, poll the `Location` until it answers 200).

use std::sync::Arc;
use std::time::Instant;

use durable::{SharedStore, Worker};
use durable_http::{ApiOptions, OrchestrationCatalog};

use crate::stats::{Report, quantile};
use crate::workloads::{Options, Workload, report};

type BenchResult = Result<Report, Box<dyn std::error::Error>>;

pub(crate) async fn run(
    worker: &Worker,
    store: &SharedStore,
    opts: &Options,
    n: u64,
) -> BenchResult {
    let catalog: Arc<dyn OrchestrationCatalog> = Arc::new(worker.registry().clone());
    let app = durable_http::router(worker.client(), catalog, ApiOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(n as usize);
    for i in 0..n {
        let t = Instant::now();
        let response = http
            .post(format!(
                "{base}/runtime/webhooks/durabletask/orchestrators/OneStep"
            ))
            .header("content-type", "application/json")
            .body(i.to_string())
            .send()
            .await?;
        if response.status() != 202 {
            return Err(format!("start answered {}", response.status()).into());
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .ok_or("no Location header")?
            .to_string();
        loop {
            let status = http.get(&location).send().await?.status();
            if status == 200 {
                break;
            }
            if status != 202 {
                return Err(format!("status answered {status}").into());
            }
            tokio::task::yield_now().await;
        }
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        (opts.progress)(i + 1, n);
    }
    let wall = started.elapsed();
    server.abort();
    let mut r = report(Workload::Http, store, opts, n, n, wall);
    r.p50_ms = quantile(&mut latencies, 0.5);
    r.p99_ms = quantile(&mut latencies, 0.99);
    Ok(r)
}
