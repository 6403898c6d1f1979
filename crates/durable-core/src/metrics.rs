//! Process-wide metrics, rendered in the Prometheus text format. Plain atomics: recording is a
//! few nanoseconds on the hot path, and every layer records into the same [`global`] registry.

use std::fmt::Write;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::work::QueueStats;

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Latency buckets, in seconds.
const SECONDS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];
/// Size buckets (requests per batch).
const SIZES: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum: AtomicU64,
    count: AtomicU64,
    /// Sums are kept in millionths, so they can be atomics.
    scale: f64,
}

impl Histogram {
    fn new(bounds: &'static [f64], scale: f64) -> Self {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            count: AtomicU64::new(0),
            scale,
        }
    }

    pub fn observe(&self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|b| value <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum
            .fetch_add((value * self.scale) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn observe_duration(&self, d: Duration) {
        self.observe(d.as_secs_f64());
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let total = self.count();
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {total}");
        let sum = self.sum.load(Ordering::Relaxed) as f64 / self.scale;
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {sum}", braces(labels));
        let _ = writeln!(out, "{name}_count{} {total}", braces(labels));
    }
}

/// Every metric the engine records.
#[derive(Debug)]
pub struct Metrics {
    pub turns: Counter,
    pub turn_seconds: Histogram,
    pub activities_completed: Counter,
    pub activities_failed: Counter,
    pub activity_seconds: Histogram,
    pub lease_takeovers: Counter,
    pub stale_commits: Counter,
    pub poisoned_orchestrations: Counter,
    pub poisoned_activities: Counter,
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub store_commit_seconds: Histogram,
    pub store_batch_size: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            turns: Counter::default(),
            turn_seconds: Histogram::new(&SECONDS, 1e6),
            activities_completed: Counter::default(),
            activities_failed: Counter::default(),
            activity_seconds: Histogram::new(&SECONDS, 1e6),
            lease_takeovers: Counter::default(),
            stale_commits: Counter::default(),
            poisoned_orchestrations: Counter::default(),
            poisoned_activities: Counter::default(),
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
            store_commit_seconds: Histogram::new(&SECONDS, 1e6),
            store_batch_size: Histogram::new(&SIZES, 1.0),
        }
    }
}

static GLOBAL: LazyLock<Metrics> = LazyLock::new(Metrics::default);

/// The process-wide registry.
pub fn global() -> &'static Metrics {
    &GLOBAL
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, values: &[(&str, u64)]) {
    header(out, name, "counter", help);
    for (labels, v) in values {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

impl Metrics {
    /// Appends every metric in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        counter(
            out,
            "durable_turns_total",
            "Orchestration turns committed.",
            &[("", self.turns.get())],
        );
        header(
            out,
            "durable_turn_seconds",
            "histogram",
            "Time from claiming a turn to its commit.",
        );
        self.turn_seconds.render(out, "durable_turn_seconds", "");
        counter(
            out,
            "durable_activities_total",
            "Activity executions finished, by outcome.",
            &[
                ("outcome=\"completed\"", self.activities_completed.get()),
                ("outcome=\"failed\"", self.activities_failed.get()),
            ],
        );
        header(
            out,
            "durable_activity_seconds",
            "histogram",
            "Activity execution time.",
        );
        self.activity_seconds
            .render(out, "durable_activity_seconds", "");
        counter(
            out,
            "durable_lease_takeovers_total",
            "Items claimed again after another worker's lease expired.",
            &[("", self.lease_takeovers.get())],
        );
        counter(
            out,
            "durable_stale_commits_total",
            "Commits refused because the lease had been taken over.",
            &[("", self.stale_commits.get())],
        );
        counter(
            out,
            "durable_poisoned_total",
            "Work items failed after too many deliveries.",
            &[
                ("kind=\"orchestration\"", self.poisoned_orchestrations.get()),
                ("kind=\"activity\"", self.poisoned_activities.get()),
            ],
        );
        counter(
            out,
            "durable_cache_lookups_total",
            "Live-orchestration cache lookups, by result.",
            &[
                ("result=\"hit\"", self.cache_hits.get()),
                ("result=\"miss\"", self.cache_misses.get()),
            ],
        );
        let lookups = self.cache_hits.get() + self.cache_misses.get();
        header(
            out,
            "durable_cache_hit_ratio",
            "gauge",
            "Share of turns served from the live cache.",
        );
        let ratio = if lookups == 0 {
            0.0
        } else {
            self.cache_hits.get() as f64 / lookups as f64
        };
        let _ = writeln!(out, "durable_cache_hit_ratio {ratio}");
        header(
            out,
            "durable_store_commit_seconds",
            "histogram",
            "Store commit latency, queueing included.",
        );
        self.store_commit_seconds
            .render(out, "durable_store_commit_seconds", "");
        header(
            out,
            "durable_store_batch_size",
            "histogram",
            "Requests committed per store transaction.",
        );
        self.store_batch_size
            .render(out, "durable_store_batch_size", "");
    }
}

/// Renders queue depths, ages and instance counts (read from the store at scrape time).
pub fn render_queue_stats(
    stats: &QueueStats,
    now: chrono::DateTime<chrono::Utc>,
    out: &mut String,
) {
    let age = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0)
    };
    header(
        out,
        "durable_queue_depth",
        "gauge",
        "Work waiting to be claimed, by queue.",
    );
    let _ = writeln!(
        out,
        "durable_queue_depth{{queue=\"orchestrations\"}} {}",
        stats.orchestration_backlog
    );
    let _ = writeln!(
        out,
        "durable_queue_depth{{queue=\"activities\"}} {}",
        stats.activity_backlog
    );
    let _ = writeln!(
        out,
        "durable_queue_depth{{queue=\"timers\"}} {}",
        stats.pending_timers
    );
    header(
        out,
        "durable_queue_oldest_seconds",
        "gauge",
        "Age of the oldest waiting item, by queue.",
    );
    let _ = writeln!(
        out,
        "durable_queue_oldest_seconds{{queue=\"orchestrations\"}} {}",
        age(stats.oldest_orchestration_message_at)
    );
    let _ = writeln!(
        out,
        "durable_queue_oldest_seconds{{queue=\"activities\"}} {}",
        age(stats.oldest_activity_at)
    );
    header(
        out,
        "durable_instances",
        "gauge",
        "Orchestration instances by runtime status (entities not included).",
    );
    for status in crate::status::OrchestrationStatus::ALL {
        let n = stats
            .instances_by_status
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n);
        let _ = writeln!(out, "durable_instances{{status=\"{status}\"}} {n}");
    }
    header(out, "durable_entities", "gauge", "Durable entities.");
    let _ = writeln!(out, "durable_entities {}", stats.entities);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.turns.add(3);
        m.turn_seconds.observe(0.002);
        m.turn_seconds.observe(2.0);
        m.cache_hits.add(3);
        m.cache_misses.inc();
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("durable_turns_total 3\n"), "{out}");
        assert!(
            out.contains("durable_turn_seconds_bucket{le=\"0.0025\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("durable_turn_seconds_bucket{le=\"+Inf\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("durable_turn_seconds_count 2\n"), "{out}");
        assert!(out.contains("durable_cache_hit_ratio 0.75\n"), "{out}");
        let stats = QueueStats {
            activity_backlog: 7,
            instances_by_status: vec![(crate::status::OrchestrationStatus::Running, 2)],
            entities: 3,
            ..Default::default()
        };
        render_queue_stats(&stats, chrono::Utc::now(), &mut out);
        assert!(out.contains("durable_queue_depth{queue=\"activities\"} 7\n"));
        assert!(out.contains("durable_instances{status=\"Running\"} 2\n"));
        assert!(out.contains("durable_instances{status=\"Failed\"} 0\n"));
        assert!(out.contains("durable_entities 3\n"));
    }
}
