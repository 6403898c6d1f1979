//! The scale signal's arithmetic: how many workers would drain the backlog in time at the rate
//! one worker was seen to finish work. Pure, so it is tested without a clock or a store.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The rate assumed for a worker that finished nothing in the window: it is stuck or busy with
/// long activities, so the backlog is counted at one item per second per worker (scale out).
pub const FLOOR_RATE: f64 = 1.0;

/// Samples closer together than this are not kept: they add memory, not precision.
const SAMPLE_SPACING: Duration = Duration::from_secs(1);

/// How the recommended worker count is derived. See `docs/http-api.md` (Scale signal).
#[derive(Clone, Debug)]
pub struct ScaleOptions {
    /// The backlog should be drained within this time (default 30 s). Lower values recommend
    /// more workers; the fleet settles where the backlog is about this much work.
    pub drain_within: Duration,
    /// The recommendation never goes below this (default 1).
    pub min_workers: u32,
    /// Nor above this (default 20).
    pub max_workers: u32,
    /// The window the worker's rate is measured over (default 60 s).
    pub window: Duration,
}

impl Default for ScaleOptions {
    fn default() -> Self {
        ScaleOptions {
            drain_within: Duration::from_secs(30),
            min_workers: 1,
            max_workers: 20,
            window: Duration::from_secs(60),
        }
    }
}

/// `ceil(backlog / (rate × drain_within))`, clamped to `[min_workers, max_workers]`; an empty
/// backlog gives `min_workers`, a rate below [`FLOOR_RATE`] counts as that floor.
pub fn recommend(backlog: u64, worker_rate: f64, options: &ScaleOptions) -> u32 {
    let min = options.min_workers;
    let max = options.max_workers.max(min);
    if backlog == 0 {
        return min;
    }
    let rate = if worker_rate.is_finite() {
        worker_rate.max(FLOOR_RATE)
    } else {
        FLOOR_RATE
    };
    let drain = options.drain_within.as_secs_f64().max(0.001);
    let needed = (backlog as f64 / (rate * drain)).ceil();
    if needed >= f64::from(max) {
        max
    } else {
        (needed as u32).clamp(min, max)
    }
}

/// A counter of finished work sampled over time, giving its rate over a sliding window.
#[derive(Debug)]
pub(crate) struct RateWindow {
    window: Duration,
    /// Oldest first; the front is the newest sample at or before the window's start, so the
    /// rate spans at least the window once the process has run that long.
    samples: VecDeque<(Instant, u64)>,
}

impl RateWindow {
    /// Starts with the counter's value now (a process's counters start at 0 when it starts).
    pub(crate) fn new(window: Duration, now: Instant, total: u64) -> Self {
        RateWindow {
            window,
            samples: VecDeque::from([(now, total)]),
        }
    }

    /// Records the counter's value and answers its rate per second since the window's anchor.
    pub(crate) fn observe(&mut self, now: Instant, total: u64) -> f64 {
        let &(last_at, _) = self.samples.back().expect("never empty");
        if now.saturating_duration_since(last_at) >= SAMPLE_SPACING {
            self.samples.push_back((now, total));
        }
        let start = now.checked_sub(self.window);
        while let (Some(start), Some(&(second, _))) = (start, self.samples.get(1))
            && second <= start
        {
            self.samples.pop_front();
        }
        let &(since, from) = self.samples.front().expect("never empty");
        let elapsed = now.saturating_duration_since(since).as_secs_f64();
        if elapsed < 0.001 {
            return 0.0;
        }
        total.saturating_sub(from) as f64 / elapsed
    }
}

/// What `GET /runtime/webhooks/durabletask/scale` answers.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleSignal {
    /// Instances with orchestration work waiting to be claimed.
    pub orchestration_backlog: u64,
    /// Activity invocations waiting to be claimed.
    pub activity_backlog: u64,
    /// Durable timers not yet due (not part of the backlog).
    pub pending_timers: u64,
    /// Age of the oldest waiting orchestration message, 0 when none waits.
    pub oldest_orchestration_age_seconds: f64,
    /// Age of the oldest waiting activity, 0 when none waits.
    pub oldest_activity_age_seconds: f64,
    /// `orchestrationBacklog + activityBacklog`.
    pub backlog: u64,
    /// Turns and activities this process finished per second over the window.
    pub worker_rate: f64,
    pub window_seconds: f64,
    pub drain_seconds: f64,
    /// `ceil(backlog / (max(workerRate, 1) × drainSeconds))`, clamped to
    /// `[minWorkers, maxWorkers]`; `minWorkers` when the backlog is empty.
    pub recommended_workers: u32,
    pub min_workers: u32,
    pub max_workers: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(drain: u64, min: u32, max: u32) -> ScaleOptions {
        ScaleOptions {
            drain_within: Duration::from_secs(drain),
            min_workers: min,
            max_workers: max,
            ..Default::default()
        }
    }

    #[test]
    fn an_empty_backlog_needs_the_minimum() {
        assert_eq!(recommend(0, 500.0, &options(30, 1, 20)), 1);
        assert_eq!(recommend(0, 0.0, &options(30, 3, 20)), 3);
    }

    #[test]
    fn workers_drain_the_backlog_within_the_target() {
        // 100 items/s per worker, 30 s: one worker drains 3,000.
        let o = options(30, 1, 20);
        assert_eq!(recommend(1, 100.0, &o), 1);
        assert_eq!(recommend(3_000, 100.0, &o), 1);
        assert_eq!(recommend(3_001, 100.0, &o), 2);
        assert_eq!(recommend(12_000, 100.0, &o), 4);
        assert_eq!(recommend(12_001, 100.0, &o), 5);
    }

    #[test]
    fn bounds_hold() {
        let o = options(30, 2, 5);
        assert_eq!(recommend(10, 100.0, &o), 2);
        assert_eq!(recommend(1_000_000, 100.0, &o), 5);
        assert_eq!(recommend(u64::MAX, 0.0, &o), 5);
        // A maximum below the minimum is read as the minimum.
        assert_eq!(recommend(1_000_000, 1.0, &options(30, 4, 2)), 4);
    }

    #[test]
    fn a_worker_that_finished_nothing_counts_at_the_floor_rate() {
        let o = options(10, 1, 100);
        assert_eq!(recommend(55, 0.0, &o), 6);
        assert_eq!(recommend(55, 0.2, &o), 6);
        assert_eq!(recommend(55, f64::NAN, &o), 6);
        assert_eq!(recommend(55, f64::INFINITY, &o), 6);
    }

    #[test]
    fn the_rate_spans_the_window() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut w = RateWindow::new(Duration::from_secs(10), t0, 0);
        assert_eq!(w.observe(t0, 0), 0.0);
        // 10 items/s for 5 s: the rate since the start.
        assert_eq!(w.observe(at(5), 50), 10.0);
        assert_eq!(w.observe(at(10), 100), 10.0);
        // Then nothing for 10 s: the anchor moves to t=10 and the rate drops to 0.
        assert_eq!(w.observe(at(20), 100), 0.0);
        // 30 items/s from t=20 on: averaged with the idle time while it is in the window, then
        // alone once the window holds only that.
        assert_eq!(w.observe(at(25), 250), 10.0);
        assert_eq!(w.observe(at(30), 400), 30.0);
        assert!(w.samples.len() <= 3, "{:?}", w.samples);
    }

    #[test]
    fn asks_closer_than_a_second_apart_keep_one_sample() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(Duration::from_secs(60), t0, 0);
        for i in 1..=100u64 {
            w.observe(t0 + Duration::from_millis(10 * i), i);
        }
        assert_eq!(w.samples.len(), 2);
        // The rate still uses the newest counter value: 100 items in 1 s.
        assert!((w.observe(t0 + Duration::from_secs(1), 100) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn rare_asks_use_the_last_sample_before_the_window() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(Duration::from_secs(60), t0, 0);
        // Asked every 5 minutes: each rate spans the time since the previous ask.
        assert_eq!(w.observe(t0 + Duration::from_secs(300), 3_000), 10.0);
        assert_eq!(w.observe(t0 + Duration::from_secs(600), 9_000), 20.0);
    }
}
