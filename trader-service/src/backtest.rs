//! The backtest: the **same** [`Runtime`] (engine, fill tracking, outbox,
//! ledger writes) driven over historical candles on the paper exchange in
//! simulated time, with the in-process ledger and the trader store both held
//! in memory (the same rules as their durable backends, with no I/O).
//!
//! Speed comes from skipping work that provably has no effect, never from a
//! second code path: a candle that filled nothing, with no pending work and
//! no engine reaction to its price (checked by running the engine's own
//! reducer on the tick), needs neither exchange polls, nor a commit, nor a
//! ledger call. Every candle that does something goes through
//! [`Runtime::step`] exactly as in production.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ledger_service::Ledger;
use rust_decimal::Decimal;
use serde::Serialize;
use thiserror::Error;

use crate::engine::{AgeBand, EngineConfig, TradeId, classify_all};
use crate::exchange::paper::{PaperConfig, PaperExchange};
use crate::exchange::{Clock, SimClock};
use crate::pair::Candle;
use crate::runtime::ledger::{LedgerApi, LocalLedger};
use crate::runtime::status::ALL_BANDS;
use crate::runtime::store::{StoreLocation, TraderStore};
use crate::runtime::{Runtime, RuntimeConfig, RuntimeError};

/// `trader-service backtest` options: the grid and healing settings of the
/// live trader (same flags and environment) plus the replay's account and
/// pair facts, so a backtest is configured exactly like production.
#[derive(Debug, Clone, clap::Args)]
pub struct BacktestArgs {
    /// CSV of candles `time,open,high,low,close,volume` (unix seconds).
    #[arg(long)]
    pub candles: std::path::PathBuf,
    /// Where to write the JSON report (stdout when absent).
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Starting quote balance of the paper account.
    #[arg(long, default_value = "1000")]
    pub initial_usd: Decimal,
    /// Starting base balance of the paper account.
    #[arg(long, default_value = "10000")]
    pub initial_base: Decimal,
    /// Private exchange calls per loop.
    #[arg(long, env = "PRIVATE_CALL_BUDGET", default_value_t = 30)]
    pub call_budget: u32,
    /// Price decimals of the pair.
    #[arg(long, default_value_t = 7)]
    pub price_decimals: u32,
    /// Volume decimals of the pair.
    #[arg(long, default_value_t = 8)]
    pub lot_decimals: u32,
    /// Minimum order volume (base).
    #[arg(long, default_value = "50")]
    pub ordermin: Decimal,
    /// Minimum order cost (quote).
    #[arg(long, default_value = "0.5")]
    pub costmin: Decimal,
    /// Maker fee, percent.
    #[arg(long, default_value = "0.25")]
    pub maker_fee: Decimal,
    /// Taker fee, percent.
    #[arg(long, default_value = "0.40")]
    pub taker_fee: Decimal,
    /// Hide the progress bar.
    #[arg(long, default_value_t = false)]
    pub no_progress: bool,
    /// Grid settings.
    #[command(flatten)]
    pub trading: crate::config::TradingArgs,
    /// Self-healing settings (bands and distance weight are used).
    #[command(flatten)]
    pub healing: crate::config::HealingArgs,
}

impl BacktestArgs {
    /// Validated run configuration plus every clamp warning (to log).
    ///
    /// # Errors
    /// [`crate::config::ConfigError`] for settings that cannot be clamped.
    pub fn resolve(&self) -> Result<(BacktestConfig, Vec<String>), crate::config::ConfigError> {
        let (trading, mut w1) = self.trading.resolve()?;
        let (healing, w2) = self.healing.resolve(&trading)?;
        w1.extend(w2);
        let spec = crate::pair::PairSpec {
            symbol: trading.pair.clone(),
            price_decimals: self.price_decimals,
            lot_decimals: self.lot_decimals,
            ordermin: self.ordermin,
            costmin: self.costmin,
        };
        let (engine, w3) = trading.engine_config(&healing, spec.clone());
        let mut warnings: Vec<String> = w1.iter().map(ToString::to_string).collect();
        warnings.extend(
            w3.iter()
                .map(|w| format!("{}={} clamped to {} ({})", w.field, w.given, w.used, w.rule)),
        );
        let paper = PaperConfig {
            pair: crate::exchange::PairInfo {
                spec,
                base: "BASE".into(),
                quote: "QUOTE".into(),
            },
            fees: crate::pair::FeeSchedule {
                maker_pct: self.maker_fee,
                taker_pct: self.taker_fee,
            },
            initial_base: self.initial_base,
            initial_quote: self.initial_usd,
            max_open_orders: 1000,
            fill_participation: None,
        };
        Ok((
            BacktestConfig {
                engine,
                paper,
                poll_interval_sec: i64::try_from(trading.poll_interval_sec).unwrap_or(i64::MAX),
                call_budget: self.call_budget,
                progress: !self.no_progress,
            },
            warnings,
        ))
    }
}

/// Everything a backtest run needs.
#[derive(Debug, Clone)]
pub struct BacktestConfig {
    /// Validated engine configuration.
    pub engine: EngineConfig,
    /// The paper account (pair, fees, initial balances).
    pub paper: PaperConfig,
    /// Seconds between two runtime loops in simulated time.
    pub poll_interval_sec: i64,
    /// Private-call budget per loop.
    pub call_budget: u32,
    /// Show a progress bar on stderr (hidden anyway when not a terminal).
    pub progress: bool,
}

/// Why a backtest failed.
#[derive(Debug, Error)]
pub enum BacktestError {
    /// No candles.
    #[error("no candles to replay")]
    Empty,
    /// The trader store failed.
    #[error(transparent)]
    Store(#[from] crate::runtime::store::StoreError),
    /// The runtime failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// One daily sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DailySample {
    /// Unix seconds.
    pub t: i64,
    /// Quote locked in buys plus base locked in sells valued at the market.
    pub capital_locked_usd: Decimal,
    /// Open positions per band.
    pub open_positions_by_band: BTreeMap<AgeBand, usize>,
}

/// The JSON report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacktestReport {
    /// Candles replayed.
    pub candles: u64,
    /// Executions fed to the engine.
    pub fills: u64,
    /// Round trips booked.
    pub completed_cycles: u64,
    /// Sum of booked net profit (realised).
    pub net_pnl_usd: Decimal,
    /// Fees of every execution.
    pub fees_usd: Decimal,
    /// Open positions per band at the end.
    pub open_positions_by_band: BTreeMap<AgeBand, usize>,
    /// Distinct positions seen in the stuck band or worse (hourly samples).
    pub positions_reached_stuck: usize,
    /// Longest time a position was open (hourly samples + end).
    pub longest_open_seconds: i64,
    /// Full runtime loops run (the rest were quiet candles).
    pub runtime_steps: u64,
    /// Orders placed.
    pub placements: u64,
    /// Orders cancelled (refreshes).
    pub cancels: u64,
    /// Times a trade waited because its entry missed the pair minimums
    /// (each wait counted once).
    pub entries_below_minimum: u64,
    /// Open positions in the ledger at the end (must equal the engine's).
    pub ledger_open_positions: usize,
    /// Ledger writes still queued at the end (0 unless the ledger refused).
    pub outbox_depth: u64,
    /// Daily samples.
    pub daily: Vec<DailySample>,
    /// Wall-clock duration (the only non-deterministic field).
    pub wall_seconds: f64,
}

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

fn band_counts<E: crate::exchange::Exchange, L: LedgerApi>(
    rt: &Runtime<E, L>,
    now: i64,
) -> BTreeMap<AgeBand, usize> {
    let mut m: BTreeMap<AgeBand, usize> = ALL_BANDS.iter().map(|b| (*b, 0)).collect();
    for p in classify_all(rt.engine(), now, &rt.engine_config().bands) {
        *m.entry(p.age.band).or_default() += 1;
    }
    m
}

/// Runs a backtest over `candles` (oldest first).
///
/// # Errors
/// [`BacktestError`] if there are no candles or a local component fails.
pub async fn run_backtest(
    candles: &[Candle],
    cfg: &BacktestConfig,
) -> Result<BacktestReport, BacktestError> {
    let started = Instant::now();
    let first = candles.first().ok_or(BacktestError::Empty)?;
    let clock = SimClock::new(first.time * 1000);
    let paper = PaperExchange::new(cfg.paper.clone(), clock.clone());
    let ledger = Ledger::memory();
    let store = TraderStore::open(&StoreLocation::Memory).await?;
    let mut rcfg = RuntimeConfig::new("backtest", cfg.engine.clone());
    rcfg.call_budget = cfg.call_budget;
    rcfg.reconcile_every = 0;
    // Nobody inspects delivered writes of a backtest: keep the queue small.
    rcfg.outbox.retain_delivered = 0;
    let mut rt = Runtime::new(rcfg, paper.clone(), LocalLedger::new(ledger), store).await?;

    let bar = if cfg.progress && std::io::stderr().is_terminal() {
        let b =
            ProgressBar::with_draw_target(Some(candles.len() as u64), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} candles {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };

    let poll_ms = cfg.poll_interval_sec.max(1) * 1000;
    let mut next_step_ms = i64::MIN;
    let mut fills_waiting = false;
    let mut steps = 0u64;
    let mut next_hour = first.time;
    let mut next_day = first.time;
    let mut stuck: BTreeSet<(u32, TradeId, u64)> = BTreeSet::new();
    let mut longest = 0i64;
    let mut daily = Vec::new();
    for (i, c) in candles.iter().enumerate() {
        fills_waiting |= !paper.step(c).is_empty();
        let now_ms = clock.now_ms();
        if now_ms >= next_step_ms {
            next_step_ms = now_ms + poll_ms;
            let full = fills_waiting || rt.has_work() || rt.quiet_tick(c.close, now_ms);
            if full {
                rt.step(now_ms).await?;
                steps += 1;
                fills_waiting = false;
            }
        }
        if c.time >= next_hour {
            next_hour = c.time + HOUR;
            for p in classify_all(rt.engine(), c.time, &rt.engine_config().bands) {
                longest = longest.max(p.age.age_sec);
                if p.age.band >= AgeBand::Stuck {
                    stuck.insert((p.slot, p.trade, p.cycle));
                }
            }
        }
        if c.time >= next_day {
            next_day = c.time + DAY;
            let acct = paper.with_book(|b| b.account());
            daily.push(DailySample {
                t: c.time,
                capital_locked_usd: (acct.quote_locked + acct.base_locked * c.close).round_dp(6),
                open_positions_by_band: band_counts(&rt, c.time),
            });
        }
        if i % 8192 == 0 {
            bar.set_position(i as u64);
        }
    }
    bar.finish_and_clear();
    let last = candles.last().map_or(first.time, |c| c.time);
    let end_ms = clock.now_ms();
    rt.step(end_ms).await?;
    rt.flush(end_ms).await?;
    for p in classify_all(rt.engine(), last, &rt.engine_config().bands) {
        longest = longest.max(p.age.age_sec);
        if p.age.band >= AgeBand::Stuck {
            stuck.insert((p.slot, p.trade, p.cycle));
        }
    }
    let status = rt.status(end_ms).await?;
    let ledger_open = rt.ledger_open_positions().await.unwrap_or(usize::MAX);
    let stats = rt.stats().clone();
    Ok(BacktestReport {
        candles: candles.len() as u64,
        fills: stats.fills,
        completed_cycles: stats.completed_cycles,
        net_pnl_usd: usd(stats.net_pnl),
        fees_usd: usd(stats.fees_paid),
        open_positions_by_band: band_counts(&rt, last),
        positions_reached_stuck: stuck.len(),
        longest_open_seconds: longest,
        runtime_steps: steps,
        placements: stats.placements,
        cancels: stats.cancels,
        entries_below_minimum: stats.entries_below_minimum,
        ledger_open_positions: ledger_open,
        outbox_depth: status.outbox.depth,
        daily,
        wall_seconds: started.elapsed().as_secs_f64(),
    })
}

/// Report money to 8 decimals: exact sums of per-fill figures can carry
/// 20 digits that mean nothing to a reader.
fn usd(amount: Decimal) -> Decimal {
    amount
        .round_dp_with_strategy(8, rust_decimal::RoundingStrategy::MidpointNearestEven)
        .normalize()
}
