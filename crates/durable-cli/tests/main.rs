//! The `durable` binary end to end: `durable serve` as a real process, driven with HTTP, the
//! client subcommands and the Python SDK; several of them on one PostgreSQL task hub.

mod bench;
mod cli;
mod cluster;
mod metrics;
mod scale_out;
mod serve;
mod support;
