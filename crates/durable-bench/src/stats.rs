//! Measurements and the report format.

use serde::Serialize;

/// One workload's result. Field names are the `--json` interface.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub workload: String,
    pub store: String,
    /// The durability setting (SQLite `synchronous`, PostgreSQL `synchronous_commit`).
    pub sync: String,
    pub instances: u64,
    /// Durable steps performed (activities, events, timers: see the workload).
    pub steps: u64,
    pub wall_s: f64,
    pub steps_per_s: f64,
    /// Median and 99th percentile of the workload's latency unit, in milliseconds.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub peak_rss_mib: f64,
    /// Workload-specific figures.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The `q`-quantile (0..=1) of `samples` in milliseconds.
pub(crate) fn quantile(samples: &mut [f64], q: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let idx = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[idx]
}

/// The process's peak resident memory (VmHWM), in MiB; 0 where /proc is unavailable.
pub fn peak_rss_mib() -> f64 {
    read_status_kib("VmHWM:") / 1024.0
}

/// The process's current resident memory (VmRSS), in MiB.
pub fn rss_mib() -> f64 {
    read_status_kib("VmRSS:") / 1024.0
}

fn read_status_kib(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&mut v, 0.5), 51.0);
        assert_eq!(quantile(&mut v, 0.99), 99.0);
        assert_eq!(quantile(&mut [], 0.5), 0.0);
        assert!(peak_rss_mib() > 0.0);
    }
}
