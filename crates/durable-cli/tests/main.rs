//! The `durable` binary end to end: `durable serve` as a real process, driven with HTTP, the
//! client subcommands and the Python SDK.

mod bench;
mod cli;
mod serve;
mod support;
