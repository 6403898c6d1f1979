//! The `durable serve` child the harness kills and restarts.

use std::fs::File;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub struct Server {
    pub http: String,
    store: String,
    log: PathBuf,
    serve_log: PathBuf,
    child: Option<Child>,
    /// Starts, the first included.
    pub starts: u32,
}

impl Server {
    pub fn new(http: String, store: String, dir: &Path) -> Self {
        Server {
            http,
            store,
            log: dir.join("executions.log"),
            serve_log: dir.join("serve.log"),
            child: None,
            starts: 0,
        }
    }

    pub fn executions_log(&self) -> &Path {
        &self.log
    }

    /// Starts `durable serve` (this executable) and waits until its HTTP port answers.
    pub fn start(&mut self) -> Result<Duration> {
        let began = Instant::now();
        let stderr = File::options()
            .create(true)
            .append(true)
            .open(&self.serve_log)?;
        let child = Command::new(std::env::current_exe()?)
            .args(["serve", "--grpc", "off", "--lock-duration", "1"])
            .args(["--http", &self.http, "--store", &self.store])
            .arg("--torture-log")
            .arg(&self.log)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("cannot start durable serve")?;
        self.child = Some(child);
        self.starts += 1;
        while TcpStream::connect(&self.http).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "durable serve exited with {status} (see {})",
                    self.serve_log.display()
                );
            }
            if began.elapsed() > Duration::from_secs(60) {
                bail!("durable serve did not answer within 60 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(began.elapsed())
    }

    /// Sends SIGKILL. `Ok(true)` if the process was still running when it was killed.
    pub fn kill(&mut self) -> Result<bool> {
        let Some(mut child) = self.child.take() else {
            return Ok(false);
        };
        let alive = child.try_wait()?.is_none();
        child.kill()?; // SIGKILL on Unix
        child.wait()?;
        Ok(alive)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}
