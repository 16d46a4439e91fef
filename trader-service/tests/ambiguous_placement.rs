//! Ambiguous placements and strays, end to end: the real runtime over the
//! real Kraken client against the in-process Kraken simulator, with the
//! in-process ledger.
//!
//! Every fault the simulator can inject into AddOrder (once and twice) must
//! leave exactly one order per client order id on the exchange, and every
//! execution of our orders accounted for in the trader and the ledger.
//! Stray copies of our orders (placed here directly in the simulator's
//! book, which is what a late Kraken acceptance amounts to) must be
//! cancelled when resting and adopted as positions when filled.

#![allow(missing_docs)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use ledger_service::{EventDetails, JournalScope, Ledger, SqliteStore};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use trader_service::engine::{EngineConfig, OrderId, OrderRole};
use trader_service::exchange::kraken::KrakenClient;
use trader_service::exchange::sim_server::{Fault, FaultRule, SimHandle};
use trader_service::exchange::{Clock, Exchange, OrderInfo, OrderStatus};
use trader_service::pair::{Candle, Side};
use trader_service::runtime::intents::StalePolicy;
use trader_service::runtime::ledger::LocalLedger;
use trader_service::runtime::store::{StoreLocation, TraderStore};
use trader_service::runtime::{Runtime, RuntimeConfig};

const BOT: &str = "amb-bot";

type Rt = Runtime<KrakenClient, LocalLedger<SqliteStore>>;

async fn runtime(sim: &SimHandle) -> (Rt, Ledger<SqliteStore>) {
    let lib = Ledger::in_memory().await.unwrap();
    let store = TraderStore::open(&StoreLocation::Memory).await.unwrap();
    (runtime_on(sim, &lib, store).await, lib)
}

async fn runtime_on(sim: &SimHandle, lib: &Ledger<SqliteStore>, store: TraderStore) -> Rt {
    let client = KrakenClient::new(client_config(sim, fast_tier())).unwrap();
    let spec = client.pair_info("XDGUSD").await.unwrap().spec;
    let mut e = EngineConfig::defaults(spec);
    e.slots = 1;
    e.order_size = trader_service::engine::OrderSize::Usd(dec!(10));
    let mut cfg = RuntimeConfig::new(BOT, e.validate().0);
    // One loop per simulated minute, about a quarter second apart: the
    // stale window spans three loops and a third, so a delayed acceptance
    // (0.6 s) lands inside it.
    cfg.placement_stale = StalePolicy {
        window_ms: 200_000,
        min_lookups: 2,
    };
    cfg.reconcile_every = 1;
    Runtime::new(cfg, client, LocalLedger::new(lib.clone()), store)
        .await
        .unwrap()
}

/// Minute `k` after the start, with this range around 0.1.
fn minute(k: i64, low: Decimal, high: Decimal, close: Decimal) -> Candle {
    candle(T0 + 60 * k, dec!(0.1), high, low, close)
}

/// A quiet minute at 0.1.
fn flat(k: i64) -> Candle {
    minute(k, dec!(0.1), dec!(0.1), dec!(0.1))
}

/// Flat; a wide minute through both entries early (so a copy placed too
/// soon would fill before a delayed acceptance lands, the production
/// defect); flat past the stale window; then a dip through the buy entry,
/// a spike through the sell entry and the long's exit, a dip through the
/// short's exit, then flat.
fn market() -> Vec<Candle> {
    let mut v: Vec<Candle> = (1..=2).map(flat).collect();
    v.push(minute(3, dec!(0.0990), dec!(0.1010), dec!(0.1)));
    v.extend((4..=6).map(flat));
    v.push(minute(7, dec!(0.0990), dec!(0.1), dec!(0.0999)));
    v.push(minute(8, dec!(0.0999), dec!(0.1030), dec!(0.1)));
    v.push(minute(9, dec!(0.0970), dec!(0.1), dec!(0.1)));
    v.extend((10..=12).map(flat));
    v
}

/// The simulator of these tests: a delayed acceptance lands after two
/// loops have looked for it.
fn sim_cfg() -> trader_service::exchange::sim_server::SimConfig {
    let mut c = sim_config(fast_tier());
    c.delayed_accept = Duration::from_millis(600);
    c
}

/// One loop per candle, giving a delayed acceptance time to land.
async fn drive(rt: &mut Rt, sim: &SimHandle, cs: &[Candle]) {
    for c in cs {
        sim.push_candle(c);
        tokio::time::sleep(Duration::from_millis(200)).await;
        rt.step(sim.exchange().clock().now_ms()).await.unwrap();
    }
    rt.flush(sim.exchange().clock().now_ms()).await.unwrap();
}

fn all_orders(sim: &SimHandle) -> Vec<OrderInfo> {
    sim.exchange().with_book(|b| {
        let mut v = b.open_orders();
        v.extend(b.closed_orders());
        v
    })
}

/// Exactly one order per client order id on the exchange; every entry
/// that executed is a ledger position under its txid; every exit that
/// filled is a closed position and a booked cycle.
async fn assert_accounted(rt: &Rt, sim: &SimHandle, lib: &Ledger<SqliteStore>, label: &str) {
    let orders = all_orders(sim);
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for o in &orders {
        *per_id
            .entry(o.cl_ord_id.clone().unwrap_or_default())
            .or_default() += 1;
    }
    assert!(
        per_id.values().all(|n| *n == 1),
        "{label}: one order per client id: {per_id:?}"
    );
    let open = lib.open_positions(BOT, None).await.unwrap();
    let closed = lib.position_history(BOT, None, 1000).await.unwrap();
    let keys: Vec<&str> = open
        .iter()
        .chain(&closed)
        .map(|p| p.open_key.as_str())
        .collect();
    let role = |o: &OrderInfo| {
        o.cl_ord_id
            .as_deref()
            .and_then(|c| c.parse::<OrderId>().ok())
            .map(|i| i.role)
    };
    let filled_entries: Vec<&OrderInfo> = orders
        .iter()
        .filter(|o| role(o) == Some(OrderRole::Entry) && o.vol_exec > Decimal::ZERO)
        .collect();
    assert!(
        filled_entries.len() >= 2,
        "{label}: the market fills both entries"
    );
    for o in &filled_entries {
        assert!(
            keys.contains(&o.txid.as_str()),
            "{label}: executed entry {} ({:?}) is a ledger position",
            o.txid,
            o.cl_ord_id
        );
    }
    assert_eq!(
        keys.len(),
        filled_entries.len(),
        "{label}: no other positions"
    );
    let filled_exits = orders
        .iter()
        .filter(|o| role(o) == Some(OrderRole::Exit) && o.status == OrderStatus::Closed)
        .count();
    assert!(filled_exits >= 2, "{label}: both exits fill in this market");
    assert_eq!(
        closed.len(),
        filled_exits,
        "{label}: one closed position per filled exit"
    );
    assert_eq!(
        rt.stats().completed_cycles as usize,
        filled_exits,
        "{label}: cycles booked"
    );
    assert_eq!(
        open.len(),
        rt.engine().open_exits().count(),
        "{label}: open positions are the engine's exits"
    );
    let executed = orders.iter().filter(|o| o.vol_exec > Decimal::ZERO).count();
    assert!(
        rt.stats().fills as usize >= executed,
        "{label}: every executed order reached the engine"
    );
}

/// Proves: for each AddOrder fault the simulator offers, once and twice in
/// a row, the trader never places an intent twice (found ones are
/// adopted, lost ones placed again only after the stale window) and every
/// execution is accounted for in the trader and the ledger.
#[tokio::test]
async fn every_addorder_fault_leaves_one_order_per_client_id() {
    let faults = [
        Fault::DelayedAccept,
        Fault::LostResponse,
        Fault::Timeout,
        Fault::ServiceUnavailable,
        Fault::Http5xxHtml,
    ];
    for fault in faults {
        for count in [1, 2] {
            let label = format!("{fault:?} x{count}");
            let sim = start_sim(sim_cfg()).await;
            let (mut rt, lib) = runtime(&sim).await;
            sim.inject(FaultRule {
                method: "AddOrder".into(),
                fault,
                count,
            })
            .unwrap();
            drive(&mut rt, &sim, &market()).await;
            assert_eq!(sim.pending_faults(), 0, "{label}: the faults were hit");
            assert_accounted(&rt, &sim, &lib, &label).await;
            assert_eq!(rt.stats().strays_adopted, 0, "{label}: no copy was made");
            sim.shutdown();
        }
    }
}

/// Proves: a resting order carrying one of our client ids that the trader
/// does not track is cancelled, and nothing else changes.
#[tokio::test]
async fn resting_stray_is_cancelled() {
    let sim = start_sim(sim_cfg()).await;
    let (mut rt, lib) = runtime(&sim).await;
    drive(&mut rt, &sim, &[flat(1), flat(2)]).await;
    let stray = sim
        .exchange()
        .with_book(|b| b.add_order(&limit(Side::Buy, dec!(0.09), dec!(100), 0, "0:B:1:en:77")))
        .unwrap();
    drive(&mut rt, &sim, &[flat(3)]).await;
    let o = sim.exchange().with_book(|b| b.order(&stray)).unwrap();
    assert_eq!(o.status, OrderStatus::Canceled, "the stray was cancelled");
    assert_eq!(rt.stats().strays_cancelled, 1);
    assert_eq!(rt.stats().strays_adopted, 0);
    assert!(lib.open_positions(BOT, None).await.unwrap().is_empty());
    // The trader's own orders are untouched.
    assert_eq!(sim.exchange().with_book(|b| b.open_count()), 2);
    sim.shutdown();
}

/// Proves: a stray that filled (a late copy of an entry) is adopted as a
/// position of its slot: journaled `created` with `migration: true`, given
/// an exit for exactly its volume, and closed `filled` by that exit.
#[tokio::test]
async fn filled_stray_is_adopted_journaled_and_exited() {
    let sim = start_sim(sim_cfg()).await;
    let (mut rt, lib) = runtime(&sim).await;
    drive(&mut rt, &sim, &[flat(1), flat(2)]).await;
    // A late copy of the long entry, filled by the next dip.
    let stray = sim
        .exchange()
        .with_book(|b| b.add_order(&limit(Side::Buy, dec!(0.0995), dec!(100), 0, "0:B:1:en:78")))
        .unwrap();
    sim.push_candle(&minute(3, dec!(0.0994), dec!(0.1), dec!(0.1)));
    rt.step(sim.exchange().clock().now_ms()).await.unwrap();
    drive(&mut rt, &sim, &[flat(4)]).await;
    assert_eq!(rt.stats().strays_adopted, 1);
    let key = format!("stray:{stray}");
    let open = lib.open_positions(BOT, None).await.unwrap();
    let p = open
        .iter()
        .find(|p| p.open_key == key)
        .expect("stray position");
    assert_eq!(p.entry.volume, dec!(100));
    assert_eq!(p.entry.price, dec!(0.0995));
    let exit = sim
        .exchange()
        .with_book(|b| b.order(&p.exit_txid))
        .expect("exit on the book");
    assert_eq!(
        (exit.side, exit.volume, exit.status),
        (Side::Sell, dec!(100), OrderStatus::Open)
    );
    let page = lib
        .journal(&JournalScope::Position(p.position_id), 0, 100)
        .await
        .unwrap();
    let migrations: Vec<bool> = page
        .entries
        .iter()
        .filter_map(|e| match &e.details {
            EventDetails::Created(c) => Some(c.migration),
            _ => None,
        })
        .collect();
    assert_eq!(migrations, [true], "created once, as a migration");
    // The exit fills: the position closes filled, with a profit.
    drive(
        &mut rt,
        &sim,
        &[minute(5, dec!(0.1), dec!(0.1030), dec!(0.1)), flat(6)],
    )
    .await;
    let closed = lib.position(p.position_id).await.unwrap();
    let outcome = closed.outcome.expect("stray position closed by its exit");
    assert!(outcome.net_profit.unwrap() > Decimal::ZERO, "{outcome:?}");
    sim.shutdown();
}

/// Client order ids of the simulator's orders, with how many carry each.
fn copies(sim: &SimHandle) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for o in all_orders(sim) {
        *m.entry(o.cl_ord_id.unwrap_or_default()).or_default() += 1;
    }
    m
}

/// Proves: an unresolved placement survives a restart with its rule: the
/// restarted trader only looks it up until the stale window has passed,
/// then places it exactly once; the other entry traded all along.
#[tokio::test]
async fn unresolved_placement_keeps_its_rule_across_a_restart() {
    let sim = start_sim(sim_cfg()).await;
    let dir = tempfile::tempdir().unwrap();
    let at = StoreLocation::File(dir.path().join("trader.db"));
    let lib = Ledger::in_memory().await.unwrap();
    let mut rt = runtime_on(&sim, &lib, TraderStore::open(&at).await.unwrap()).await;
    sim.inject(FaultRule {
        method: "AddOrder".into(),
        fault: Fault::Timeout,
        count: 1,
    })
    .unwrap();
    drive(&mut rt, &sim, &[flat(1)]).await;
    let first = copies(&sim);
    assert_eq!(
        first.len(),
        1,
        "the other entry is placed meanwhile: {first:?}"
    );
    let lost = ["0:A:1:en:1", "0:B:1:en:2"]
        .into_iter()
        .find(|id| !first.contains_key(*id))
        .expect("one entry timed out");
    drop(rt);
    let mut rt = runtime_on(&sim, &lib, TraderStore::open(&at).await.unwrap()).await;
    // Inside the window after restart: looked up, never placed.
    drive(&mut rt, &sim, &[flat(2), flat(3)]).await;
    assert!(
        !copies(&sim).contains_key(lost),
        "placed again inside the window"
    );
    // Past the window with two empty lookups: placed once.
    drive(&mut rt, &sim, &[flat(4), flat(5), flat(6)]).await;
    assert_eq!(
        copies(&sim).get(lost),
        Some(&1),
        "placed exactly once after the window"
    );
    sim.shutdown();
}
