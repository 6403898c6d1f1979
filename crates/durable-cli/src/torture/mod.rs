//! `durable torture`: runs `durable serve` as a child on a store, drives a mixed workload,
//! kills the child with SIGKILL at seeded random moments, restarts it, and checks that nothing
//! acknowledged was lost and nothing recorded twice.

mod child;
mod drive;
mod poison;
mod verify;
pub mod workload;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::api::{Api, Filters};
use child::Server;
use drive::Rng;
use verify::Findings;

#[derive(Debug, Clone, clap::Args)]
pub struct TortureArgs {
    /// `sqlite` (a fresh file), sqlite://FILE, or a postgres:// URL (a fresh schema is added
    /// unless the URL names one).
    #[arg(long, default_value = "sqlite")]
    pub store: String,
    /// Instances of the workload.
    #[arg(long, default_value = "300")]
    pub instances: u32,
    /// SIGKILLs to send (each followed by a restart).
    #[arg(long, default_value = "25")]
    pub kills: u32,
    /// Seed of the run plan (inputs, event data, kill moments); printed, random if omitted.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Longest gap between kills, in milliseconds (each gap is drawn from a fifth of it to all
    /// of it).
    #[arg(long, value_name = "MS", default_value = "1500", value_parser = clap::value_parser!(u64).range(10..))]
    pub kill_gap_ms: u64,
    /// Length of the workload's durable timer, in milliseconds.
    #[arg(long, value_name = "MS", default_value = "500")]
    pub timer_ms: u64,
    /// How long each workload activity works, in milliseconds.
    #[arg(long, value_name = "MS", default_value = "20")]
    pub activity_ms: u64,
    /// Longest wait for the instances to finish after the last kill, in seconds.
    #[arg(long, value_name = "SECONDS", default_value = "600")]
    pub timeout: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    seed: u64,
    store: String,
    instances: u32,
    kills_planned: u32,
    kills_of_a_live_process: u32,
    server_starts: u32,
    mean_restart_ms: f64,
    request_retries: u64,
    seconds: f64,
    instances_per_second: f64,
    #[serde(flatten)]
    findings: Findings,
    verdict: &'static str,
}

/// The store URL the child runs on: a fresh SQLite file for `sqlite`, a fresh schema for a
/// postgres:// URL without one, or the URL as given.
fn store_url(store: &str, dir: &std::path::Path) -> Result<String> {
    if store == "sqlite" {
        return Ok(format!("sqlite://{}", dir.join("torture.db").display()));
    }
    if store.starts_with("postgres") && !store.contains("schema=") {
        return Ok(crate::bench::with_schema(
            store,
            &format!("torture_{}", &durable_core::ids::new_instance_id()[..12]),
        ));
    }
    if store.starts_with("postgres") || store.starts_with("sqlite://") {
        return Ok(store.to_string());
    }
    bail!("--store takes `sqlite`, sqlite://FILE or a postgres:// URL (got '{store}')")
}

/// Violations of coverage: the kills must all have hit a live server and the checks must have
/// seen every instance, child, event and activity task, so checks that saw nothing cannot pass.
fn coverage(args: &TortureArgs, kills: u32, f: &Findings) -> Vec<String> {
    let mut v = Vec::new();
    let n = args.instances as usize;
    if kills != args.kills {
        v.push(format!(
            "only {kills} of {} kills hit a running server",
            args.kills
        ));
    }
    if f.instances_checked != n || f.children_checked != n || f.events_checked != n {
        v.push(format!(
            "checked {} instances, {} children, {} events; expected {n} of each",
            f.instances_checked, f.children_checked, f.events_checked
        ));
    }
    if f.activity_tasks != n * workload::ACTIVITIES_PER_INSTANCE {
        v.push(format!(
            "{} activity tasks ran; expected {}",
            f.activity_tasks,
            n * workload::ACTIVITIES_PER_INSTANCE
        ));
    }
    v
}

/// Waits until the server lists no Pending or Running instance (children included).
async fn wait_all_finished(api: &Api, timeout: Duration) -> Result<()> {
    let began = Instant::now();
    let unfinished = Filters {
        statuses: Some("Pending,Running".into()),
        ..Default::default()
    };
    loop {
        let page = api.list(&unfinished, 1, None).await?.body;
        let Some(first) = page.as_array().map(|a| a.first().cloned()) else {
            bail!("the instance listing is not a JSON array: {page}");
        };
        let Some(first) = first else {
            return Ok(());
        };
        if began.elapsed() > timeout {
            bail!(
                "instances still unfinished after {timeout:?}, e.g. {}",
                first["instanceId"]
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn run(args: TortureArgs, json: bool) -> Result<bool> {
    let seed = args.seed.unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(1, |d| d.as_nanos() as u64) ^ u64::from(std::process::id())
    });
    eprintln!("durable torture: seed {seed} (replay with --seed {seed})");
    let dir = tempfile::tempdir()?;
    let url = store_url(&args.store, dir.path())?;
    let mut rng = Rng::new(seed);
    let planned = drive::plan(args.instances, &mut rng);
    let http = format!("127.0.0.1:{}", free_port()?);
    let api = Api::new(&format!("http://{http}"), None)?;
    let mut server = Server::new(http, url.clone(), dir.path());

    let began = Instant::now();
    let mut restart = Duration::ZERO;
    tokio::task::block_in_place(|| server.start())?;
    // Starts spread over the expected kill phase (gaps average 0.6 × the longest gap).
    let phase = Duration::from_millis(args.kill_gap_ms * 6 / 10) * args.kills;
    let every = phase / args.instances.max(1);
    let event_after = Duration::from_millis(args.timer_ms.min(1_000) + args.kill_gap_ms / 2);
    let driver = tokio::spawn(drive::drive(
        api.clone(),
        planned,
        every,
        event_after,
        workload::MixInput {
            n: 0,
            timer_ms: args.timer_ms,
            activity_ms: args.activity_ms,
        },
    ));
    let mut live_kills = 0;
    for _ in 0..args.kills {
        let gap = rng.between(args.kill_gap_ms / 5, args.kill_gap_ms);
        tokio::time::sleep(Duration::from_millis(gap)).await;
        if server.kill()? {
            live_kills += 1;
        }
        restart += tokio::task::block_in_place(|| server.start())?;
    }
    let acks = driver.await.context("the driver panicked")??;
    wait_all_finished(&api, Duration::from_secs(args.timeout)).await?;
    let seconds = began.elapsed().as_secs_f64();
    // The child goes first: a SQLite file has one owner at a time.
    server.kill()?;
    let store = durable::connect(&url)
        .await
        .with_context(|| format!("cannot open the store '{url}'"))?;

    let mut findings = verify::verify(&store, &acks, server.executions_log()).await?;
    let coverage = coverage(&args, live_kills, &findings);
    findings.violations.extend(coverage);
    let passed = findings.violations.is_empty();
    let report = Report {
        seed,
        store: url,
        instances: args.instances,
        kills_planned: args.kills,
        kills_of_a_live_process: live_kills,
        server_starts: server.starts,
        mean_restart_ms: restart.as_secs_f64() * 1000.0 / f64::from(args.kills.max(1)),
        request_retries: acks.retries,
        seconds,
        instances_per_second: f64::from(args.instances) / seconds,
        findings,
        verdict: if passed { "PASS" } else { "FAIL" },
    };
    print(&report, json)?;
    if !passed {
        let kept = dir.keep();
        eprintln!(
            "durable torture: files kept in {} (serve.log, executions.log)",
            kept.display()
        );
    }
    Ok(passed)
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn print(r: &Report, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    let f = &r.findings;
    let rows = [
        ("seed", r.seed.to_string()),
        ("store", r.store.clone()),
        (
            "instances",
            format!(
                "{} ({} sub-orchestrations, {} events)",
                f.instances_checked, f.children_checked, f.events_checked
            ),
        ),
        (
            "kills (SIGKILL)",
            format!(
                "{} of {} planned hit a live server; {} server starts",
                r.kills_of_a_live_process, r.kills_planned, r.server_starts
            ),
        ),
        ("mean restart", format!("{:.0} ms", r.mean_restart_ms)),
        ("request retries", r.request_retries.to_string()),
        (
            "activity executions",
            format!(
                "{} for {} tasks: {} re-executions",
                f.activity_executions, f.activity_tasks, f.activity_reexecutions
            ),
        ),
        (
            "elapsed",
            format!(
                "{:.1} s ({:.1} instances/s)",
                r.seconds, r.instances_per_second
            ),
        ),
    ];
    for (label, value) in rows {
        println!("{label:<22}{value}");
    }
    for v in f.violations.iter().take(50) {
        println!("VIOLATION             {v}");
    }
    if f.violations.len() > 50 {
        println!(
            "VIOLATION             … and {} more",
            f.violations.len() - 50
        );
    }
    println!("verdict               {}", r.verdict);
    Ok(())
}
