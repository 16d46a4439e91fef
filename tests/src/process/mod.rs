//! Building and starting the real service binaries: `ledger-service`,
//! `trader-service run` and `trader-service kraken-sim`.

use std::{
    fs::{File, OpenOptions},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// Path of the `ledger-service` binary, built once per test process with
/// the same cargo and target directory as the tests themselves.
///
/// # Panics
/// When the build fails.
pub fn ledger_binary() -> PathBuf {
    built_binary("ledger-service")
}

/// Path of the `trader-service` binary, built like [`ledger_binary`].
///
/// # Panics
/// When the build fails.
pub fn trader_binary() -> PathBuf {
    built_binary("trader-service")
}

/// Path of the `gateway` binary, built like [`ledger_binary`].
///
/// # Panics
/// When the build fails.
pub fn gateway_binary() -> PathBuf {
    built_binary("gateway")
}

/// Every service binary the tests start, built together in one cargo
/// invocation (once per test process): one feature resolution for all of
/// them, so building one never invalidates the other's dependencies.
const SERVICES: [&str; 3] = ["ledger-service", "trader-service", "gateway"];

/// Path of the service binary `package` (debug profile), building all of
/// [`SERVICES`] on first use.
fn built_binary(package: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.arg("build");
        for p in SERVICES {
            cmd.args(["-p", p, "--bin", p]);
        }
        let status = cmd
            .current_dir(workspace_root())
            .status()
            .expect("running cargo build for the service binaries");
        assert!(status.success(), "cargo build of {SERVICES:?} failed");
    });
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    let target = if target.is_absolute() {
        target
    } else {
        workspace_root().join(target)
    };
    let binary = target
        .join("debug")
        .join(format!("{package}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "built binary not found at {}",
        binary.display()
    );
    binary
}

/// A free local port (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral port")
}

/// A running `ledger-service`, killed when dropped.
#[derive(Debug)]
pub struct LedgerProcess {
    child: Child,
    /// `http://127.0.0.1:port`, for tonic clients.
    pub endpoint: String,
}

impl LedgerProcess {
    /// Starts the binary on a free port against `database_url` and waits
    /// until its health service reports SERVING.
    ///
    /// # Panics
    /// When the process exits or is not healthy within 60 seconds.
    pub async fn start(database_url: &str) -> Self {
        Self::start_on(free_port(), database_url).await
    }

    /// [`Self::start`] on a given port (to restart a killed ledger where
    /// its clients expect it).
    ///
    /// # Panics
    /// When the process exits or is not healthy within 60 seconds.
    pub async fn start_on(port: u16, database_url: &str) -> Self {
        Self::start_with(port, database_url, &[]).await
    }

    /// [`Self::start_on`] with extra environment (`LEDGER_DRAIN_GRACE_SEC`...).
    ///
    /// # Panics
    /// When the process exits or is not healthy within 60 seconds.
    pub async fn start_with(port: u16, database_url: &str, envs: &[(&str, &str)]) -> Self {
        let child = Command::new(ledger_binary())
            .env("LEDGER_LISTEN", format!("127.0.0.1:{port}"))
            .env("LEDGER_DATABASE_URL", database_url)
            .env("RUST_LOG", "warn")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning ledger-service");
        let mut process = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        process.wait_healthy().await;
        process
    }

    async fn wait_healthy(&mut self) {
        wait_healthy(&mut self.child, &self.endpoint, "ledger-service").await;
    }

    /// SIGKILLs the process (no shutdown handling at all) and reaps it.
    pub fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM (the ledger starts draining) without waiting.
    ///
    /// # Panics
    /// When `kill` cannot be run.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill -TERM");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits up to `within` for the process to exit; its exit code (`None`
    /// if killed by a signal).
    ///
    /// # Panics
    /// When it does not exit in time.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.child.try_wait().expect("waiting for the ledger") {
                return st.code();
            }
            assert!(
                Instant::now() < deadline,
                "ledger did not exit in {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Waits until the gRPC service of `child` at `endpoint` reports SERVING.
///
/// # Panics
/// When the process exits or is not healthy within 60 seconds.
pub async fn wait_healthy(child: &mut Child, endpoint: &str, name: &str) {
    wait_healthy_tls(child, endpoint, None, name).await;
}

/// [`wait_healthy`] for an `https://` endpoint too, trusting the PEM CA
/// file `ca` (health answers without a token).
///
/// # Panics
/// When the process exits, the CA is unusable, or the service is not
/// healthy within 60 seconds.
pub async fn wait_healthy_tls(child: &mut Child, endpoint: &str, ca: Option<&Path>, name: &str) {
    let tls = healgrid_proto::tls::ClientTls::new("ca", ca).expect("usable CA file");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited early: {status}");
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
                return;
            }
        }
        assert!(Instant::now() < deadline, "{name} not healthy in 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Drop for LedgerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens `path` for appending, so every (re)start of a process adds to one
/// log a failing test can point at.
pub fn log_file(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("opening log {}: {e}", path.display()))
}

/// A running `trader-service run`, SIGKILLed when dropped.
#[derive(Debug)]
pub struct TraderProcess {
    child: Child,
    /// `http://127.0.0.1:port` of the control API.
    pub endpoint: String,
}

impl TraderProcess {
    /// Starts `trader-service run ARGS` with a clean environment plus `envs`,
    /// its control API on a free port, logging to `log`, and waits until
    /// its health service reports SERVING.
    ///
    /// # Panics
    /// When the process exits or is not healthy within 60 seconds.
    pub async fn start(args: &[String], envs: &[(&str, &str)], log: &Path) -> Self {
        let port = free_port();
        let child = Command::new(trader_binary())
            .arg("run")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .env_clear()
            .env("RUST_LOG", "info")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(log_file(log))
            .stderr(log_file(log))
            .spawn()
            .expect("spawning trader-service run");
        let mut process = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        wait_healthy(&mut process.child, &process.endpoint, "trader-service").await;
        process
    }

    /// SIGKILLs the trader (no shutdown handling at all) and reaps it.
    pub fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits up to `within` for the exit; returns the exit
    /// code (`None` if killed by a signal).
    ///
    /// # Panics
    /// When the trader does not exit in time.
    pub async fn sigterm(&mut self, within: Duration) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill -TERM");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.child.try_wait().expect("waiting for the trader") {
                return st.code();
            }
            assert!(
                Instant::now() < deadline,
                "trader did not exit after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TraderProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `trader-service kraken-sim`, killed when dropped.
#[derive(Debug)]
pub struct SimProcess {
    child: Child,
    /// `127.0.0.1:port`.
    pub addr: String,
}

impl SimProcess {
    /// API key the simulator accepts.
    pub const KEY: &str = "healgrid-test-key";
    /// Its secret (base64 of 64 bytes), as `KRAKEN_API_SECRET`.
    pub const SECRET: &str =
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";

    /// Starts the simulator (synthetic XDGUSD market, `extra` flags
    /// appended) on a free port and waits until it answers `Time`.
    ///
    /// # Panics
    /// When it exits or does not answer within 60 seconds.
    pub async fn start(extra: &[&str], log: &Path) -> Self {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut child = Command::new(trader_binary())
            .arg("kraken-sim")
            .args(["--listen", &addr, "--api-key", Self::KEY])
            .args(["--api-secret", Self::SECRET])
            .args(extra)
            .env_clear()
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log_file(log))
            .stderr(log_file(log))
            .spawn()
            .expect("spawning trader-service kraken-sim");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("kraken-sim exited early: {status}");
            }
            if crate::http::request(&addr, "GET", "/0/public/Time")
                .await
                .is_ok()
            {
                break;
            }
            assert!(Instant::now() < deadline, "kraken-sim not up in 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, addr }
    }

    /// `http://127.0.0.1:port`, for `KRAKEN_API_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
