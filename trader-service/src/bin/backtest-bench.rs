//! Backtest and loop benchmarks, measured honestly on the real code:
//!
//! 1. backtest throughput: `run_backtest` (same runtime, paper exchange,
//!    in-process ledger and trader store held in memory) over synthetic
//!    1-minute candles with 10 slots, in candles per second (candle
//!    generation excluded);
//! 2. loop CPU time: one full [`Runtime::step`] per candle with 100 slots
//!    (ticker, order polls, engine, placements, commit, outbox drain),
//!    reported as mean / p50 / p99 per step, twice in one run: with the
//!    production stores (the trader's SQLite file with `synchronous=FULL`,
//!    the ledger library on SQLite) and with the memory stores of a
//!    backtest, so the cost of durability is visible next to the engine's.
//!
//! Run in release mode: `cargo run --release -p trader-service --bin
//! backtest-bench [candles] [loop_steps]`.

use std::time::Instant;

use anyhow::{Context, Result};
use ledger_service::Ledger;
use rust_decimal::Decimal;
use trader_service::backtest::{BacktestConfig, run_backtest};
use trader_service::engine::EngineConfig;
use trader_service::exchange::market::{MarketSource, SyntheticConfig, SyntheticMarket};
use trader_service::exchange::paper::{PaperConfig, PaperExchange};
use trader_service::exchange::{Clock, PairInfo, SimClock};
use trader_service::pair::{Candle, FeeSchedule, PairSpec};
use trader_service::runtime::ledger::LocalLedger;
use trader_service::runtime::store::{StoreLocation, TraderStore};
use trader_service::runtime::{Runtime, RuntimeConfig};

fn spec() -> PairSpec {
    PairSpec {
        symbol: "XDGUSD".into(),
        price_decimals: 7,
        lot_decimals: 8,
        ordermin: Decimal::from(50),
        costmin: Decimal::new(5, 1),
    }
}

fn paper() -> PaperConfig {
    PaperConfig {
        pair: PairInfo {
            spec: spec(),
            base: "XXDG".into(),
            quote: "ZUSD".into(),
        },
        fees: FeeSchedule {
            maker_pct: Decimal::new(25, 2),
            taker_pct: Decimal::new(40, 2),
        },
        initial_base: Decimal::from(10_000_000),
        initial_quote: Decimal::from(1_000_000),
        max_open_orders: 1000,
        fill_participation: None,
    }
}

fn engine(slots: u32) -> EngineConfig {
    let mut c = EngineConfig::defaults(spec());
    c.slots = slots;
    c.order_size = trader_service::engine::OrderSize::Usd(Decimal::from(6));
    c.validate().0
}

/// The backtest configuration of a rollout stage, through the CLI's own
/// flags: 10 slots of 6 USD on the bench's paper account.
fn stage_config(stage: &str) -> Result<BacktestConfig> {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: trader_service::backtest::BacktestArgs,
    }
    let cli = <Cli as clap::Parser>::try_parse_from([
        "bench",
        "--candles",
        "-",
        "--no-progress",
        "--slots",
        "10",
        "--order-size-usd",
        "6",
        "--stage",
        stage,
    ])?;
    let (mut cfg, _) = cli.args.resolve()?;
    cfg.paper = paper();
    // The engine configuration stays the one the stage resolved (10 slots of
    // 6 USD on the same pair facts as `spec()`): it carries the stage's
    // healing settings, such as the release wait, which a hand-built one
    // would silently drop.
    anyhow::ensure!(
        cfg.engine.pair == spec(),
        "the stage resolved other pair facts than the bench uses"
    );
    Ok(cfg)
}

fn candles(n: usize) -> Result<Vec<Candle>> {
    let mut m = SyntheticMarket::new(SyntheticConfig::default());
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(m.next_candle()?.context("synthetic market ended")?);
    }
    Ok(out)
}

/// CPU time of the whole process (every thread: sqlx runs SQLite on its
/// own worker thread) in nanoseconds, from `/proc/self/stat` (Linux, 100
/// ticks per second), so figures stay honest on a loaded machine where wall
/// time includes waiting for a core.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the `(comm)`; utime and stime are fields 14 and 15.
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) * 10_000_000)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(2_000_000), |a| a.parse())?;
    let loop_steps: usize = args.next().map_or(Ok(2_000), |a| a.parse())?;

    let cs = candles(n)?;
    // Stages A (sticky), B (tighten) and D (full repricing) side by side on
    // the same candles, configured through the backtest's own flags so the
    // stage rule is the one `trader-service backtest --stage` applies.
    for stage in ["A", "B", "D"] {
        let cfg = stage_config(stage)?;
        let t = Instant::now();
        let cpu0 = cpu_ns();
        let r = run_backtest(&cs, &cfg).await?;
        let secs = t.elapsed().as_secs_f64();
        let cpu = cpu0.zip(cpu_ns()).map(|(a, b)| (b - a) as f64 / 1e9);
        println!(
            "backtest stage {stage}, 10 slots: {} candles in {secs:.3}s wall = {:.0} candles/s; \
             CPU {} ({} full runtime steps, {} fills, {} cycles, {} reprices, {} churner round trips, \
             net {} USD, ledger open {})",
            r.candles,
            r.candles as f64 / secs,
            cpu.map_or("n/a".to_owned(), |c| format!(
                "{c:.3}s = {:.0} candles/s",
                r.candles as f64 / c
            )),
            r.runtime_steps,
            r.fills,
            r.completed_cycles,
            r.reprices_tighten + r.reprices_subsidy + r.reprices_loss_funded,
            r.churner_cycles,
            r.net_pnl_usd,
            r.ledger_open_positions
        );
    }

    // Loop CPU time with 100 slots: a full step on every candle.
    let cs = candles(loop_steps)?;
    let dir = std::env::temp_dir().join(format!("healgrid-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file_store = TraderStore::open(&StoreLocation::File(dir.join("trader.db"))).await?;
    let sqlite_ledger = LocalLedger::new(Ledger::in_memory().await?);
    let durable = loop_bench(
        "SQLite file store + SQLite ledger",
        &cs,
        file_store,
        sqlite_ledger,
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    durable?;
    let memory_store = TraderStore::open(&StoreLocation::Memory).await?;
    let memory_ledger = LocalLedger::new(Ledger::memory());
    loop_bench("memory stores", &cs, memory_store, memory_ledger).await?;
    Ok(())
}

/// One full step per candle with 100 slots over the given stores.
async fn loop_bench<S: ledger_service::Store>(
    label: &str,
    cs: &[Candle],
    store: TraderStore,
    ledger: LocalLedger<S>,
) -> Result<()> {
    let clock = SimClock::new(cs[0].time * 1000);
    let ex = PaperExchange::new(paper(), clock.clone());
    let mut rcfg = RuntimeConfig::new("bench", engine(100));
    rcfg.call_budget = 250;
    let mut rt = Runtime::new(rcfg, ex.clone(), ledger, store).await?;
    let mut times = Vec::with_capacity(cs.len());
    let cpu0 = cpu_ns();
    for c in cs {
        ex.step(c);
        let t = Instant::now();
        rt.step(clock.now_ms()).await?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let cpu_per_step = cpu0
        .zip(cpu_ns())
        .map(|(a, b)| (b - a) as f64 / 1e3 / times.len() as f64);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
    println!(
        "loop 100 slots, {label}: {} steps, CPU {} us/step (incl. paper step); wall mean \
         {mean:.0} us, p50 {:.0} us, p99 {:.0} us, max {:.0} us ({} fills, {} placements)",
        times.len(),
        cpu_per_step.map_or("n/a".to_owned(), |c| format!("{c:.0}")),
        pct(0.5),
        pct(0.99),
        pct(1.0),
        rt.stats().fills,
        rt.stats().placements
    );
    Ok(())
}
