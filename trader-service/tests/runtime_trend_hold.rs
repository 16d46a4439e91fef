//! The entry hold through the real loop: the [`Runtime`] over the paper
//! exchange and the in-process ledger. The market climbs steadily (every
//! 5-minute close higher, with a dip inside each bar that lets round trips
//! complete); once the healing pass measures the climb, the slot's sell
//! entry (trade A) is no longer placed, while its buy side trades on. When
//! the market goes flat the hold lifts and the sell entry is quoted again.

#![allow(missing_docs)]

mod grid;
mod healing;

use ledger_service::{Ledger, SqliteStore};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use trader_service::engine::{EntryHold, IdleReason, TradeId, TradeWork};
use trader_service::exchange::paper::PaperExchange;
use trader_service::exchange::{Clock, SimClock};
use trader_service::healing::TrendConfig;
use trader_service::pair::Side;
use trader_service::runtime::Runtime;
use trader_service::runtime::ledger::LocalLedger;
use trader_service::runtime::store::{StoreLocation, TraderStore};

const T0: i64 = 1_700_000_100;

struct Run {
    rt: Runtime<PaperExchange, LocalLedger<SqliteStore>>,
    paper: PaperExchange,
    t: i64,
    price: Decimal,
}

impl Run {
    async fn new() -> Self {
        let paper = PaperExchange::new(grid::paper_config(60), SimClock::new(T0 * 1000));
        let lib = Ledger::in_memory().await.unwrap();
        let store = TraderStore::open(&StoreLocation::Memory).await.unwrap();
        let mut c = healing::config("trend-bot", 1, 86_400);
        // One hour of 5-minute closes; a hold from a ratio of 0.5.
        c.market.trend = TrendConfig {
            window: 12,
            hold_er: 0.5,
            resume_er: 0.3,
        };
        let rt = Runtime::new(c, paper.clone(), LocalLedger::new(lib), store)
            .await
            .unwrap();
        Self {
            rt,
            paper,
            t: T0,
            price: dec!(0.1),
        }
    }

    async fn candle(&mut self, high: Decimal, low: Decimal, close: Decimal) {
        let c = grid::candle(self.t, self.price, high, low, close);
        self.paper.step(&c);
        self.rt.step(self.paper.clock().now_ms()).await.unwrap();
        self.t += 60;
        self.price = close;
    }

    /// One 5-minute bar that dips 1.5 % below its open in its first
    /// minute and closes 0.5 % above it.
    async fn climbing_bar(&mut self) {
        let open = self.price;
        let low = (open * dec!(0.985)).round_dp(6);
        self.candle(open, low, open).await;
        for _ in 0..3 {
            self.candle(open, open, open).await;
        }
        let close = (open * dec!(1.005)).round_dp(6);
        self.candle(close, open, close).await;
    }

    async fn flat_minutes(&mut self, n: usize) {
        for _ in 0..n {
            let p = self.price;
            self.candle(p, p, p).await;
        }
    }

    fn sell_trade(&self) -> &TradeWork {
        &self.rt.engine().slots[&0].trade(TradeId::A).work
    }
}

/// Proves: a steady climb holds the sell entry (trade A waits as
/// `TrendHold`, no sell entry rests on the exchange) while the buy side
/// keeps trading; flat prices lift the hold and the sell entry returns.
#[tokio::test]
async fn a_steady_climb_holds_the_sell_entry_until_the_market_goes_flat() {
    let mut run = Run::new().await;
    let mut held_bars = 0;
    // Two hours (+12.7 %): the 6 USD order stays above the pair minimum.
    for _ in 0..24 {
        run.climbing_bar().await;
        if *run.sell_trade() == TradeWork::Idle(IdleReason::TrendHold) {
            held_bars += 1;
            assert_eq!(run.rt.engine().entry_hold, EntryHold::Sells);
        }
    }
    assert_eq!(
        run.rt.engine().entry_hold,
        EntryHold::Sells,
        "the climb is measured"
    );
    let status = run.rt.status(run.t * 1000).await.unwrap();
    assert_eq!(status.healing.entry_hold, "sells", "shown in the status");
    assert!(
        held_bars > 0,
        "trade A never waited: {:?}",
        run.sell_trade()
    );
    assert!(
        !matches!(run.sell_trade(), TradeWork::Entry(_)),
        "no sell entry under the hold: {:?}",
        run.sell_trade()
    );
    let buy_side = &run.rt.engine().slots[&0].trade(TradeId::B);
    assert!(buy_side.cycle > 0, "the buy side traded on: {buy_side:?}");

    // Flat for two hours: no path left in the window, the hold lifts.
    run.flat_minutes(120).await;
    assert_eq!(run.rt.engine().entry_hold, EntryHold::None);
    match run.sell_trade() {
        TradeWork::Entry(e) => assert!(e.price > run.price, "a sell above the market: {e:?}"),
        other => panic!("the sell entry is quoted again, not {other:?}"),
    }
    let sells = run.paper.with_book(|b| {
        b.open_orders()
            .iter()
            .filter(|o| o.side == Side::Sell)
            .count()
    });
    assert!(sells >= 1);
}
