//! Starting `durable serve` and running `durable` subcommands.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn durable() -> Command {
    Command::new(env!("CARGO_BIN_EXE_durable"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `durable serve --samples` process on free ports and a fresh SQLite file.
pub struct Served {
    pub child: Child,
    pub http: String,
    pub grpc: String,
    pub dir: tempfile::TempDir,
}

impl Served {
    pub fn start(extra: &[&str]) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let (http, grpc) = (
            format!("127.0.0.1:{}", free_port()),
            format!("127.0.0.1:{}", free_port()),
        );
        let store = format!("sqlite://{}", dir.path().join("durable.db").display());
        let child = durable()
            .args([
                "serve",
                "--samples",
                "--http",
                &http,
                "--grpc",
                &grpc,
                "--store",
                &store,
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let served = Served {
            child,
            http,
            grpc,
            dir,
        };
        served.wait_healthy();
        served
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    fn wait_healthy(&self) {
        let started = Instant::now();
        while std::net::TcpStream::connect(&self.http).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "durable serve did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `durable ARGS` against this server.
    pub fn run(&self, args: &[&str]) -> Output {
        durable()
            .args(args)
            .env("DURABLE_URL", self.url())
            .output()
            .unwrap()
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("durable.db")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls a status `Location` (sending the API key, if any): `202` while the instance runs; the
/// body of the `200` once it has finished.
pub fn wait_done(location: &str, key: Option<&str>) -> serde_json::Value {
    let http = reqwest::blocking::Client::new();
    let started = Instant::now();
    loop {
        let mut request = http.get(location);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let r = request.send().unwrap();
        if r.status() == 200 {
            return r.json().unwrap();
        }
        assert_eq!(r.status(), 202);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The interpreter of the virtual environment scripts/setup-python made.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("DURABLE_PYTHON") {
        return p.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        venv.exists(),
        "no Python environment at {}: run scripts/setup-python",
        venv.display()
    );
    venv
}
