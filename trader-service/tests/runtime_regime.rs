//! The regime detector across restarts of the real loop: the [`Runtime`]
//! over the paper exchange and the in-process ledger, with a trader store
//! file. A detector that was ready before a restart is ready with the same
//! label and posteriors right after it (no new candle needed), the
//! `GetStatus` answer says so, and it goes on exactly as one that never
//! restarted; a stored copy that is unreadable or does not fit the
//! configuration is logged and ignored, and the detector starts fresh.

#![allow(missing_docs)]

mod grid;
mod healing;

use std::sync::{Arc, Mutex};

use ledger_service::{Ledger, SqliteStore};
use rust_decimal::Decimal;
use rust_decimal::prelude::FromPrimitive;
use trader_service::exchange::paper::PaperExchange;
use trader_service::exchange::{Clock, SimClock};
use trader_service::grpc::status_response;
use trader_service::healing::Regime;
use trader_service::healing::regime_persist::RegimeProgress;
use trader_service::pair::Candle;
use trader_service::runtime::ledger::LocalLedger;
use trader_service::runtime::store::{StoreLocation, TraderStore};
use trader_service::runtime::{Runtime, RuntimeConfig};

const BOT: &str = "regime-bot";
const T0: i64 = 1_700_000_000;
const BAR: i64 = 300;
/// Bars until the detector is fitted and past its dwell.
const WARM: i64 = 40;
const PROGRESS_KEY: &str = "regime:progress";
const WINDOW_KEY: &str = "regime:window";

type Rt = Runtime<PaperExchange, LocalLedger<SqliteStore>>;

/// A small detector (48 returns, fitted from 24, refitted every 6, dwell
/// 2) on the healing grid, so it is ready within a few simulated hours.
fn config(window: usize) -> RuntimeConfig {
    let mut c = healing::config(BOT, 1, 1_800);
    c.market.regime.window = window;
    c.market.regime.min_returns = 24;
    c.market.regime.refit_every = 6;
    c.market.regime.dwell = 2;
    c.market = c.market.validate().0;
    c
}

/// A mean-reverting XDG price for bar `i` (deterministic).
fn price(i: i64) -> Decimal {
    let x = 0.004 * (i as f64 * 1.3).sin() + 0.002 * (i as f64 * 0.37).cos();
    Decimal::from_f64(0.1 * x.exp())
        .expect("finite")
        .round_dp(7)
}

struct Run {
    paper: PaperExchange,
    ledger: LocalLedger<SqliteStore>,
    dir: tempfile::TempDir,
    rt: Rt,
    window: usize,
    /// Next bar to feed.
    bar: i64,
}

impl Run {
    async fn new() -> Self {
        let paper = PaperExchange::new(grid::paper_config(60), SimClock::new(T0 * 1000));
        let ledger = LocalLedger::new(Ledger::in_memory().await.unwrap());
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime(&paper, &ledger, &dir, 48).await;
        Self {
            paper,
            ledger,
            dir,
            rt,
            window: 48,
            bar: 0,
        }
    }

    async fn store(&self) -> TraderStore {
        TraderStore::open(&StoreLocation::File(self.dir.path().join("trader.db")))
            .await
            .unwrap()
    }

    /// A crash-like restart: the old runtime is dropped without a flush.
    async fn restart(&mut self) {
        self.rt = runtime(&self.paper, &self.ledger, &self.dir, self.window).await;
    }

    /// One 5-minute candle at the next bar's price, one loop.
    async fn bar(&mut self) {
        let p = price(self.bar);
        self.paper.step(&Candle {
            time: T0 + BAR * self.bar,
            open: p,
            high: p,
            low: p,
            close: p,
            volume: Decimal::from(1000),
        });
        self.bar += 1;
        self.rt.step(self.now_ms()).await.unwrap();
    }

    async fn bars(&mut self, n: i64) {
        for _ in 0..n {
            self.bar().await;
        }
    }

    fn now_ms(&self) -> i64 {
        self.paper.clock().now_ms()
    }

    fn now(&self) -> i64 {
        self.now_ms() / 1000
    }

    /// The regime section of the `GetStatus` answer.
    async fn status_regime(&self) -> (String, f64, bool) {
        let s = self.rt.status(self.now_ms()).await.unwrap();
        let r = status_response(&s)
            .healing
            .and_then(|h| h.regime)
            .expect("regime section");
        (r.state, r.confidence, r.ready)
    }
}

async fn runtime(
    paper: &PaperExchange,
    ledger: &LocalLedger<SqliteStore>,
    dir: &tempfile::TempDir,
    window: usize,
) -> Rt {
    let store = TraderStore::open(&StoreLocation::File(dir.path().join("trader.db")))
        .await
        .unwrap();
    Runtime::new(config(window), paper.clone(), ledger.clone(), store)
        .await
        .unwrap()
}

/// Proves: a detector ready before a crash-like restart is ready right
/// after it, before any new candle, with the same label, confidence and
/// posteriors, in the status too; and it then evolves exactly like the
/// detector of a trader that never restarted.
#[tokio::test]
async fn a_ready_detector_is_ready_with_the_same_label_after_a_restart() {
    let mut r = Run::new().await;
    let mut control = Run::new().await;
    r.bars(WARM).await;
    control.bars(WARM).await;
    let before = r.rt.regime_view(r.now());
    assert!(before.ready, "{before:?}");
    assert_eq!(before.label, Regime::Ranging, "{before:?}");
    let status = r.status_regime().await;
    assert_eq!(status, ("ranging".to_owned(), before.confidence, true));

    r.restart().await;
    assert_eq!(r.rt.regime_view(r.now()), before);
    assert_eq!(r.status_regime().await, status);

    for _ in 0..20 {
        r.bar().await;
        control.bar().await;
        assert_eq!(
            r.rt.regime_view(r.now()),
            control.rt.regime_view(control.now())
        );
    }
    // A second restart, now mid-checkpoint, and a clean shutdown this time.
    r.rt.flush(r.now_ms()).await.unwrap();
    r.restart().await;
    assert_eq!(
        r.rt.regime_view(r.now()),
        control.rt.regime_view(control.now())
    );
    assert_eq!(r.status_regime().await, control.status_regime().await);
}

/// Captures the log lines written while its guard lives.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
    }
}

/// How a stored copy is spoiled before the restart.
enum Spoil {
    Meta(&'static str, &'static str),
    /// A NaN posterior: stored as `null`.
    NanPosterior,
    NegativeVariance,
    NoWindow,
    OtherWindowSetting,
}

/// Proves: a stored detector that cannot be read (bad JSON, a NaN, a
/// missing record), that is implausible (a negative variance) or that was
/// built for another window setting does not crash the start: a warning
/// says why, the detector starts fresh (`unknown`, not ready, in the
/// status too), and its next commits overwrite the bad records.
#[tokio::test]
async fn a_stored_detector_that_does_not_fit_is_ignored_with_a_warning() {
    let logs = Logs::default();
    let w = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || w.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    for spoil in [
        Spoil::Meta(PROGRESS_KEY, "{\"version\": 1, \"tail\": [0.1"),
        Spoil::Meta(WINDOW_KEY, "[]"),
        Spoil::NanPosterior,
        Spoil::NegativeVariance,
        Spoil::NoWindow,
        Spoil::OtherWindowSetting,
    ] {
        let mut r = Run::new().await;
        r.bars(WARM).await;
        assert!(r.rt.regime_view(r.now()).ready);
        let store = r.store().await;
        let stored = store.get_meta(PROGRESS_KEY).await.unwrap().unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&stored).unwrap();
        match spoil {
            Spoil::Meta(key, value) => store.put_meta(key, value).await.unwrap(),
            Spoil::NanPosterior => {
                v["detector"]["posterior"][0] = serde_json::json!(f64::NAN);
                store.put_meta(PROGRESS_KEY, &v.to_string()).await.unwrap();
            }
            Spoil::NegativeVariance => {
                v["detector"]["model"]["var"][0] = serde_json::json!(-1e-6);
                store.put_meta(PROGRESS_KEY, &v.to_string()).await.unwrap();
            }
            Spoil::NoWindow => store.delete_meta(WINDOW_KEY).await.unwrap(),
            Spoil::OtherWindowSetting => r.window = 96,
        }
        logs.take();
        r.restart().await;
        let log = logs.take();
        assert!(
            log.contains("WARN") && log.contains("stored regime detector"),
            "{log}"
        );
        let view = r.rt.regime_view(r.now());
        assert!(!view.ready && view.label == Regime::Unknown, "{view:?}");
        assert_eq!(r.status_regime().await, ("unknown".to_owned(), 0.0, false));

        // Three observations make the first return of the fresh history.
        r.bars(3).await;
        let stored = store.get_meta(PROGRESS_KEY).await.unwrap().unwrap();
        let p: RegimeProgress = serde_json::from_str(&stored).expect("rewritten");
        assert_eq!(p.detector.config().window, r.window);
        store.close().await;
    }
}
