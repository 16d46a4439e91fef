//! `ledger-service` as the tests run it.

use std::process::{Command, Stdio};

use super::{Service, free_port, ledger_binary};

/// A running `ledger-service`, killed when dropped; signals and waits are
/// those of its [`Service`].
#[derive(Debug)]
pub struct LedgerProcess {
    service: Service,
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
    /// The ledger keeps the test's environment and writes its warnings to
    /// the test's stderr.
    ///
    /// # Panics
    /// When the process exits or is not healthy within 60 seconds.
    pub async fn start_with(port: u16, database_url: &str, envs: &[(&str, &str)]) -> Self {
        let (service, endpoint) = Self::spawn(port, database_url, envs);
        let service = service.healthy(&endpoint, None).await;
        Self { service, endpoint }
    }

    /// [`Self::start_on`] with the crash point `crash_at` armed
    /// (`HEALGRID_CRASH_AT`): returns once it serves or, having reached its
    /// point while starting, has ended.
    ///
    /// # Panics
    /// When it neither serves nor ends within 60 seconds.
    pub async fn start_armed(port: u16, database_url: &str, crash_at: &str) -> Self {
        let (service, endpoint) =
            Self::spawn(port, database_url, &[("HEALGRID_CRASH_AT", crash_at)]);
        let service = service.healthy_or_ended(&endpoint).await;
        Self { service, endpoint }
    }

    fn spawn(port: u16, database_url: &str, envs: &[(&str, &str)]) -> (Service, String) {
        let child = Command::new(ledger_binary())
            .env("LEDGER_LISTEN", format!("127.0.0.1:{port}"))
            .env("LEDGER_DATABASE_URL", database_url)
            .env("RUST_LOG", "warn")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning ledger-service");
        let endpoint = format!("http://127.0.0.1:{port}");
        (Service::adopt(child, "ledger-service"), endpoint)
    }
}

super::deref_to_service!(LedgerProcess);
