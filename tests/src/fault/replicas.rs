//! The ledger replicas of a rig: one or more `ledger-service` processes on
//! one database, each keeping its port across restarts so the trader finds
//! a restarted replica where its `LEDGER_URL` says.

use crate::process::{LedgerProcess, free_port};

/// The replicas, by index.
#[derive(Debug)]
pub struct Replicas {
    database_url: String,
    ports: Vec<u16>,
    /// `None` while killed.
    running: Vec<Option<LedgerProcess>>,
}

impl Replicas {
    /// Starts `count` replicas (at least one) on `database_url`, one after
    /// the other (the first one migrates the database).
    ///
    /// # Panics
    /// When one does not come up.
    pub async fn start(database_url: &str, count: usize) -> Self {
        let ports: Vec<u16> = (0..count.max(1)).map(|_| free_port()).collect();
        let mut running = Vec::with_capacity(ports.len());
        for port in &ports {
            running.push(Some(LedgerProcess::start_on(*port, database_url).await));
        }
        Self {
            database_url: database_url.to_owned(),
            ports,
            running,
        }
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.ports.len()
    }

    /// Always false: a rig has at least one replica.
    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }

    /// Every replica's endpoint, in index order.
    pub fn endpoints(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect()
    }

    /// The trader's `LEDGER_URL`: every endpoint, comma-separated.
    pub fn ledger_url(&self) -> String {
        self.endpoints().join(",")
    }

    /// SIGKILLs replica `i` (a no-op when it is down).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut l) = self.running[i].take() {
            l.sigkill();
        }
    }

    /// Starts replica `i` again, when it is down, with the crash point
    /// `crash_at` armed; it may have killed itself when this returns.
    ///
    /// # Panics
    /// When it neither comes up nor ends.
    pub async fn restart_armed(&mut self, i: usize, crash_at: &str) {
        if self.running[i].is_none() {
            let ledger =
                LedgerProcess::start_armed(self.ports[i], &self.database_url, crash_at).await;
            self.running[i] = Some(ledger);
        }
    }

    /// Waits up to `within` for replica `i` to end by itself; how it ended,
    /// or `None` while it runs. An ended replica counts as down.
    pub async fn ended_within(
        &mut self,
        i: usize,
        within: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        let ended = match self.running[i].as_mut() {
            Some(l) => l.ended_within(within).await,
            None => None,
        };
        if ended.is_some() {
            self.running[i] = None;
        }
        ended
    }

    /// Starts replica `i` again on its port and database, when it is down.
    ///
    /// # Panics
    /// When it does not come up.
    pub async fn restart(&mut self, i: usize) {
        if self.running[i].is_none() {
            let ledger = LedgerProcess::start_on(self.ports[i], &self.database_url).await;
            self.running[i] = Some(ledger);
        }
    }
}
