//! Self-healing through the real loop: the [`Runtime`] over the paper
//! exchange and the in-process ledger. A position is driven into band
//! stuck, the operator credits its slot, the loop reprices it partially and
//! then fully from that subsidy, and the new exit fills; the ledger's
//! journal and the slot's balance are checked to the last decimal.

#![allow(missing_docs)]

mod grid;
mod healing;

use ledger_service::Ledger;
use ledger_service::domain::EventDetails;
use ledger_service::ledger::JournalScope;
use ledger_service::store::SqliteStore;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use trader_service::exchange::paper::PaperExchange;
use trader_service::exchange::{Clock, SimClock};
use trader_service::pair::Candle;
use trader_service::runtime::Runtime;
use trader_service::runtime::ledger::LocalLedger;
use trader_service::runtime::store::{StoreLocation, TraderStore};

const BOT: &str = "heal-bot";
const T0: i64 = 1_700_000_000;

fn flat(t: i64, p: Decimal) -> Candle {
    Candle {
        time: t,
        open: p,
        high: p,
        low: p,
        close: p,
        volume: dec!(1000),
    }
}

struct Run {
    rt: Runtime<PaperExchange, LocalLedger<SqliteStore>>,
    paper: PaperExchange,
    lib: Ledger<SqliteStore>,
    t: i64,
}

impl Run {
    async fn new() -> Self {
        let paper = PaperExchange::new(grid::paper_config(60), SimClock::new(T0 * 1000));
        let lib = Ledger::in_memory().await.unwrap();
        let store = TraderStore::open(&StoreLocation::Memory).await.unwrap();
        let rt = Runtime::new(
            healing::config(BOT, 1, 1_800),
            paper.clone(),
            LocalLedger::new(lib.clone()),
            store,
        )
        .await
        .unwrap();
        Self {
            rt,
            paper,
            lib,
            t: T0,
        }
    }

    /// One-minute candles at a flat price, one loop each.
    async fn minutes(&mut self, n: usize, p: Decimal) {
        for _ in 0..n {
            self.candle(flat(self.t, p)).await;
        }
    }

    async fn candle(&mut self, c: Candle) {
        self.paper.step(&c);
        self.rt.step(self.paper.clock().now_ms()).await.unwrap();
        self.t = c.time + 60;
    }

    async fn credit(&self, position_id: u64, key: &str, amount: Decimal) {
        let ledger = LocalLedger::new(self.lib.clone());
        healing::credit(&ledger, position_id, key, amount, self.t).await;
    }

    async fn ledger_balance(&self) -> Decimal {
        self.lib
            .subsidy_balance(BOT, 0)
            .await
            .unwrap()
            .totals
            .balance()
    }

    fn exit_price(&self) -> Decimal {
        self.rt
            .engine()
            .open_exits()
            .next()
            .expect("an open exit")
            .price
    }
}

/// Proves: stuck -> credited -> partial reprice -> credited -> full reprice
/// to the fillable price -> filled; the journal shows created, the credits,
/// two `repriced` rows with their exact consumption and one `filled`, and
/// the ledger's balance equals the trader's view and credits minus debits.
#[tokio::test]
async fn a_stuck_position_is_repriced_from_subsidy_and_heals() {
    let mut r = Run::new().await;
    r.minutes(3, dec!(0.1)).await;
    // The market dips through the buy entry (0.0998) and stays below.
    r.candle(Candle {
        time: r.t,
        open: dec!(0.1),
        high: dec!(0.1),
        low: dec!(0.0990),
        close: dec!(0.0990),
        volume: dec!(1000),
    })
    .await;
    r.minutes(2, dec!(0.0990)).await;
    assert_eq!(r.exit_price(), dec!(0.100798), "entry 0.0998 + 1 %");
    let pos = r.lib.open_positions(BOT, Some(0)).await.unwrap();
    assert_eq!(pos.len(), 1);
    let id = pos[0].position_id;
    let volume = pos[0].entry.volume;

    // 25 minutes at 1.8 % away: stuck (effective age > 1800 s); no
    // subsidy, so nothing moves.
    r.minutes(25, dec!(0.0990)).await;
    assert_eq!(r.exit_price(), dec!(0.100798));
    let st = r.rt.reprice_stats().clone();
    assert!(
        st.skipped.get("insufficient_balance").copied().unwrap_or(0) > 0,
        "{st:?}"
    );

    // The operator credits 0.01: a partial move (need is 0.03).
    r.credit(id, "credit-1", dec!(0.01)).await;
    r.minutes(20, dec!(0.0990)).await;
    let partial = r.exit_price();
    assert!(
        partial < dec!(0.100798) && partial > dec!(0.100299),
        "{partial}"
    );
    assert!((dec!(0.100798) - partial) * volume <= dec!(0.01));

    // 0.05 more: the next move (after the 600 s cooldown) reaches fillable,
    // breakeven 0.0998 x 1.005 = 0.100299.
    r.credit(id, "credit-2", dec!(0.05)).await;
    r.minutes(30, dec!(0.0990)).await;
    assert_eq!(r.exit_price(), dec!(0.100299));
    let st = r.rt.reprice_stats().clone();
    assert_eq!(
        (st.subsidized_partial, st.subsidized_full),
        (1, 1),
        "{st:?}"
    );

    // The market comes back to the healed exit and it fills.
    r.candle(Candle {
        time: r.t,
        open: dec!(0.0990),
        high: dec!(0.1004),
        low: dec!(0.0990),
        close: dec!(0.1000),
        volume: dec!(1000),
    })
    .await;
    r.minutes(2, dec!(0.1)).await;
    r.rt.flush(r.paper.clock().now_ms()).await.unwrap();
    assert!(
        r.lib
            .open_positions(BOT, Some(0))
            .await
            .unwrap()
            .iter()
            .all(|p| p.position_id != id)
    );

    let journal = r
        .lib
        .journal(&JournalScope::Position(id), 0, 100)
        .await
        .unwrap()
        .entries;
    let kinds: Vec<&str> = journal
        .iter()
        .map(|e| match &e.details {
            EventDetails::Created(_) => "created",
            EventDetails::ChurnerProfit(_) => "churner_profit",
            EventDetails::Repriced(_) => "repriced",
            EventDetails::Filled(_) => "filled",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "created",
            "churner_profit",
            "repriced",
            "churner_profit",
            "repriced",
            "filled"
        ]
    );
    let consumed: Vec<Decimal> = journal
        .iter()
        .filter_map(|e| match &e.details {
            EventDetails::Repriced(d) => Some(d.subsidy_consumed),
            _ => None,
        })
        .collect();
    assert_eq!(consumed[0], (dec!(0.100798) - partial) * volume);
    assert_eq!(consumed[1], (partial - dec!(0.100299)) * volume);
    let balance = r.ledger_balance().await;
    assert_eq!(balance, dec!(0.06) - consumed[0] - consumed[1]);
    assert_eq!(
        r.rt.subsidy().balance(0),
        balance,
        "the trader's view is exact"
    );
    assert!(balance >= Decimal::ZERO);
}
