//! `durable bench`: the benchmark workloads, as a table or JSON lines.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use durable::{SharedStore, Worker, WorkerOptions};
use durable_bench::{Options, Report, Workload};
use durable_sqlite::{SqliteOptions, SqliteStore, Synchronous};
use indicatif::{ProgressBar, ProgressStyle};

use crate::render;

#[derive(Debug, Clone)]
pub struct BenchArgs {
    pub workloads: Vec<String>,
    pub size: Option<u64>,
    pub store: String,
    pub sync: Synchronous,
    pub workers: usize,
    pub json: bool,
}

/// A store for one workload: a fresh SQLite file, or a fresh schema in the PostgreSQL database.
struct Fresh {
    store: SharedStore,
    url: Option<String>,
    sync: String,
    _dir: Option<tempfile::TempDir>,
}

async fn fresh_store(args: &BenchArgs) -> Result<Fresh> {
    if args.store == "sqlite" {
        let dir = tempfile::tempdir()?;
        let options = SqliteOptions::file(dir.path().join("bench.db")).with_synchronous(args.sync);
        let store: SharedStore = Arc::new(SqliteStore::open(options)?);
        return Ok(Fresh {
            store,
            url: None,
            sync: args.sync.as_str().to_string(),
            _dir: Some(dir),
        });
    }
    if !args.store.starts_with("postgres") {
        bail!(
            "--store takes `sqlite` or a postgres:// URL (got '{}')",
            args.store
        );
    }
    let schema = format!("bench_{}", &durable_core::ids::new_instance_id()[..12]);
    let url = with_schema(&args.store, &schema);
    let store = durable::connect(&url).await?;
    let sync = if url.contains("synchronous_commit=off") {
        "off"
    } else {
        "on"
    };
    Ok(Fresh {
        store,
        url: Some(url),
        sync: format!("synchronous_commit={sync}"),
        _dir: None,
    })
}

/// A PostgreSQL URL with `schema` added as its task hub.
pub fn with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}schema={schema}")
}

/// Extra worker processes sharing a PostgreSQL task hub; killed when dropped.
struct Helpers(Vec<Child>);

impl Drop for Helpers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn_helpers(url: &str, n: usize) -> Result<Helpers> {
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for _ in 0..n {
        let child = Command::new(&exe)
            .args(["bench-worker", "--store", url])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start a bench worker process")?;
        children.push(child);
    }
    Ok(Helpers(children))
}

/// The hidden `durable bench-worker`: a worker running the bench orchestrations until killed.
pub async fn worker(store: &str) -> Result<()> {
    let store = durable::connect(store).await?;
    let worker = Worker::builder(store)
        .options(WorkerOptions {
            idle_poll: Duration::from_millis(250),
            ..Default::default()
        })
        .registry(&durable_bench::registry())
        .start();
    tokio::signal::ctrl_c().await?;
    worker.shutdown().await;
    Ok(())
}

fn progress(json: bool, name: &str) -> (ProgressBar, Arc<dyn Fn(u64, u64) + Send + Sync>) {
    let bar = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template("{msg:>9} [{bar:30}] {pos}/{len} ({elapsed})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(name.to_string());
    let handle = bar.clone();
    let report: Arc<dyn Fn(u64, u64) + Send + Sync> = Arc::new(move |done, total| {
        handle.set_length(total);
        handle.set_position(done);
    });
    (bar, report)
}

fn row(r: &Report) -> Vec<String> {
    let extra = r
        .extra
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.as_f64().map_or(v.to_string(), |f| format!("{f:.3}"))
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    vec![
        r.workload.clone(),
        r.store.clone(),
        r.sync.clone(),
        r.instances.to_string(),
        r.steps.to_string(),
        format!("{:.3}", r.wall_s),
        format!("{:.0}", r.steps_per_s),
        format!("{:.3}", r.p50_ms),
        format!("{:.3}", r.p99_ms),
        format!("{:.1}", r.peak_rss_mib),
        extra,
    ]
}

pub async fn run(args: BenchArgs) -> Result<()> {
    let workloads: Vec<Workload> = if args.workloads.is_empty() {
        Workload::ALL.to_vec()
    } else {
        args.workloads
            .iter()
            .map(|name| {
                Workload::parse(name).with_context(|| {
                    let all: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
                    format!("unknown workload '{name}' (known: {})", all.join(", "))
                })
            })
            .collect::<Result<_>>()?
    };
    if args.workers > 1 && args.store == "sqlite" {
        bail!("--workers needs a shared store: pass --store postgres://...");
    }
    let mut rows = Vec::new();
    for workload in workloads {
        let fresh = fresh_store(&args).await?;
        let _helpers = match &fresh.url {
            Some(url) if args.workers > 1 => Some(spawn_helpers(url, args.workers - 1)?),
            _ => None,
        };
        let (bar, report) = progress(args.json, workload.name());
        let options = Options {
            size: args.size,
            sync: fresh.sync.clone(),
            progress: report,
        };
        let mut result = durable_bench::run(workload, fresh.store.clone(), &options)
            .await
            .map_err(|e| anyhow::anyhow!("workload {} failed: {e}", workload.name()))?;
        bar.finish_and_clear();
        if args.workers > 1 {
            result
                .extra
                .insert("processes".into(), serde_json::json!(args.workers));
        }
        if args.json {
            println!("{}", serde_json::to_string(&result)?);
        } else {
            eprintln!(
                "{} done: {:.0} steps/s",
                result.workload, result.steps_per_s
            );
        }
        rows.push(row(&result));
    }
    if !args.json {
        let header = [
            "WORKLOAD",
            "STORE",
            "SYNC",
            "INSTANCES",
            "STEPS",
            "WALL_S",
            "STEPS/S",
            "P50_MS",
            "P99_MS",
            "PEAK_RSS_MIB",
            "EXTRA",
        ];
        print!("{}", render::table(&header, &rows));
    }
    Ok(())
}
