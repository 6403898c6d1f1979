//! Retry policies for activities and sub-orchestrations, run with durable timers.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::TaskError;

/// How often and how patiently to retry a failed task.
///
/// The delay before attempt `n + 1` is `first_retry_interval * backoff_coefficient^(n - 1)`,
/// capped at `max_retry_interval`. Retrying stops after `max_attempts` attempts, when the next
/// attempt would start later than `retry_timeout` after the first, or when the failure is marked
/// non-retriable.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub first_retry_interval: Duration,
    pub backoff_coefficient: f64,
    pub max_retry_interval: Option<Duration>,
    pub retry_timeout: Option<Duration>,
}

impl RetryPolicy {
    pub fn new(max_attempts: u32, first_retry_interval: Duration) -> Self {
        RetryPolicy {
            max_attempts,
            first_retry_interval,
            backoff_coefficient: 1.0,
            max_retry_interval: None,
            retry_timeout: None,
        }
    }

    pub fn with_backoff_coefficient(mut self, coefficient: f64) -> Self {
        self.backoff_coefficient = coefficient;
        self
    }

    pub fn with_max_retry_interval(mut self, interval: Duration) -> Self {
        self.max_retry_interval = Some(interval);
        self
    }

    pub fn with_retry_timeout(mut self, timeout: Duration) -> Self {
        self.retry_timeout = Some(timeout);
        self
    }

    /// The delay after failed attempt `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = self
            .backoff_coefficient
            .max(0.0)
            .powi(attempt.saturating_sub(1).min(64) as i32);
        let secs = self.first_retry_interval.as_secs_f64() * factor;
        let delay = Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX);
        match self.max_retry_interval {
            Some(max) => delay.min(max),
            None => delay,
        }
    }

    /// Whether to retry after `attempt` failed with `err`, and after how long.
    pub fn next_delay(
        &self,
        attempt: u32,
        first_started: DateTime<Utc>,
        now: DateTime<Utc>,
        err: &TaskError,
    ) -> Option<Duration> {
        if attempt >= self.max_attempts || err.details.is_non_retriable {
            return None;
        }
        let delay = self.delay(attempt);
        if let Some(timeout) = self.retry_timeout {
            let next_start = now + chrono::Duration::from_std(delay).ok()?;
            let elapsed = (next_start - first_started).to_std().unwrap_or_default();
            if elapsed > timeout {
                return None;
            }
        }
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::FailureDetails;
    use crate::replay::TaskKind;

    fn err() -> TaskError {
        TaskError {
            kind: TaskKind::Activity,
            id: 1,
            name: "a".into(),
            details: FailureDetails::new("E", "boom"),
        }
    }

    #[test]
    fn exponential_backoff_is_capped() {
        let p = RetryPolicy::new(10, Duration::from_secs(1))
            .with_backoff_coefficient(2.0)
            .with_max_retry_interval(Duration::from_secs(5));
        let delays: Vec<_> = (1..=5).map(|a| p.delay(a).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 5, 5]);
    }

    #[test]
    fn timeout_stops_after_four_attempts() {
        // 1, 2, 4, 8 s back-off with a 14 s budget: attempts at 0, 1, 3, 7; the next would be 15.
        let p = RetryPolicy::new(10, Duration::from_secs(1))
            .with_backoff_coefficient(2.0)
            .with_retry_timeout(Duration::from_secs(14));
        let t0 = DateTime::from_timestamp(0, 0).unwrap();
        let mut now = t0;
        let mut attempts = 1;
        while let Some(d) = p.next_delay(attempts, t0, now, &err()) {
            now += chrono::Duration::from_std(d).unwrap();
            attempts += 1;
        }
        assert_eq!(attempts, 4);
    }

    #[test]
    fn non_retriable_and_max_attempts() {
        let p = RetryPolicy::new(3, Duration::from_secs(1));
        let t = DateTime::from_timestamp(0, 0).unwrap();
        assert!(p.next_delay(2, t, t, &err()).is_some());
        assert!(p.next_delay(3, t, t, &err()).is_none());
        let mut e = err();
        e.details.is_non_retriable = true;
        assert!(p.next_delay(1, t, t, &e).is_none());
    }
}
