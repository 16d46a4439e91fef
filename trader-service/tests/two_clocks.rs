//! Regression test of the two-clock defect: the trader on the real Kraken
//! client against the simulator replaying 2022 candles at 3000x once
//! stamped fills partly with the simulator's clock and partly with candle
//! time, so the ledger refused closes (exit before entry), writes were
//! parked and the ledger kept more open positions than the trader. Here the
//! whole stack runs end to end (simulator, client, runtime loop, in-process
//! ledger) and the books must agree, on one clock: the exchange's.

#![allow(missing_docs)]

mod common;
mod grid;

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use common::{KEY, SECRET, fast_tier};
use ledger_service::Ledger;
use rust_decimal_macros::dec;
use trader_service::engine::{EngineConfig, OrderSize};
use trader_service::exchange::kraken::{KrakenClient, KrakenConfig};
use trader_service::exchange::market::CsvReplay;
use trader_service::exchange::sim_server::{self, SimConfig};
use trader_service::exchange::{Clock, Exchange, SystemClock};
use trader_service::runtime::ledger::LocalLedger;
use trader_service::runtime::store::{StoreLocation, TraderStore};
use trader_service::runtime::{Runtime, RuntimeConfig};

const BOT: &str = "two-clocks";
/// 2022-01-01T00:00:00Z.
const CSV_T0: i64 = 1_640_995_200;
const SPEED: u32 = 3000;
/// Real time the trader runs: 4 s at 3000x is 200 simulated minutes, well
/// inside the ledger's 24 h tolerance for times ahead of its own clock.
const RUN: Duration = Duration::from_secs(4);

/// ~2000 one-minute candles of a choppy market, dated 2022.
fn write_csv(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("market.csv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(f, "time,open,high,low,close,volume").unwrap();
    for (i, c) in grid::choppy_candles(2000, 7).iter().enumerate() {
        let t = CSV_T0 + i64::try_from(i).unwrap() * 60;
        writeln!(
            f,
            "{t},{},{},{},{},{}",
            c.open, c.high, c.low, c.close, c.volume
        )
        .unwrap();
    }
    f.flush().unwrap();
    path
}

fn runtime_config() -> RuntimeConfig {
    let mut engine = EngineConfig::defaults(grid::spec());
    engine.slots = 5;
    engine.order_size = OrderSize::Usd(dec!(10));
    engine.entry_pct = dec!(0.2);
    engine.profit_pct = dec!(0.5);
    let mut c = RuntimeConfig::new(BOT, engine.validate().0);
    c.call_budget = 30;
    c
}

/// Proves: with the exchange's clock running 3000x faster than ours, the
/// loop's "now" follows the exchange (not the local clock), no ledger write
/// is parked, the ledger's open positions are exactly the engine's open
/// exits, no position closes before it opened, and ages are simulated
/// minutes, not years.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trader_on_a_fast_csv_replay_keeps_one_clock() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write_csv(&dir);
    let mut cfg: SimConfig = common::sim_config(fast_tier());
    cfg.paper = grid::paper_config(60);
    cfg.speed = Some(SPEED);
    let market = CsvReplay::from_path(&csv).unwrap();
    let launched = SystemClock.now_ms();
    let sim = sim_server::start(cfg, Some(Box::new(market)), launched)
        .await
        .unwrap();
    let mut kcfg = KrakenConfig::new(&sim.url(), KEY, SECRET).unwrap();
    kcfg.tier = fast_tier();
    kcfg.limit_pct = 100;
    kcfg.request_timeout = Duration::from_secs(2);
    let client = KrakenClient::new(kcfg).unwrap();

    let ledger = Ledger::memory();
    let store = TraderStore::open(&StoreLocation::Memory).await.unwrap();
    let mut rt = Runtime::new(
        runtime_config(),
        client,
        LocalLedger::new(ledger.clone()),
        store,
    )
    .await
    .unwrap();
    let handle = rt.handle();
    rt.run_forever(
        &SystemClock,
        Duration::from_millis(25),
        tokio::time::sleep(RUN),
    )
    .await
    .unwrap();

    let exchange_now = rt.exchange().server_time().await.unwrap().unwrap();
    let local_now = SystemClock.now_ms();
    let published = handle.status();
    let loops = published.loops;
    assert!(loops >= 20, "the loop ran: {loops} loops");
    // The exchange's clock ran far ahead of ours (hours in 4 s) ...
    assert!(
        exchange_now >= local_now + 3_600_000,
        "the simulator runs at {SPEED}x: {exchange_now} vs local {local_now}"
    );
    // ... and the loop's "now" followed it: nearer the exchange's clock
    // than ours (it lags by what the exchange ran since the last loop
    // started, a simulated hour for a loop slowed to a second by a busy
    // machine; the local clock is hours behind), never ahead of it.
    let loop_at = published.last_loop_at_ms;
    assert!(
        loop_at - local_now >= (exchange_now - local_now) / 2 && loop_at <= exchange_now + 2_000,
        "last loop at {loop_at}, exchange clock {exchange_now}, local {local_now}"
    );

    let status = rt.status(exchange_now).await.unwrap();
    assert_eq!(
        status.outbox.parked, 0,
        "no ledger write parked: {:?}",
        status.parked_writes
    );
    assert_eq!(status.outbox.depth, 0, "every write delivered");

    let open = ledger.open_positions(BOT, None).await.unwrap();
    let closed = ledger.position_history(BOT, None, 1000).await.unwrap();
    assert!(
        !open.is_empty() || !closed.is_empty(),
        "the grid traded: no positions at all"
    );
    let engine_ids: BTreeSet<String> = rt
        .engine()
        .open_exits()
        .map(|x| x.position_id.clone().expect("every exit has a ledger id"))
        .collect();
    let ledger_ids: BTreeSet<String> = open.iter().map(|p| p.position_id.to_string()).collect();
    assert_eq!(
        open.len(),
        rt.engine().open_exits().count(),
        "one open ledger position per engine exit"
    );
    assert_eq!(ledger_ids, engine_ids, "the same open positions");
    for p in &closed {
        let out = p
            .outcome
            .as_ref()
            .expect("closed positions have an outcome");
        assert!(
            out.exit_time >= p.entry.time,
            "position {} closed at {} before its entry at {}",
            p.position_id,
            out.exit_time,
            p.entry.time
        );
    }
    // Entries are stamped on the exchange's clock, near the present.
    let start_s = launched / 1000 - 1;
    for p in open.iter().chain(&closed) {
        assert!(
            p.entry.time.timestamp() >= start_s,
            "position {} entered at {} (candle time?)",
            p.position_id,
            p.entry.time
        );
    }
    // Ages are simulated minutes or hours, never years.
    let max_age = i64::try_from(RUN.as_secs()).unwrap() * i64::from(SPEED) + 600;
    for pos in &status.positions {
        assert!(
            (0..=max_age).contains(&pos.age_sec),
            "slot {:?} age {} s",
            pos.slot_id,
            pos.age_sec
        );
    }
    eprintln!(
        "two clocks: {loops} loops, {} open, {} closed, exchange ahead by {} s, \
         ages {:?} s",
        open.len(),
        closed.len(),
        (exchange_now - local_now) / 1000,
        status
            .positions
            .iter()
            .map(|p| p.age_sec)
            .collect::<Vec<_>>()
    );
    sim.shutdown();
}
