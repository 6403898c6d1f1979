//! The `durable` binary end to end: `durable serve` as a real process, driven with HTTP, the
//! client subcommands, the Python SDK and, for the dashboard, headless Chromium.

mod cli;
mod dashboard;
mod serve;
mod support;
