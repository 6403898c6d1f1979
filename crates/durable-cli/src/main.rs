//! `durable`: run the engine (`durable serve`) and manage instances from a terminal.

mod api;
mod audit;
mod bench;
mod commands;
mod entities;
mod render;
mod serve;
mod torture;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::api::{Api, Filters};
use crate::commands::{Ctx, Outcome};

#[derive(Parser, Debug)]
#[command(
    name = "durable",
    version,
    about = "Durable functions: run the engine and manage its instances"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    remote: Remote,
}

/// Options of the client subcommands.
#[derive(Args, Debug)]
struct Remote {
    /// The server's HTTP address.
    #[arg(
        long,
        global = true,
        env = "DURABLE_URL",
        default_value = "http://127.0.0.1:7071"
    )]
    url: String,
    /// API key of the server (sent as a bearer token).
    #[arg(long, global = true, env = "DURABLE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the engine with the HTTP API and the gRPC sidecar.
    Serve {
        /// HTTP listen address.
        #[arg(long, default_value = "127.0.0.1:7071")]
        http: String,
        /// gRPC (Durable Task sidecar) listen address, or `off`.
        #[arg(long, default_value = "127.0.0.1:4001")]
        grpc: String,
        /// Store URL: sqlite://FILE (add ?sync=normal to trade durability for speed),
        /// sqlite::memory: for a throwaway run.
        #[arg(long, env = "DURABLE_STORE", default_value = "sqlite://durable.db")]
        store: String,
        /// Register the sample orchestrations (Chaining, FanOutFanIn, DoWork, Counter, Approval,
        /// Nested).
        #[arg(long)]
        samples: bool,
        /// Serve on non-loopback addresses without an API key.
        #[arg(long)]
        insecure: bool,
        /// Log format.
        #[arg(long, value_enum, default_value = "pretty")]
        log_format: LogFormat,
        /// Seconds a claimed turn or activity stays leased; after a crash, other workers take
        /// it over once this has passed (running activities renew it).
        #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = seconds)]
        lock_duration: Duration,
        /// Append this process's claims, commits (with the store's answers) and give-backs to
        /// FILE as JSON lines, to audit several workers against each other.
        #[arg(long, value_name = "FILE")]
        audit_log: Option<PathBuf>,
        /// Scale signal: the backlog should be drained within this many seconds.
        #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = seconds)]
        scale_drain_seconds: Duration,
        /// Scale signal: the most workers it recommends.
        #[arg(long, value_name = "N", default_value = "20", value_parser = clap::value_parser!(u32).range(1..))]
        scale_max_workers: u32,
        /// Register the `durable torture` workload, logging its activity executions to FILE.
        #[arg(long, value_name = "FILE", hide = true)]
        torture_log: Option<PathBuf>,
    },
    /// Kill -9 torture: run `durable serve` as a child, drive a mixed workload, SIGKILL and
    /// restart the child at seeded random moments, then check that nothing acknowledged was
    /// lost and nothing recorded twice. Exits 3 on any violation.
    Torture(torture::TortureArgs),
    /// Start an orchestration; prints its instance id.
    Start {
        name: String,
        /// Input as JSON (a bare word is taken as a string).
        #[arg(long)]
        input: Option<String>,
        /// Instance id (generated if omitted).
        #[arg(long)]
        id: Option<String>,
        /// Wait for the instance to finish and print its status.
        #[arg(long)]
        wait: bool,
        /// Longest wait, in seconds.
        #[arg(long, default_value = "300")]
        timeout: u64,
    },
    /// Show an instance's status.
    Status { id: String },
    /// List instances.
    List {
        /// Statuses, comma-separated (e.g. Running,Pending).
        #[arg(long)]
        status: Option<String>,
        /// Instance id prefix.
        #[arg(long)]
        prefix: Option<String>,
        /// Orchestration name, exactly (e.g. Chaining).
        #[arg(long)]
        name: Option<String>,
        /// Created at or after (RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// Created before (RFC 3339).
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show an instance's history as a timeline.
    History { id: String },
    /// Raise an external event.
    Raise {
        id: String,
        event: String,
        /// Event data as JSON (a bare word is taken as a string).
        data: Option<String>,
    },
    /// Terminate a running instance.
    Terminate {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Suspend a running instance.
    Suspend {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume a suspended instance.
    Resume {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Re-run a failed instance from its failed tasks.
    Rewind {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Run a finished instance again with the same input.
    Restart {
        id: String,
        /// Give the new run a new instance id.
        #[arg(long)]
        new_id: bool,
    },
    /// Run benchmark workloads and print their figures.
    Bench {
        /// Workloads to run (default: all): sequence, fanout, latency, events, history, idle,
        /// timers, http, entities.
        workloads: Vec<String>,
        /// Size N of each workload (default: each workload's own).
        #[arg(long)]
        size: Option<u64>,
        /// `sqlite` (a fresh file per workload) or a postgres:// URL (a fresh schema per
        /// workload).
        #[arg(long, default_value = "sqlite")]
        store: String,
        /// SQLite durability: full (flush every commit), normal or off.
        #[arg(long, default_value = "full")]
        sync: durable_sqlite::Synchronous,
        /// Worker processes sharing the PostgreSQL store (this one included).
        #[arg(long, default_value = "1")]
        workers: usize,
    },
    /// A worker running the benchmark orchestrations (started by `durable bench --workers`).
    #[command(hide = true)]
    BenchWorker {
        #[arg(long)]
        store: String,
    },
    /// List, read and signal durable entities.
    #[command(subcommand)]
    Entity(EntityCommand),
    /// Delete finished instances and their history: one by id, or by filter.
    Purge {
        id: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// Purge every finished instance.
        #[arg(long)]
        all: bool,
    },
}

/// How much of a listing to print.
#[derive(Args, Debug)]
struct Paging {
    /// Page size.
    #[arg(long, default_value = "50")]
    top: usize,
    /// Follow continuation tokens to the end.
    #[arg(long)]
    all: bool,
}

#[derive(Subcommand, Debug)]
enum EntityCommand {
    /// List the entities of a name with their state (entities without state are left out).
    List {
        /// The entity name (any letter case).
        name: String,
        /// Last operation at or after (RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// Last operation before (RFC 3339).
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show an entity's state, last operation time and lock.
    Get { name: String, key: String },
    /// Send an operation to an entity (one way; the entity is created if needed).
    Signal {
        name: String,
        key: String,
        /// The operation, e.g. `add`.
        op: String,
        /// The operation's input as JSON (a bare word is taken as a string).
        #[arg(long)]
        input: Option<String>,
    },
}

async fn entity(ctx: &Ctx, command: EntityCommand) -> Result<Outcome> {
    match command {
        EntityCommand::List {
            name,
            from,
            to,
            paging,
        } => {
            let filters = Filters {
                from,
                to,
                ..Default::default()
            };
            entities::list(ctx, &name, &filters, paging.top, paging.all).await
        }
        EntityCommand::Get { name, key } => entities::get(ctx, &name, &key).await,
        EntityCommand::Signal {
            name,
            key,
            op,
            input,
        } => entities::signal(ctx, &name, &key, &op, input).await,
    }
}

/// A duration in seconds, decimals allowed, from 1 s to a day.
fn seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if !(1.0..=86_400.0).contains(&value) {
        return Err(format!("{value} s is out of range (1 to 86400)"));
    }
    Ok(Duration::from_secs_f64(value))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(cli: Cli) -> Result<Outcome> {
    let remote = cli.remote;
    let ctx = || -> Result<Ctx> {
        Ok(Ctx {
            api: Api::new(&remote.url, remote.api_key.clone())?,
            json: remote.json,
        })
    };
    match cli.command {
        Command::Serve {
            http,
            grpc,
            store,
            samples,
            insecure,
            log_format,
            lock_duration,
            audit_log,
            scale_drain_seconds,
            scale_max_workers,
            torture_log,
        } => {
            init_logging(log_format);
            let grpc = (!grpc.eq_ignore_ascii_case("off")).then_some(grpc);
            let args = serve::ServeArgs {
                http,
                grpc,
                store,
                samples,
                api_key: remote.api_key.clone(),
                insecure,
                lock_duration,
                audit_log,
                torture_log,
                scale: durable_http::metrics::ScaleOptions {
                    drain_within: scale_drain_seconds,
                    max_workers: scale_max_workers,
                    ..Default::default()
                },
            };
            serve::run(args).await?;
            Ok(Outcome::Ok)
        }
        Command::Start {
            name,
            input,
            id,
            wait,
            timeout,
        } => {
            commands::start(
                &ctx()?,
                &name,
                id.as_deref(),
                input,
                wait,
                Duration::from_secs(timeout),
            )
            .await
        }
        Command::Bench {
            workloads,
            size,
            store,
            sync,
            workers,
        } => {
            let args = bench::BenchArgs {
                workloads,
                size,
                store,
                sync,
                workers,
                json: remote.json,
            };
            bench::run(args).await?;
            Ok(Outcome::Ok)
        }
        Command::Torture(args) => {
            if torture::run(args, remote.json).await? {
                Ok(Outcome::Ok)
            } else {
                Ok(Outcome::Violations)
            }
        }
        Command::BenchWorker { store } => {
            init_logging(LogFormat::Pretty);
            bench::worker(&store).await?;
            Ok(Outcome::Ok)
        }
        Command::Status { id } => commands::status(&ctx()?, &id).await,
        Command::List {
            status,
            prefix,
            name,
            from,
            to,
            paging,
        } => {
            let filters = Filters {
                statuses: status,
                prefix,
                name,
                from,
                to,
            };
            commands::list(&ctx()?, &filters, paging.top, paging.all).await
        }
        Command::History { id } => commands::history(&ctx()?, &id).await,
        Command::Raise { id, event, data } => commands::raise(&ctx()?, &id, &event, data).await,
        Command::Terminate { id, reason } => {
            commands::act(&ctx()?, &id, "terminate", reason.as_deref()).await
        }
        Command::Suspend { id, reason } => {
            commands::act(&ctx()?, &id, "suspend", reason.as_deref()).await
        }
        Command::Resume { id, reason } => {
            commands::act(&ctx()?, &id, "resume", reason.as_deref()).await
        }
        Command::Rewind { id, reason } => {
            commands::act(&ctx()?, &id, "rewind", reason.as_deref()).await
        }
        Command::Restart { id, new_id } => commands::restart(&ctx()?, &id, new_id).await,
        Command::Entity(command) => entity(&ctx()?, command).await,
        Command::Purge {
            id,
            status,
            from,
            to,
            all,
        } => {
            let filters = Filters {
                statuses: status,
                prefix: None,
                name: None,
                from,
                to,
            };
            commands::purge(&ctx()?, id.as_deref(), &filters, all).await
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::InstanceFailed) => ExitCode::from(2),
        Ok(Outcome::Violations) => ExitCode::from(3),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_take_decimals_within_bounds() {
        assert_eq!(seconds("2"), Ok(Duration::from_secs(2)));
        assert_eq!(seconds(" 1.5 "), Ok(Duration::from_millis(1500)));
        assert!(seconds("0.5").unwrap_err().contains("out of range"));
        assert!(seconds("86401").is_err());
        assert!(seconds("NaN").is_err());
        assert!(seconds("2s").unwrap_err().contains("not a number"));
    }
}
