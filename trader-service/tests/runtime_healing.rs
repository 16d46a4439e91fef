//! Self-healing through the real loop: the [`Runtime`] over the paper
//! exchange and the in-process ledger. A position is driven into band
//! stuck, the operator credits its slot, the loop reprices it partially and
//! then fully from that subsidy, and the new exit fills; the ledger's
//! journal and the slot's balance are checked to the last decimal.

#![allow(missing_docs)]

mod faulty;
mod grid;
mod healing;

use std::time::Duration;

use faulty::Faulty;
use ledger_service::{EventDetails, JournalScope, Ledger, SqliteStore};
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
    rt: Runtime<Faulty, LocalLedger<SqliteStore>>,
    exchange: Faulty,
    paper: PaperExchange,
    lib: Ledger<SqliteStore>,
    dir: tempfile::TempDir,
    t: i64,
}

impl Run {
    /// One slot on a (fault-free for now) paper exchange, the in-process
    /// ledger and a trader store file, so the trader can be restarted.
    async fn new() -> Self {
        let paper = PaperExchange::new(grid::paper_config(60), SimClock::new(T0 * 1000));
        let exchange = Faulty::new(paper.clone(), 0);
        let lib = Ledger::in_memory().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let rt = Self::runtime(&exchange, &lib, &dir).await;
        Self {
            rt,
            exchange,
            paper,
            lib,
            dir,
            t: T0,
        }
    }

    async fn runtime(
        exchange: &Faulty,
        lib: &Ledger<SqliteStore>,
        dir: &tempfile::TempDir,
    ) -> Runtime<Faulty, LocalLedger<SqliteStore>> {
        let store = TraderStore::open(&StoreLocation::File(dir.path().join("trader.db")))
            .await
            .unwrap();
        Runtime::new(
            healing::config(BOT, 1, 1_800),
            exchange.clone(),
            LocalLedger::new(lib.clone()),
            store,
        )
        .await
        .unwrap()
    }

    /// The process dies (the runtime is dropped mid-step) and starts again
    /// on the same store file.
    async fn restart(&mut self) {
        self.rt = Self::runtime(&self.exchange, &self.lib, &self.dir).await;
    }

    /// Runs loops until one hangs (more than 200 ms: the faulty exchange
    /// never answers), then kills it there. Returns whether it hung.
    async fn minutes_until_hang(&mut self, n: usize, p: Decimal) -> bool {
        for _ in 0..n {
            let c = flat(self.t, p);
            self.paper.step(&c);
            self.t = c.time + 60;
            let step = self.rt.step(self.paper.clock().now_ms());
            if tokio::time::timeout(Duration::from_millis(200), step)
                .await
                .is_err()
            {
                return true;
            }
        }
        false
    }

    /// The stuck position of the main scenario: entry 0.0998 filled, the
    /// market at 0.0990 for 30 minutes. Returns its ledger id and volume.
    async fn stuck_position(&mut self) -> (u64, Decimal) {
        self.minutes(3, dec!(0.1)).await;
        self.candle(Candle {
            time: self.t,
            open: dec!(0.1),
            high: dec!(0.1),
            low: dec!(0.0990),
            close: dec!(0.0990),
            volume: dec!(1000),
        })
        .await;
        self.minutes(27, dec!(0.0990)).await;
        let pos = self.lib.open_positions(BOT, Some(0)).await.unwrap();
        assert_eq!(pos.len(), 1);
        (pos[0].position_id, pos[0].entry.volume)
    }

    async fn kinds(&self, id: u64) -> Vec<&'static str> {
        self.lib
            .journal(&JournalScope::Position(id), 0, 100)
            .await
            .unwrap()
            .entries
            .iter()
            .map(|e| match &e.details {
                EventDetails::Created(_) => "created",
                EventDetails::ChurnerProfit(_) => "churner_profit",
                EventDetails::Repriced(_) => "repriced",
                EventDetails::Filled(_) => "filled",
                _ => "other",
            })
            .collect()
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

    /// The ledger's exit txid of open position `id` and the txid of the
    /// exit working it on the book: the ledger must name that exit.
    async fn exit_txids(&mut self, id: u64) -> (String, String) {
        self.rt.flush(self.paper.clock().now_ms()).await.unwrap();
        let ledger = self
            .lib
            .open_positions(BOT, Some(0))
            .await
            .unwrap()
            .into_iter()
            .find(|p| p.position_id == id)
            .expect("the position is open")
            .exit_txid;
        let live: Vec<String> = self
            .paper
            .with_book(|b| b.open_orders())
            .into_iter()
            .filter(|o| faulty::is_exit(o.cl_ord_id.as_deref().unwrap_or_default()))
            .map(|o| o.txid)
            .collect();
        assert_eq!(live.len(), 1, "one exit on the book: {live:?}");
        (ledger, live[0].clone())
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
    // Entry 0.0998 filled, then 27 minutes at 1.8 % away: stuck (effective
    // age > 1800 s); no subsidy, so nothing moves.
    let (id, volume) = r.stuck_position().await;
    assert_eq!(r.exit_price(), dec!(0.100798), "entry 0.0998 + 1 %");
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
    let (ledger, live) = r.exit_txids(id).await;
    assert_eq!(
        ledger, live,
        "the ledger names the repriced exit while it works"
    );

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
    let kinds = r.kinds(id).await;
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

/// Proves: a trader killed between the cancel of a repriced exit and its
/// re-placement re-places it once after the restart, at the new price, and
/// the journal shows one reprice debited once.
#[tokio::test]
async fn a_crash_between_cancel_and_place_reprices_once() {
    let mut r = Run::new().await;
    let (id, volume) = r.stuck_position().await;
    r.credit(id, "credit-1", dec!(0.01)).await;
    r.exchange.set(5);
    assert!(
        r.minutes_until_hang(30, dec!(0.0990)).await,
        "the reprice's re-placement must have been attempted"
    );
    assert!(
        r.paper
            .with_book(|b| b.open_orders())
            .iter()
            .all(|o| !faulty::is_exit(o.cl_ord_id.as_deref().unwrap_or_default())),
        "killed after the old exit was cancelled and before the new one rests"
    );
    r.exchange.set(0);
    r.restart().await;
    r.minutes(5, dec!(0.0990)).await;
    r.rt.flush(r.paper.clock().now_ms()).await.unwrap();
    let exits: Vec<_> = r
        .paper
        .with_book(|b| b.open_orders())
        .into_iter()
        .filter(|o| faulty::is_exit(o.cl_ord_id.as_deref().unwrap_or_default()))
        .collect();
    assert_eq!(exits.len(), 1, "exactly one exit on the book: {exits:?}");
    let x = r.rt.engine().open_exits().next().unwrap().clone();
    assert_eq!(exits[0].limit_price, Some(x.price));
    assert!(x.price < dec!(0.100798), "at the repriced price");
    assert_eq!(
        r.kinds(id).await,
        ["created", "churner_profit", "repriced"],
        "one reprice journaled"
    );
    let consumed = (dec!(0.100798) - x.price) * volume;
    let balance = r.ledger_balance().await;
    assert_eq!(balance, dec!(0.01) - consumed, "debited once");
    assert_eq!(r.rt.subsidy().balance(0), balance);
    let (ledger, live) = r.exit_txids(id).await;
    assert_eq!(
        ledger, live,
        "the ledger names the exit placed after the restart"
    );
}

/// Proves: `trader-service store-audit` reads a running trader's store
/// (read only, beside the trader's own connection) and shows what a
/// restart would resume with: the repriced exit under the txid that rests
/// on the book, the subsidy view, an outbox with nothing owed; a missing
/// store and a memory store are clear errors.
#[tokio::test]
async fn the_store_audit_shows_what_a_restart_resumes_with() {
    let mut r = Run::new().await;
    let (id, _) = r.stuck_position().await;
    r.credit(id, "credit-1", dec!(0.01)).await;
    r.minutes(20, dec!(0.0990)).await;
    let (_, live) = r.exit_txids(id).await;
    let audit = |store: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_trader-service"))
            .args(["store-audit", "--store", store])
            .output()
            .unwrap()
    };
    let path = r.dir.path().join("trader.db");
    let out = audit(&format!("sqlite://{}", path.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let exits: Vec<&serde_json::Value> = v["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["role"] == "Exit")
        .collect();
    assert_eq!(exits.len(), 1, "{v}");
    assert_eq!(exits[0]["txid"], live.as_str());
    assert_eq!(exits[0]["owner"], "grid");
    assert_eq!(exits[0]["price"], r.exit_price().to_string());
    assert_eq!(v["subsidy"]["0"], r.rt.subsidy().balance(0).to_string());
    assert!(
        r.rt.subsidy().balance(0) < dec!(0.01),
        "the reprice spent some"
    );
    assert_eq!(v["outbox_pending"], 0);
    assert_eq!(v["outbox_parked"], 0);
    assert_eq!(v["naked_churner_inventory"], "0");
    assert_eq!(v["open_positions"], 1);
    assert_eq!(v["adopted_exits"], serde_json::json!([]));

    let out = audit("/nonexistent/trader.db");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no trader store at /nonexistent/trader.db"),
        "{stderr}"
    );
    let out = audit("sqlite::memory:");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("memory store"));
}
