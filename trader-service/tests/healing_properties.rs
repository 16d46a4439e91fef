//! Property test of self-healing through the real loop: random markets and
//! random operator credits, stage D repricing with bands of minutes. After
//! every loop: the trader's subsidy view is never negative, no exit is priced
//! past breakeven (loss-funded healing is off), and every filled entry is
//! worked by an exit the exchange holds (or one being placed or repriced).
//! With the churner on (regime forced to ranging in some cases), random
//! ledger outages and random stretches of exchange faults (exits refused
//! for lack of funds, cancels failing transiently, exits filled better than
//! their limit), after every loop: no filled churner inventory lacks a
//! working exit (one the exchange holds, or one being placed) or a closed
//! position, and the reserve's loans stay within their limits.
//! At the end the ledger's balances equal the trader's view and are never
//! negative, and every `repriced` row is on the tick grid.

#![allow(missing_docs)]

mod faulty;
mod grid;
mod healing;

use ledger_service::{EventDetails, JournalScope, Ledger};
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use trader_service::engine::{ExitPlacement, TradeId};
use trader_service::exchange::paper::PaperExchange;
use trader_service::exchange::{Clock, OrderStatus, SimClock};
use trader_service::healing::Regime;
use trader_service::healing::churner::{ChurnStage, ChurnerConfig};
use trader_service::runtime::Runtime;
use trader_service::runtime::ledger::LocalLedger;
use trader_service::runtime::store::{StoreLocation, TraderStore};

const BOT: &str = "prop-bot";

async fn run_case(
    seed: u64,
    credits: Vec<(usize, u32)>,
    ranging: bool,
    outages: Vec<(usize, usize)>,
    faults: Vec<(usize, usize, u8)>,
) -> Result<(), TestCaseError> {
    let cs = grid::choppy_candles(1_500, seed);
    let paper = PaperExchange::new(grid::paper_config(100), SimClock::new(cs[0].time * 1000));
    let lib = Ledger::memory();
    let local = LocalLedger::new(lib.clone());
    let store = TraderStore::open(&StoreLocation::Memory).await.unwrap();
    let flaky = healing::Flaky::new(LocalLedger::new(lib.clone()));
    let mut cfg = healing::config(BOT, 3, 1_200);
    cfg.open_order_limit = 100;
    let churner = ChurnerConfig {
        enabled: true,
        order_size_usd: Some(dec!(6)),
        reserve_usd: Some(dec!(12)),
        ..ChurnerConfig::off()
    };
    cfg.market.churner = churner.clone();
    let mode = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(0));
    let exchange = faulty::Faulty::sharing(paper.clone(), mode.clone());
    let mut rt = Runtime::new(cfg, exchange, flaky.clone(), store)
        .await
        .unwrap();
    if ranging {
        rt.override_regime(Regime::Ranging, cs[0].time + 30 * 86_400, cs[0].time)
            .unwrap();
    }
    let fee = dec!(0.5) / dec!(100);
    for (i, c) in cs.iter().enumerate() {
        flaky.set_down(outages.iter().any(|(a, n)| (*a..*a + *n).contains(&i)));
        let fault = faults
            .iter()
            .find(|(a, n, _)| (*a..*a + *n).contains(&i))
            .map_or(0, |f| f.2);
        mode.store(fault, std::sync::atomic::Ordering::SeqCst);
        paper.step(c);
        rt.step(paper.clock().now_ms()).await.unwrap();
        for (k, (at, cents)) in credits.iter().enumerate() {
            if *at == i {
                let open = lib.open_positions(BOT, None).await.unwrap();
                if let Some(p) = open.first() {
                    let at = c.time.max(p.entry.time.timestamp());
                    let amount = Decimal::from(*cents) / dec!(100);
                    healing::credit(
                        &local,
                        p.position_id,
                        &format!("credit-{i}-{k}"),
                        amount,
                        at,
                    )
                    .await;
                }
            }
        }
        for (slot, b) in &rt.subsidy().balance {
            prop_assert!(*b >= Decimal::ZERO, "slot {slot} view {b} at candle {i}");
        }
        let live: std::collections::BTreeSet<String> = paper
            .with_book(|b| b.open_orders())
            .into_iter()
            .map(|o| o.txid)
            .collect();
        // An exit re-placed after the market passed its price (refused
        // while the market moved, or a handed-over churner exit moved by
        // healing) executes as it is placed; the trader books the fill on
        // its next poll.
        let filled: std::collections::BTreeSet<String> = paper
            .with_book(|b| b.closed_orders())
            .into_iter()
            .filter(|o| o.status == OrderStatus::Closed)
            .map(|o| o.txid)
            .collect();
        let churn = rt.churn_book();
        prop_assert_eq!(churn.naked_inventory(), Decimal::ZERO, "candle {}", i);
        for s in churn.slots.values() {
            if let ChurnStage::Exit { order, .. } | ChurnStage::HandedOver { order, .. } = &s.stage
                && let Some(txid) = &order.txid
            {
                prop_assert!(
                    live.contains(txid) || filled.contains(txid),
                    "churner exit {} neither on the book nor filled at candle {}",
                    order.id,
                    i
                );
            }
        }
        prop_assert!(Some(churn.reserve.total()) <= churner.reserve_usd);
        prop_assert!(churn.reserve.lent.values().all(|l| *l <= dec!(6)));
        for x in rt.engine().open_exits() {
            let breakeven = match x.id.trade {
                TradeId::A => x.price <= x.entry.price * (Decimal::ONE - fee),
                TradeId::B => x.price >= x.entry.price * (Decimal::ONE + fee),
            };
            prop_assert!(
                breakeven,
                "exit {} at {} past breakeven of {}",
                x.id,
                x.price,
                x.entry.price
            );
            if let ExitPlacement::Live { txid } = &x.placement {
                prop_assert!(
                    live.contains(txid) || filled.contains(txid) || x.reprice.is_some(),
                    "exit {} live as {txid} but neither on the book nor filled at candle {i}",
                    x.id
                );
            }
        }
    }
    flaky.set_down(false);
    mode.store(0, std::sync::atomic::Ordering::SeqCst);
    rt.step(paper.clock().now_ms()).await.unwrap();
    rt.flush(paper.clock().now_ms()).await.unwrap();
    for slot in 0..3 {
        let ledger = lib
            .subsidy_balance(BOT, slot)
            .await
            .unwrap()
            .totals
            .balance();
        prop_assert!(ledger >= Decimal::ZERO);
        prop_assert_eq!(
            ledger,
            rt.subsidy().balance(slot),
            "slot {} view vs ledger",
            slot
        );
    }
    let all = lib.position_history(BOT, None, 1000).await.unwrap();
    let open = lib.open_positions(BOT, None).await.unwrap();
    for p in all.iter().chain(&open) {
        let page = lib
            .journal(&JournalScope::Position(p.position_id), 0, 1000)
            .await
            .unwrap();
        for e in page.entries {
            if let EventDetails::Repriced(d) = e.details {
                prop_assert_eq!(d.new_price.round_dp(7), d.new_price);
                prop_assert!(d.subsidy_consumed >= Decimal::ZERO);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn healing_keeps_its_invariants_on_random_markets(
        seed in 0u64..1_000,
        credits in proptest::collection::vec((50usize..1_400, 1u32..8), 0..12),
        ranging in proptest::bool::ANY,
        outages in proptest::collection::vec((50usize..1_400, 1usize..60), 0..3),
        // Modes of tests/faulty: 3 exits refused, 8 cancels busy, 4 exits
        // filled better than their limit.
        faults in proptest::collection::vec(
            (50usize..1_400, 1usize..120, proptest::sample::select(vec![3u8, 8, 4])),
            0..3,
        ),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run_case(seed, credits, ranging, outages, faults))?;
    }
}
