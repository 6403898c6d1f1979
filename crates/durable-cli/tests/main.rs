//! The `durable` binary end to end: `durable serve` as a real process, driven with HTTP, the
//! client subcommands and the Python SDK.

mod cli;
mod metrics;
mod serve;
mod support;
