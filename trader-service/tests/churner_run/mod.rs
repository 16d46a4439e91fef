//! The churner's real-loop harness the churner suites share: the
//! [`Runtime`] over the (faulty) paper exchange and the in-process ledger,
//! a trader store file for restarts, bands in minutes and the regime forced
//! to ranging.

#![allow(dead_code, missing_docs)]

use ledger_service::{EventDetails, JournalScope, Ledger, SqliteStore};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use trader_service::engine::AgeBand;
use trader_service::exchange::paper::PaperExchange;
use trader_service::exchange::{Clock, SimClock};
use trader_service::healing::Regime;
use trader_service::healing::churner::{ChurnStage, ChurnerConfig};
use trader_service::pair::Candle;
use trader_service::runtime::Runtime;
use trader_service::runtime::ledger::LocalLedger;
use trader_service::runtime::store::{StoreLocation, TraderStore};

use super::faulty::Faulty;
use super::grid;
use super::healing::{self, Flaky};

pub const BOT: &str = "churn-bot";
pub const T0: i64 = 1_700_000_000;

pub fn candle(t: i64, o: Decimal, h: Decimal, l: Decimal, c: Decimal) -> Candle {
    Candle {
        time: t,
        open: o,
        high: h,
        low: l,
        close: c,
        volume: dec!(1000),
    }
}

pub struct Run {
    pub rt: Runtime<Faulty, Flaky<LocalLedger<SqliteStore>>>,
    pub exchange: Faulty,
    pub paper: PaperExchange,
    pub lib: Ledger<SqliteStore>,
    pub ledger: Flaky<LocalLedger<SqliteStore>>,
    pub dir: tempfile::TempDir,
    pub slots: u32,
    /// Band from which subsidized repricing runs.
    pub auto_band: AgeBand,
    /// Effective age from which a position is in band write_off.
    pub write_off_sec: i64,
    pub t: i64,
}

impl Run {
    pub async fn new() -> Self {
        Self::with_slots(1).await
    }

    pub async fn with_slots(slots: u32) -> Self {
        Self::with(slots, AgeBand::Stuck).await
    }

    pub async fn with(slots: u32, auto_band: AgeBand) -> Self {
        Self::with_write_off(slots, auto_band, 1_000_000).await
    }

    pub async fn with_write_off(slots: u32, auto_band: AgeBand, write_off_sec: i64) -> Self {
        let paper = PaperExchange::new(grid::paper_config(60), SimClock::new(T0 * 1000));
        let exchange = Faulty::new(paper.clone(), 0);
        let lib = Ledger::in_memory().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ledger = Flaky::new(LocalLedger::new(lib.clone()));
        let rt = Self::runtime(&exchange, &ledger, &dir, slots, auto_band, write_off_sec).await;
        Self {
            rt,
            exchange,
            paper,
            lib,
            ledger,
            dir,
            slots,
            auto_band,
            write_off_sec,
            t: T0,
        }
    }

    /// `slots` slots of 6 USD, bands in minutes, stage D repricing, the
    /// churner on with 6 USD orders from a 12 USD reserve, the regime
    /// forced to ranging.
    pub async fn runtime(
        exchange: &Faulty,
        ledger: &Flaky<LocalLedger<SqliteStore>>,
        dir: &tempfile::TempDir,
        slots: u32,
        auto_band: AgeBand,
        write_off_sec: i64,
    ) -> Runtime<Faulty, Flaky<LocalLedger<SqliteStore>>> {
        let store = TraderStore::open(&StoreLocation::File(dir.path().join("trader.db")))
            .await
            .unwrap();
        let mut cfg = healing::config(BOT, slots, 1_800);
        cfg.open_order_limit = 60;
        cfg.reprice.auto_band = auto_band;
        cfg.engine.bands.thresholds.stuck_sec = write_off_sec;
        cfg.market.churner = ChurnerConfig {
            enabled: true,
            order_size_usd: Some(dec!(6)),
            reserve_usd: Some(dec!(12)),
            ..ChurnerConfig::off()
        };
        let mut rt = Runtime::new(cfg, exchange.clone(), ledger.clone(), store)
            .await
            .unwrap();
        rt.override_regime(Regime::Ranging, T0 + 30 * 86_400, T0)
            .unwrap();
        rt
    }

    pub async fn restart(&mut self) {
        self.rt = Self::runtime(
            &self.exchange,
            &self.ledger,
            &self.dir,
            self.slots,
            self.auto_band,
            self.write_off_sec,
        )
        .await;
    }

    pub async fn step(&mut self, c: Candle) {
        self.paper.step(&c);
        self.rt.step(self.paper.clock().now_ms()).await.unwrap();
        self.t = c.time + 60;
        assert_eq!(
            self.rt.churn_book().naked_inventory(),
            Decimal::ZERO,
            "filled churner inventory always has an exit"
        );
        let r = &self.rt.churn_book().reserve;
        assert!(r.total() <= dec!(12) && r.lent.values().all(|l| *l <= dec!(6)));
        assert!(self.rt.subsidy().balance(0) >= Decimal::ZERO);
    }

    pub async fn flat(&mut self, n: usize, p: Decimal) {
        for _ in 0..n {
            self.step(candle(self.t, p, p, p, p)).await;
        }
    }

    /// Entry 0.0998 filled, then 30 minutes at 0.0990: stuck.
    pub async fn stuck_position(&mut self) -> u64 {
        self.flat(3, dec!(0.1)).await;
        self.step(candle(
            self.t,
            dec!(0.1),
            dec!(0.1),
            dec!(0.0990),
            dec!(0.0990),
        ))
        .await;
        // Eight minutes 0.8 % away: band aging (effective age > 600 s).
        self.flat(8, dec!(0.0990)).await;
        let pos = self.lib.open_positions(BOT, Some(0)).await.unwrap();
        assert_eq!(pos.len(), 1);
        pos[0].position_id
    }

    /// A dip that fills a churner buy entry at market - 0.15 %, then a
    /// bounce that fills its exit at + 0.6 %, then a flat minute.
    pub async fn range_once(&mut self) {
        let p = dec!(0.0990);
        self.step(candle(self.t, p, p, dec!(0.09884), p)).await;
        self.step(candle(self.t, p, dec!(0.09950), p, p)).await;
        self.flat(1, p).await;
    }

    pub fn stage(&self) -> ChurnStage {
        self.rt.churn_book().slots[&0].stage.clone()
    }

    /// The churner orders resting on the paper book.
    pub fn churn_orders(&self) -> Vec<trader_service::exchange::OrderInfo> {
        self.paper
            .with_book(|b| b.open_orders())
            .into_iter()
            .filter(|o| o.cl_ord_id.as_deref().is_some_and(|c| c.starts_with("ch:")))
            .collect()
    }

    pub async fn kinds(&self, id: u64) -> Vec<&'static str> {
        self.lib
            .journal(&JournalScope::Position(id), 0, 200)
            .await
            .unwrap()
            .entries
            .iter()
            .map(|e| match &e.details {
                EventDetails::Created(_) => "created",
                EventDetails::ChurnerProfit(_) => "churner_profit",
                EventDetails::Repriced(_) => "repriced",
                EventDetails::Filled(_) => "filled",
                EventDetails::HandedOver(_) => "handed_over",
                _ => "other",
            })
            .collect()
    }

    pub async fn churner_positions(&self) -> Vec<ledger_service::Position> {
        self.lib
            .position_history(BOT, Some(0), 500)
            .await
            .unwrap()
            .into_iter()
            .filter(|p| p.open_key.starts_with("churn:"))
            .collect()
    }
}
