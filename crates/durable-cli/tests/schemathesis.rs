//! Schemathesis (pinned in scripts/setup-python) against `/openapi.json` of a real `durable serve
//! --samples`: generated requests, valid and invalid, for every operation, with the server-error
//! check and the response-schema conformance check. Bounded and seeded, so a run takes seconds
//! and a failure replays.

use std::process::Command;

use crate::support::{Served, python, stderr, stdout};

const KEY: &str = "schemathesis-key";

#[test]
fn schemathesis_finds_no_server_error_and_no_schema_mismatch() {
    let served = Served::start(&["--api-key", KEY]);
    // A running instance for the `{instanceId}` routes, and the samples' name for `{name}`, so
    // generated requests reach the handlers instead of stopping at 404.
    let started = reqwest::blocking::Client::new()
        .post(format!(
            "{}/runtime/webhooks/durabletask/orchestrators/Approval/st-live",
            served.url()
        ))
        .bearer_auth(KEY)
        .send()
        .unwrap();
    assert_eq!(started.status(), 202);
    let config = served.dir.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        "[parameters]\n\"path.name\" = \"Chaining\"\n\"path.instanceId\" = \"st-live\"\n",
    )
    .unwrap();
    let st = python().with_file_name("st");
    let out = Command::new(&st)
        .arg("--config-file")
        .arg(&config)
        .args([
            "run",
            &format!("{}/openapi.json", served.url()),
            "--header",
            &format!("Authorization: Bearer {KEY}"),
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "50",
            "--seed",
            "20261126",
            "--workers",
            "2",
            "--no-color",
        ])
        .current_dir(served.dir.path())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e} (run scripts/setup-python)",
                st.display()
            )
        });
    let text = stdout(&out);
    let figures = text
        .lines()
        .find(|l| l.contains(" generated, "))
        .unwrap_or("(no figures)");
    println!("schemathesis: {}", figures.trim());
    assert!(
        out.status.success(),
        "schemathesis failed:\n{text}\n{}",
        stderr(&out)
    );
    // Every operation was exercised: "Selected: N/N" and "Tested: N".
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no '{name}' in:\n{text}"))
            .to_string()
    };
    let selected = field("Selected:");
    let all = selected.split('/').nth(1).unwrap();
    assert_eq!(field("Tested:"), all, "operations tested of {selected}");
    // The server survived it all.
    let health = reqwest::blocking::get(format!("{}/healthz", served.url())).unwrap();
    assert_eq!(health.status(), 200);
}
