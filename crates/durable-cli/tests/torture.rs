//! The CI tier of `durable torture`: 300 instances and 25 SIGKILLs of a real `durable serve`,
//! on SQLite and on PostgreSQL. The seed comes from DURABLE_TORTURE_SEED or is random; it is
//! printed, and `durable torture --seed N` replays the run.

use serde_json::Value;

use crate::cluster::Hub;
use crate::support::{durable, stderr, stdout};

const INSTANCES: u64 = 300;
const KILLS: u64 = 25;

fn torture(store: &str) -> Value {
    let mut cmd = durable();
    cmd.args(["torture", "--json", "--store", store])
        .args([
            "--instances",
            &INSTANCES.to_string(),
            "--kills",
            &KILLS.to_string(),
        ])
        .args(["--kill-gap-ms", "1500", "--timer-ms", "300"]);
    if let Ok(seed) = std::env::var("DURABLE_TORTURE_SEED") {
        cmd.args(["--seed", &seed]);
    }
    let out = cmd.output().unwrap();
    // The seed is the first line on stderr, so a run that crashes can still be replayed.
    eprint!("{}", stderr(&out));
    let report: Value = serde_json::from_str(stdout(&out).trim()).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); stdout {} stderr {}",
            stdout(&out),
            stderr(&out)
        )
    });
    println!("torture on {store}: {report:#}");
    let violations = &report["violations"];
    assert_eq!(
        report["verdict"], "PASS",
        "seed {}: {violations:#}",
        report["seed"]
    );
    assert!(out.status.success(), "a PASS exits 0");
    // The checks saw everything and the kills happened: a harness bug cannot pass vacuously.
    assert_eq!(report["killsOfALiveProcess"], KILLS);
    assert_eq!(report["serverStarts"], KILLS + 1);
    for field in ["instancesChecked", "childrenChecked", "eventsChecked"] {
        assert_eq!(report[field], INSTANCES, "{field}");
    }
    assert_eq!(report["activityTasks"], INSTANCES * 15);
    let executions = report["activityExecutions"].as_u64().unwrap();
    let reexecutions = report["activityReexecutions"].as_u64().unwrap();
    assert_eq!(executions, INSTANCES * 15 + reexecutions);
    report
}

#[test]
fn kill_9_torture_on_sqlite() {
    torture("sqlite");
}

#[test]
fn kill_9_torture_on_postgres() {
    let hub = Hub::fresh();
    torture(&hub.url());
}

#[test]
fn unfinished_instances_fail_the_run() {
    // A timeout too short for any instance to finish is reported as an error, not a pass.
    let out = durable()
        .args([
            "torture",
            "--instances",
            "5",
            "--kills",
            "0",
            "--timer-ms",
            "60000",
        ])
        .args(["--timeout", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("still unfinished"),
        "{}",
        stderr(&out)
    );
}
