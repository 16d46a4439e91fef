//! A started service binary: the one place a test process is spawned,
//! signalled, awaited and reaped.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// A running service binary, killed when dropped (a failing test never
/// leaves a process behind).
#[derive(Debug)]
pub struct Service {
    child: Child,
    /// How panics name it: the binary, and its log when it has one.
    name: String,
    log: Option<PathBuf>,
}

impl Service {
    /// Starts `binary ARGS` in a clean environment with `RUST_LOG=info` (an
    /// entry of `envs` wins), stdin closed, both outputs appended to `log`:
    /// nothing of the test's own environment reaches the service, and every
    /// (re)start adds to one log a failing test can point at.
    ///
    /// # Panics
    /// When the binary cannot be spawned.
    pub fn spawn(
        binary: &Path,
        args: &[impl AsRef<OsStr>],
        envs: &[(&str, &str)],
        log: &Path,
    ) -> Self {
        let program = binary.file_name().map_or_else(
            || binary.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let child = Command::new(binary)
            .args(args)
            .env_clear()
            .env("RUST_LOG", "info")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(log_file(log))
            .stderr(log_file(log))
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {program}: {e}"));
        Self {
            child,
            name: format!("{program} (log {})", log.display()),
            log: Some(log.to_owned()),
        }
    }

    /// Takes charge of a child started with its own I/O (its output not in
    /// a log file).
    pub(super) fn adopt(child: Child, name: &str) -> Self {
        Self {
            child,
            name: name.to_owned(),
            log: None,
        }
    }

    /// Waits until its gRPC health service at `endpoint` reports SERVING
    /// (over TLS trusting `ca` for an `https://` endpoint).
    ///
    /// # Panics
    /// When the process exits or is not healthy within 60 seconds.
    pub async fn healthy(mut self, endpoint: &str, ca: Option<&Path>) -> Self {
        if let Some(status) = wait_healthy_tls(&mut self.child, endpoint, ca, &self.name).await {
            panic!("{} exited early: {status}", self.name);
        }
        self
    }

    /// [`Self::healthy`] for a process that may end on purpose while it
    /// starts (a trader armed to kill itself at a crash point): returns
    /// once it serves or has ended ([`Self::ended_within`] then says how).
    ///
    /// # Panics
    /// When it neither serves nor ends within 60 seconds.
    pub async fn healthy_or_ended(mut self, endpoint: &str) -> Self {
        let _ = wait_healthy_tls(&mut self.child, endpoint, None, &self.name).await;
        self
    }

    /// Fails the test when the process has already exited.
    ///
    /// # Panics
    /// When it has.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited early: {status}", self.name);
        }
    }

    /// SIGKILLs the process (no shutdown handling at all) and reaps it.
    pub fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM (the service starts its shutdown) without waiting.
    ///
    /// # Panics
    /// When `kill` cannot be run.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill -TERM");
        assert!(status.success(), "kill -TERM {} failed", self.name);
    }

    /// Waits up to `within` for the process to exit; its exit code (`None`
    /// if killed by a signal).
    ///
    /// # Panics
    /// When it does not exit in time.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.child.try_wait().expect("waiting for a service") {
                return st.code();
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit in {within:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits up to `within` for the process to end by itself; how it ended,
    /// or `None` while it still runs (a crash point it never reached).
    ///
    /// # Panics
    /// When the process cannot be waited on.
    pub async fn ended_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.child.try_wait().expect("waiting for a service") {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// [`Self::sigterm`], then [`Self::wait_exit`]: a clean stop, with its
    /// exit code.
    ///
    /// # Panics
    /// When it cannot be signalled or does not exit in time.
    pub async fn terminate(&mut self, within: Duration) -> Option<i32> {
        self.sigterm();
        self.wait_exit(within).await
    }

    /// Everything it logged so far (empty without a log file).
    pub fn log_text(&self) -> String {
        self.log
            .as_ref()
            .and_then(|l| std::fs::read_to_string(l).ok())
            .unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.sigkill();
    }
}

/// Waits until the gRPC health service of `child` at `endpoint` reports
/// SERVING, over TLS trusting the PEM CA file `ca` for an `https://`
/// endpoint (health answers without a token). Returns how the process
/// ended if it ended first.
///
/// # Panics
/// When the CA is unusable, or the service neither serves nor ends within
/// 60 seconds.
async fn wait_healthy_tls(
    child: &mut Child,
    endpoint: &str,
    ca: Option<&Path>,
    name: &str,
) -> Option<std::process::ExitStatus> {
    let tls = healgrid_proto::tls::ClientTls::new("ca", ca).expect("usable CA file");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        let endpoint =
            tonic::transport::Endpoint::from_shared(endpoint.to_owned()).expect("valid endpoint");
        let channel = tls
            .apply(endpoint, None)
            .expect("TLS configured")
            .connect()
            .await;
        if let Ok(channel) = channel {
            let mut client = HealthClient::new(channel);
            let request = HealthCheckRequest {
                service: String::new(),
            };
            if let Ok(r) = client.check(request).await
                && r.into_inner().status == ServingStatus::Serving as i32
            {
                return None;
            }
        }
        assert!(Instant::now() < deadline, "{name} not healthy in 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens `path` for appending, so every (re)start of a process adds to one
/// log a failing test can point at.
fn log_file(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("opening log {}: {e}", path.display()))
}
