//! `GET /metrics` (Prometheus text) and `GET /runtime/webhooks/durabletask/scale` (the scale
//! signal as JSON), for a server's monitoring and its autoscaler.
//!
//! The process's engine metrics come from [`durable::core::metrics::global`]; queue depths,
//! ages and instance counts are read from the store at every request; the scale signal combines
//! them with the rate this process finishes work at (see [`recommend`]).
//!
//! The router has no access control and no fallback of its own, so it merges into the
//! management API:
//!
//! ```no_run
//! # fn app(client: durable::Client, api: axum::Router) -> axum::Router {
//! let key = Some("secret".to_string());
//! let monitoring = durable_http::metrics::router(client, Default::default())
//!     .method_not_allowed_fallback(durable_http::method_not_allowed)
//!     .layer(durable_http::require_api_key(key));
//! api.merge(monitoring)
//! # }
//! ```

use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use durable::core::metrics::{self, render_queue_stats};
use durable::core::work::QueueStats;
use durable::{Client, ClientError};

use crate::error::{ApiError, ErrorBody};
use crate::scale::RateWindow;
pub use crate::scale::{FLOOR_RATE, ScaleOptions, ScaleSignal, recommend};

/// Where the Prometheus text is served.
pub const METRICS_PATH: &str = "/metrics";
/// The Prometheus text exposition format, version 0.0.4.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The scale signal's route, under the API's base path ([`crate::BASE_PATH`]).
pub const SCALE_PATH: &str = "/runtime/webhooks/durabletask/scale";

pub(crate) struct Monitor {
    client: Client,
    options: ScaleOptions,
    rate: Mutex<RateWindow>,
}

/// Work items this process has finished: committed turns and finished activities.
fn finished_items() -> u64 {
    let m = metrics::global();
    m.turns.get() + m.activities_completed.get() + m.activities_failed.get()
}

fn age_seconds(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> f64 {
    at.map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0)
}

impl Monitor {
    fn worker_rate(&self) -> f64 {
        let mut window = self.rate.lock().unwrap_or_else(|e| e.into_inner());
        window.observe(Instant::now(), finished_items())
    }

    fn signal(&self, stats: &QueueStats, now: DateTime<Utc>) -> ScaleSignal {
        let backlog = stats.orchestration_backlog + stats.activity_backlog;
        let worker_rate = self.worker_rate();
        let o = &self.options;
        ScaleSignal {
            orchestration_backlog: stats.orchestration_backlog,
            activity_backlog: stats.activity_backlog,
            pending_timers: stats.pending_timers,
            oldest_orchestration_age_seconds: age_seconds(
                stats.oldest_orchestration_message_at,
                now,
            ),
            oldest_activity_age_seconds: age_seconds(stats.oldest_activity_at, now),
            backlog,
            worker_rate,
            window_seconds: o.window.as_secs_f64(),
            drain_seconds: o.drain_within.as_secs_f64(),
            recommended_workers: recommend(backlog, worker_rate, o),
            min_workers: o.min_workers,
            max_workers: o.max_workers.max(o.min_workers),
        }
    }
}

/// `/metrics` and the scale route, sharing one rate window.
pub fn router(client: Client, options: ScaleOptions) -> Router {
    let window = RateWindow::new(options.window, Instant::now(), finished_items());
    let state = Arc::new(Monitor {
        client,
        options,
        rate: Mutex::new(window),
    });
    Router::new()
        .route(METRICS_PATH, get(prometheus))
        .route(SCALE_PATH, get(scale))
        .with_state(state)
}

fn gauge(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    let _ = writeln!(out, "{name} {value}");
}

/// Every engine metric, then what the store reports (left out, with `durable_store_up 0`, when
/// it cannot be read: the engine's own figures stay scrapeable while the store is down).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "monitoring",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", body = String,
            content_type = "text/plain; version=0.0.4"),
        (status = 401, description = "An API key is configured and missing", body = ErrorBody),
    )
)]
pub(crate) async fn prometheus(State(monitor): State<Arc<Monitor>>) -> Response {
    let mut out = String::with_capacity(8 * 1024);
    metrics::global().render(&mut out);
    let up = match monitor.client.store().queue_stats().await {
        Ok(stats) => {
            let now = Utc::now();
            render_queue_stats(&stats, now, &mut out);
            let signal = monitor.signal(&stats, now);
            gauge(
                &mut out,
                "durable_scale_recommended_workers",
                "Workers that would drain the backlog within the drain target at this process's rate.",
                signal.recommended_workers,
            );
            gauge(
                &mut out,
                "durable_scale_worker_items_per_second",
                "Turns and activities this process finished per second over the scale window.",
                signal.worker_rate,
            );
            1
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot read queue statistics from the store");
            0
        }
    };
    gauge(
        &mut out,
        "durable_store_up",
        "Whether this scrape could read queue statistics from the store.",
        up,
    );
    ([(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], out).into_response()
}

/// The scale signal: queue depths, oldest ages and the recommended number of workers, for an
/// autoscaler (KEDA's metrics-api scaler, or an HPA through an external metrics adapter).
#[utoipa::path(
    get,
    path = "/runtime/webhooks/durabletask/scale",
    tag = "monitoring",
    responses(
        (status = 200, description = "The current signal", body = ScaleSignal),
        (status = 401, description = "An API key is configured and missing", body = ErrorBody),
        (status = 503, description = "The store cannot be read", body = ErrorBody),
    )
)]
pub(crate) async fn scale(
    State(monitor): State<Arc<Monitor>>,
) -> Result<Json<ScaleSignal>, ApiError> {
    let stats = monitor
        .client
        .store()
        .queue_stats()
        .await
        .map_err(ClientError::from)?;
    Ok(Json(monitor.signal(&stats, Utc::now())))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_scale_route_is_under_the_api() {
        assert_eq!(
            super::SCALE_PATH,
            format!("{}/scale", crate::BASE_PATH),
            "also the path in the #[utoipa::path] of `scale`"
        );
    }
}
