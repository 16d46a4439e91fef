//! Release of a locked pair through the real loop: the [`Runtime`] over the
//! paper exchange and the in-process ledger. The market drops through the
//! slot's buy entry, then bounces into its refreshed sell entry: the slot
//! holds a long above and a short below the market, both exits stuck. The
//! loop closes both at market, the ledger books both `written_off` with the
//! policy's journal row, and the slot waits the release backoff before it
//! quotes again.

#![allow(missing_docs)]

mod grid;
mod healing;

use std::collections::BTreeMap;

use ledger_service::{EventDetails, JournalScope, Ledger, SqliteStore};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use trader_service::engine::TradeId;
use trader_service::exchange::paper::{PaperConfig, PaperExchange};
use trader_service::exchange::{Clock, SimClock};
use trader_service::runtime::Runtime;
use trader_service::runtime::ledger::LocalLedger;
use trader_service::runtime::store::{StoreLocation, TraderStore};

const BOT: &str = "release-bot";
const T0: i64 = 1_700_000_000;
/// The release wait after a life that made money; this slot's lost, so it
/// waits twice this (two hours).
const BACKOFF: i64 = 3_600;

struct Run {
    rt: Runtime<PaperExchange, LocalLedger<SqliteStore>>,
    paper: PaperExchange,
    lib: Ledger<SqliteStore>,
    t: i64,
}

impl Run {
    async fn new(release: bool) -> Self {
        let cfg: PaperConfig = grid::paper_config(60);
        let paper = PaperExchange::new(cfg, SimClock::new(T0 * 1000));
        let lib = Ledger::in_memory().await.unwrap();
        let store = TraderStore::open(&StoreLocation::Memory).await.unwrap();
        let mut c = healing::config(BOT, 1, 1_800);
        c.reprice.release_locked_pairs = release;
        c.engine.release_backoff_sec = if release { BACKOFF } else { 0 };
        let rt = Runtime::new(c, paper.clone(), LocalLedger::new(lib.clone()), store)
            .await
            .unwrap();
        Self {
            rt,
            paper,
            lib,
            t: T0,
        }
    }

    async fn candle(&mut self, open: Decimal, high: Decimal, low: Decimal, close: Decimal) {
        let c = grid::candle(self.t, open, high, low, close);
        self.paper.step(&c);
        self.rt.step(self.paper.clock().now_ms()).await.unwrap();
        self.t = c.time + 60;
    }

    async fn minutes(&mut self, n: usize, p: Decimal) {
        for _ in 0..n {
            self.candle(p, p, p, p).await;
        }
    }

    /// Drives the slot into a locked pair and ages it until both exits are
    /// stuck (band stuck from 30 minutes of effective age here).
    async fn lock_the_pair(&mut self) {
        self.minutes(3, dec!(0.1)).await;
        // Down through the buy entry: the long.
        self.candle(dec!(0.1), dec!(0.1), dec!(0.0950), dec!(0.0950))
            .await;
        // The sell entry is refreshed down to the market, then a bounce
        // fills it: the short, sold below the long's entry.
        self.minutes(5, dec!(0.0950)).await;
        self.candle(dec!(0.0950), dec!(0.0956), dec!(0.0950), dec!(0.0953))
            .await;
        let exits: Vec<_> = self.rt.engine().open_exits().map(|x| x.id.trade).collect();
        assert_eq!(
            exits,
            vec![TradeId::A, TradeId::B],
            "a long and a short: {:?}",
            self.rt.engine().slots
        );
    }

    /// Positions of slot 0 the ledger booked `written_off`, with the
    /// operators of their journaled actions.
    async fn written_off(&self) -> Vec<(u64, Vec<String>)> {
        let scope = JournalScope::Slot {
            bot_id: BOT.to_owned(),
            slot_id: 0,
        };
        let page = self.lib.journal(&scope, 0, 500).await.unwrap();
        let mut out: BTreeMap<u64, (bool, Vec<String>)> = BTreeMap::new();
        for e in &page.entries {
            let row = out.entry(e.position_id).or_default();
            match &e.details {
                EventDetails::WrittenOff(_) => row.0 = true,
                EventDetails::OperatorAction(a) => row.1.push(a.operator.clone()),
                _ => {}
            }
        }
        out.into_iter()
            .filter(|(_, (w, _))| *w)
            .map(|(id, (_, ops))| (id, ops))
            .collect()
    }

    fn open_orders(&self) -> usize {
        self.paper.with_book(|b| b.open_orders().len())
    }
}

/// Proves: both legs of a locked pair are closed at market by the policy,
/// journaled (operator `policy`) and booked `written_off` in the ledger;
/// the slot then waits the backoff (its life lost money) before quoting.
#[tokio::test]
async fn a_locked_pair_is_closed_at_market_and_the_slot_waits_the_backoff() {
    let mut run = Run::new(true).await;
    run.lock_the_pair().await;
    run.minutes(60, dec!(0.0953)).await;
    assert_eq!(run.rt.engine().open_exits().count(), 0, "both legs closed");
    let closed = run.written_off().await;
    assert_eq!(closed.len(), 2, "{closed:?}");
    for (_, kinds) in &closed {
        assert_eq!(kinds, &vec!["policy".to_owned()], "journaled as policy");
    }
    assert_eq!(run.rt.write_offs().pairs_released, 1);
    assert_eq!(run.rt.write_offs().auto, 2);
    // The slot is empty and waits: no entries during the backoff...
    run.minutes(60, dec!(0.0953)).await;
    assert_eq!(run.open_orders(), 0, "waiting out the backoff");
    // ...and quotes both sides again after it.
    run.minutes(70, dec!(0.0953)).await;
    assert_eq!(run.open_orders(), 2, "quoting again");
}

/// Proves: without the policy the same pair stays locked (the sticky grid).
#[tokio::test]
async fn without_the_policy_the_locked_pair_stays() {
    let mut run = Run::new(false).await;
    run.lock_the_pair().await;
    run.minutes(60, dec!(0.0953)).await;
    assert_eq!(run.rt.engine().open_exits().count(), 2);
    assert!(run.written_off().await.is_empty());
}
