//! Shared test setup: the Python interpreter of the interop suite, and an in-process server.

pub mod fake_worker;
mod server;

use std::path::PathBuf;

pub use server::TestServer;

/// The interpreter with durabletask installed: `$DURABLE_PYTHON`, else `<repo>/.venv/bin/python`.
/// A missing interpreter fails the test: these tests must never be skipped silently.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("DURABLE_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        venv.exists(),
        "no Python environment at {}: run scripts/setup-python (or set DURABLE_PYTHON to an \
         interpreter with durabletask==1.12.0 installed)",
        venv.display()
    );
    venv
}
