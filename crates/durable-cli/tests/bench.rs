//! `durable bench` runs every workload (small sizes: a smoke test, no timing assertions).

use serde_json::Value;

use crate::support::{durable, stderr, stdout};

fn lines(out: &std::process::Output) -> Vec<Value> {
    assert!(out.status.success(), "{}", stderr(out));
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn check(report: &Value) {
    for field in [
        "workload",
        "store",
        "sync",
        "instances",
        "steps",
        "wall_s",
        "steps_per_s",
        "p50_ms",
        "p99_ms",
        "peak_rss_mib",
    ] {
        assert!(report.get(field).is_some(), "{field} missing in {report}");
    }
    assert!(report["steps"].as_u64().unwrap() > 0, "{report}");
    assert!(report["wall_s"].as_f64().unwrap() > 0.0, "{report}");
}

#[test]
fn every_workload_runs_on_sqlite() {
    let out = durable()
        .args(["bench", "--json", "--size", "20"])
        .output()
        .unwrap();
    let reports = lines(&out);
    let names: Vec<&str> = reports
        .iter()
        .map(|r| r["workload"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "sequence", "fanout", "latency", "events", "history", "idle", "timers", "http",
            "entities"
        ]
    );
    for r in &reports {
        check(r);
        assert_eq!(r["sync"], "FULL");
    }
    let history = &reports[4];
    for figure in [
        "step_ms_at_start",
        "step_ms_at_end",
        "ratio",
        "cold_replay_ms",
    ] {
        assert!(
            history["extra"].get(figure).is_some(),
            "{figure} missing: {history}"
        );
    }
}

#[test]
fn sequence_runs_on_postgres_with_two_processes() {
    let url = std::env::var("DURABLE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let out = durable()
        .args([
            "bench",
            "sequence",
            "--json",
            "--size",
            "20",
            "--workers",
            "2",
            "--store",
            &url,
        ])
        .output()
        .unwrap();
    let reports = lines(&out);
    assert_eq!(reports.len(), 1);
    check(&reports[0]);
    assert!(
        reports[0]["store"]
            .as_str()
            .unwrap()
            .starts_with("postgres"),
        "{}",
        reports[0]
    );
}
