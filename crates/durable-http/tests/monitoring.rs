//! `durable_http::metrics::router`: `/metrics` and the scale signal, merged into the API behind
//! its key.

use std::sync::Arc;
use std::time::Duration;

use durable::Client;
use durable_http::metrics::{ScaleOptions, ScaleSignal, recommend};
use durable_http::{AnyOrchestration, ApiOptions};
use reqwest::StatusCode;

use crate::support::{HUB, assert_error, serve};

const KEY: &str = "k3y";

/// The API and the monitoring routes on a store no worker serves, so started instances stay
/// in the backlog.
async fn backlogged(scale: ScaleOptions) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("durable.db").display());
    let client = Client::new(durable::open_store(&url).unwrap());
    let options = ApiOptions {
        api_key: Some(KEY.into()),
        ..Default::default()
    };
    let monitoring = durable_http::metrics::router(client.clone(), scale)
        .method_not_allowed_fallback(durable_http::method_not_allowed)
        .layer(durable_http::require_api_key(Some(KEY.into())));
    let app = durable_http::router(client, Arc::new(AnyOrchestration), options).merge(monitoring);
    (serve(app).await, dir)
}

async fn signal(http: &reqwest::Client, base: &str) -> ScaleSignal {
    let response = http
        .get(format!("{base}{HUB}/scale"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_scale_signal_reports_the_backlog_and_a_bounded_recommendation() {
    let scale = ScaleOptions {
        drain_within: Duration::from_secs(5),
        max_workers: 4,
        ..Default::default()
    };
    let (base, _dir) = backlogged(scale.clone()).await;
    let http = reqwest::Client::new();

    let response = http.get(format!("{base}{HUB}/scale")).send().await.unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let empty = signal(&http, &base).await;
    assert_eq!(empty.backlog, 0);
    assert_eq!(empty.recommended_workers, 1);
    assert_eq!(empty.oldest_orchestration_age_seconds, 0.0);
    assert_eq!((empty.min_workers, empty.max_workers), (1, 4));
    assert_eq!(empty.drain_seconds, 5.0);
    assert_eq!(empty.window_seconds, 60.0);

    for i in 0..30 {
        let response = http
            .post(format!("{base}{HUB}/orchestrators/Anything/queued-{i}"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    let full = signal(&http, &base).await;
    assert_eq!(full.orchestration_backlog, 30);
    assert_eq!(full.activity_backlog, 0);
    assert_eq!(full.backlog, 30);
    assert!(
        (0.0..60.0).contains(&full.oldest_orchestration_age_seconds),
        "{full:?}"
    );
    // The rate is this test process's (other tests' workers add to it): the answer must be
    // the documented function of the figures it reports.
    assert_eq!(
        full.recommended_workers,
        recommend(full.backlog, full.worker_rate, &scale),
        "{full:?}"
    );
    assert!((1..=4).contains(&full.recommended_workers));

    let text = http
        .get(format!("{base}/metrics?code={KEY}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("durable_queue_depth{queue=\"orchestrations\"} 30\n"),
        "{text}"
    );
    assert!(
        text.contains("durable_instances{status=\"Pending\"} 30\n"),
        "{text}"
    );
    let gauge = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing"))
            .parse()
            .unwrap()
    };
    let recommended = gauge("durable_scale_recommended_workers");
    let rate = gauge("durable_scale_worker_items_per_second");
    assert_eq!(recommended as u32, recommend(30, rate, &scale));
}

#[tokio::test]
async fn the_openapi_document_lists_the_monitoring_routes() {
    let doc = serde_json::to_value(durable_http::openapi()).unwrap();
    assert!(doc["paths"][format!("{HUB}/scale")]["get"].is_object());
    assert!(doc["paths"]["/metrics"]["get"].is_object());
    assert!(doc["components"]["schemas"]["ScaleSignal"].is_object());
}
