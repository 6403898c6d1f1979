//! Benchmark workloads. Each runs against a store and returns a [`Report`]; `durable bench`
//! prints them as a table or as JSON lines.

mod http;
mod stats;
mod workloads;

pub use stats::{Report, peak_rss_mib};
pub use workloads::{Options, Workload, registry, run};
