//! `trader-service kraken-sim` as the tests run it, and the stepper that
//! moves its market.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::{Service, free_port, trader_binary};

/// A running `trader-service kraken-sim`, killed when dropped.
#[derive(Debug)]
pub struct SimProcess {
    service: Service,
    /// `127.0.0.1:port`.
    pub addr: String,
}

impl SimProcess {
    /// API key the simulator accepts.
    pub const KEY: &str = "healgrid-test-key";
    /// Its secret (base64 of 64 bytes), as `KRAKEN_API_SECRET`.
    pub const SECRET: &str =
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";
    /// The environment of a trader trading on the simulator.
    pub const CREDENTIALS: [(&str, &str); 2] = [
        ("KRAKEN_API_KEY", Self::KEY),
        ("KRAKEN_API_SECRET", Self::SECRET),
    ];

    /// Starts the simulator (synthetic XDGUSD market, `extra` flags
    /// appended) on a free port and waits until it answers `Time`.
    ///
    /// # Panics
    /// When it exits or does not answer within 60 seconds.
    pub async fn start(extra: &[&str], log: &Path) -> Self {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut args = vec!["kraken-sim", "--listen", &addr, "--api-key", Self::KEY];
        args.extend(["--api-secret", Self::SECRET]);
        args.extend(extra);
        let mut service = Service::spawn(&trader_binary(), &args, &[("RUST_LOG", "warn")], log);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            service.assert_running();
            if crate::http::request(&addr, "GET", "/0/public/Time")
                .await
                .is_ok()
            {
                break;
            }
            assert!(Instant::now() < deadline, "kraken-sim not up in 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { service, addr }
    }

    /// [`Self::start`] with the Pro fee tier and a market of `seed` that
    /// moves only when stepped ([`Self::step_every`]), so a test can freeze
    /// it for its final comparison.
    ///
    /// # Panics
    /// Like [`Self::start`].
    pub async fn start_manual(seed: u64, log: &Path) -> Self {
        Self::start_manual_with(seed, &[], log).await
    }

    /// [`Self::start_manual`] with `extra` flags appended (e.g. a pair
    /// minimum).
    ///
    /// # Panics
    /// Like [`Self::start`].
    pub async fn start_manual_with(seed: u64, extra: &[&str], log: &Path) -> Self {
        let seed = seed.to_string();
        let mut args = vec!["--speed", "0", "--tier", "pro", "--seed", &seed];
        args.extend(extra);
        Self::start(&args, log).await
    }

    /// `http://127.0.0.1:port`, for `KRAKEN_API_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Moves the market (of a simulator started with `--speed 0`) one 60 s
    /// candle every `every`, until the stepper is stopped: the test, not
    /// the clock, decides when the market freezes. The ledger refuses times
    /// more than 24 h ahead, so a run must stop before 1440 steps.
    pub fn step_every(&self, every: Duration) -> Stepper {
        let stepping = Arc::new(AtomicBool::new(true));
        let addr = self.addr.clone();
        let running = Arc::clone(&stepping);
        let task = tokio::spawn(async move {
            while running.load(Ordering::SeqCst) {
                let _ = crate::http::request(&addr, "POST", "/sim/step").await;
                tokio::time::sleep(every).await;
            }
        });
        Stepper {
            stepping,
            task: Some(task),
        }
    }
}

super::deref_to_service!(SimProcess);

/// The task stepping a simulator's market; it stops when dropped.
pub struct Stepper {
    stepping: Arc<AtomicBool>,
    task: Option<JoinHandle<()>>,
}

impl Stepper {
    /// Freezes the market: returns once the last step has been answered.
    ///
    /// # Panics
    /// When the stepping task panicked.
    pub async fn stop(mut self) {
        self.stepping.store(false, Ordering::SeqCst);
        if let Some(task) = self.task.take() {
            task.await.expect("the market stepper");
        }
    }
}

impl Drop for Stepper {
    fn drop(&mut self) {
        self.stepping.store(false, Ordering::SeqCst);
    }
}
