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
        let service = Service::adopt(child, "ledger-service")
            .healthy(&endpoint, None)
            .await;
        Self { service, endpoint }
    }
}

super::deref_to_service!(LedgerProcess);
