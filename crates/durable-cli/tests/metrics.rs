//! `/metrics` and the scale signal of `durable serve`, over real HTTP and behind the API key.

use std::collections::HashMap;

use serde_json::Value;

use crate::support::{Served, wait_done};

const KEY: &str = "m3trics";

/// Every family `/metrics` serves.
const FAMILIES: [(&str, &str); 17] = [
    ("durable_turns_total", "counter"),
    ("durable_turn_seconds", "histogram"),
    ("durable_activities_total", "counter"),
    ("durable_activity_seconds", "histogram"),
    ("durable_lease_takeovers_total", "counter"),
    ("durable_stale_commits_total", "counter"),
    ("durable_poisoned_total", "counter"),
    ("durable_cache_lookups_total", "counter"),
    ("durable_cache_hit_ratio", "gauge"),
    ("durable_store_commit_seconds", "histogram"),
    ("durable_store_batch_size", "histogram"),
    ("durable_queue_depth", "gauge"),
    ("durable_queue_oldest_seconds", "gauge"),
    ("durable_instances", "gauge"),
    ("durable_scale_recommended_workers", "gauge"),
    ("durable_scale_worker_items_per_second", "gauge"),
    ("durable_store_up", "gauge"),
];

/// Parsed Prometheus text: the `# TYPE` of each family and the value of each sample (name with
/// its labels, as written).
struct Scrape {
    types: HashMap<String, String>,
    samples: HashMap<String, f64>,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut types = HashMap::new();
        let mut samples = HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
                types.insert(name.to_string(), kind.to_string());
            } else if !line.starts_with('#') && !line.is_empty() {
                let (series, value) = line.rsplit_once(' ').expect("a sample: series value");
                let value: f64 = value
                    .parse()
                    .unwrap_or_else(|_| panic!("not a number in: {line}"));
                let family = series.split('{').next().unwrap();
                let known = types.keys().any(|t| family.starts_with(t.as_str()));
                assert!(known, "sample before its # TYPE: {line}");
                samples.insert(series.to_string(), value);
            }
        }
        Scrape { types, samples }
    }

    fn get(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("{series} missing"))
    }
}

fn scrape(served: &Served) -> Scrape {
    let response = reqwest::blocking::Client::new()
        .get(format!("{}/metrics", served.url()))
        .bearer_auth(KEY)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    Scrape::parse(&response.text().unwrap())
}

/// Starts `FanOutFanIn(10)` and waits for its output.
fn run_fan_out(served: &Served) {
    let http = reqwest::blocking::Client::new();
    let response = http
        .post(format!("{}/orchestrators/FanOutFanIn", served.url()))
        .bearer_auth(KEY)
        .body("10")
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap();
    assert_eq!(wait_done(location, Some(KEY))["output"], 385);
}

#[test]
fn metrics_are_prometheus_text_that_moves_with_the_work() {
    let served = Served::start(&["--api-key", KEY]);
    let http = reqwest::blocking::Client::new();
    for path in ["/metrics", "/runtime/webhooks/durabletask/scale"] {
        let response = http.get(format!("{}{path}", served.url())).send().unwrap();
        assert_eq!(response.status(), 401, "{path} without the key");
        let response = http
            .post(format!("{}{path}", served.url()))
            .bearer_auth(KEY)
            .send()
            .unwrap();
        assert_eq!(response.status(), 405, "POST {path}");
    }

    let before = scrape(&served);
    for (family, kind) in FAMILIES {
        assert_eq!(
            before.types.get(family).map(String::as_str),
            Some(kind),
            "{family}"
        );
    }
    assert_eq!(before.get("durable_store_up"), 1.0);
    assert_eq!(before.get("durable_instances{status=\"Completed\"}"), 0.0);

    run_fan_out(&served);
    run_fan_out(&served);
    let after = scrape(&served);
    let moved = |series: &str| after.get(series) - before.get(series);
    // FanOutFanIn(10): F1, ten F2 and F3; turns: the start, F1's result, one or more for the
    // ten results, F3's result.
    assert_eq!(
        moved("durable_activities_total{outcome=\"completed\"}"),
        24.0
    );
    assert!(moved("durable_turns_total") >= 8.0);
    assert!(moved("durable_turn_seconds_count") >= 8.0);
    assert_eq!(moved("durable_activity_seconds_count"), 24.0);
    assert!(moved("durable_store_commit_seconds_count") > 0.0);
    assert_eq!(after.get("durable_instances{status=\"Completed\"}"), 2.0);
    assert_eq!(
        after.get("durable_queue_depth{queue=\"orchestrations\"}"),
        0.0
    );
    assert!(after.get("durable_scale_worker_items_per_second") > 0.0);
    assert_eq!(after.get("durable_scale_recommended_workers"), 1.0);

    let signal: Value = http
        .get(format!(
            "{}/runtime/webhooks/durabletask/scale",
            served.url()
        ))
        .header("x-functions-key", KEY)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(signal["backlog"], 0);
    assert_eq!(signal["recommendedWorkers"], 1);
    assert_eq!(signal["maxWorkers"], 20);
    assert_eq!(signal["drainSeconds"], 30.0);
    assert!(signal["workerRate"].as_f64().unwrap() > 0.0, "{signal}");
}
