//! The `durable` binary end to end: `durable serve` as a real process, driven with HTTP, the
//! client subcommands, the Python SDK, the dashboard in headless Chromium, and several
//! processes on one PostgreSQL task hub.

mod bench;
mod cli;
mod cluster;
mod dashboard;
mod metrics;
mod poison;
mod scale_out;
mod schemathesis;
mod serve;
mod support;
mod torture;
