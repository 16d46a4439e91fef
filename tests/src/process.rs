//! Building and starting the real `ledger-service` binary.

use std::{
    net::TcpListener,
    path::PathBuf,
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
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", "ledger-service", "--bin", "ledger-service"])
                .current_dir(workspace_root())
                .status()
                .expect("running cargo build for ledger-service");
            assert!(status.success(), "cargo build -p ledger-service failed");
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
                .join(format!("ledger-service{}", std::env::consts::EXE_SUFFIX));
            assert!(
                binary.exists(),
                "built binary not found at {}",
                binary.display()
            );
            binary
        })
        .clone()
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
        let port = free_port();
        let child = Command::new(ledger_binary())
            .env("LEDGER_LISTEN", format!("127.0.0.1:{port}"))
            .env("LEDGER_DATABASE_URL", database_url)
            .env("RUST_LOG", "warn")
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
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("ledger-service exited early: {status}");
            }
            let channel = tonic::transport::Endpoint::from_shared(self.endpoint.clone())
                .expect("valid endpoint")
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
            assert!(
                Instant::now() < deadline,
                "ledger-service not healthy in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for LedgerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
