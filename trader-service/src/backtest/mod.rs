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

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ledger_service::Ledger;
use rust_decimal::Decimal;
use serde::Serialize;
use thiserror::Error;

mod tracker;

use crate::config::RolloutStage;
use crate::engine::{AgeBand, EngineConfig, classify_all};
use crate::exchange::paper::{PaperConfig, PaperExchange};
use crate::exchange::{Clock, SimClock};
use crate::healing::RepriceConfig;
use crate::pair::Candle;
use crate::runtime::ledger::{LedgerApi, LocalLedger};
use crate::runtime::status::ALL_BANDS;
use crate::runtime::store::{StoreLocation, TraderStore};
use crate::runtime::{Runtime, RuntimeConfig, RuntimeError};
use tracker::{HealTracker, Held, Key};

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
    /// Apply a SPEC §10 rollout profile (A ledger only = sticky; B +
    /// tighten; C + churner; D full flywheel; E + auto write-off) over the
    /// healing settings.
    #[arg(long, value_enum, ignore_case = true)]
    pub stage: Option<RolloutStage>,
    /// Run the same candles under each listed stage (e.g. `A,D`) and write
    /// one JSON object keyed by stage, with a side-by-side table on stderr.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        ignore_case = true,
        conflicts_with = "stage"
    )]
    pub compare: Option<Vec<RolloutStage>>,
    /// Grid settings.
    #[command(flatten)]
    pub trading: crate::config::TradingArgs,
    /// Self-healing settings (bands and distance weight are used).
    #[command(flatten)]
    pub healing: crate::config::HealingArgs,
}

impl BacktestArgs {
    /// Validated run configuration plus every clamp warning (to log), with
    /// `--stage` applied.
    ///
    /// # Errors
    /// [`crate::config::ConfigError`] for settings that cannot be clamped.
    pub fn resolve(&self) -> Result<(BacktestConfig, Vec<String>), crate::config::ConfigError> {
        self.resolve_stage(self.stage)
    }

    /// Like [`Self::resolve`], under the given stage (`None`: the healing
    /// flags as given).
    ///
    /// # Errors
    /// [`crate::config::ConfigError`] for settings that cannot be clamped.
    pub fn resolve_stage(
        &self,
        stage: Option<RolloutStage>,
    ) -> Result<(BacktestConfig, Vec<String>), crate::config::ConfigError> {
        let (trading, mut w1) = self.trading.resolve()?;
        let mut healing_args = self.healing.clone();
        if let Some(stage) = stage {
            healing_args.apply_stage(stage);
        }
        let (healing, w2) = healing_args.resolve(&trading)?;
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
        let fees = crate::pair::FeeSchedule {
            maker_pct: self.maker_fee,
            taker_pct: self.taker_fee,
        };
        let reprice = healing.reprice_config(fees.round_trip_pct(), trading.poll_interval_sec);
        let profile = healing.profile();
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
                stage: healing.stage(),
                profile,
                reprice,
                market: crate::healing::HealingConfig {
                    churner: healing.churner_config(fees.round_trip_pct()),
                    ..healing.market.clone()
                },
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
    /// The rollout stage the healing settings amount to.
    pub stage: RolloutStage,
    /// Every effective healing value, for the start-up log.
    pub profile: Vec<String>,
    /// What repricing may do.
    pub reprice: RepriceConfig,
    /// Regime detector and profit-target windows.
    pub market: crate::healing::HealingConfig,
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
    /// Rollout stage the run used.
    pub stage: RolloutStage,
    /// Candles replayed.
    pub candles: u64,
    /// Executions fed to the engine.
    pub fills: u64,
    /// Round trips booked.
    pub completed_cycles: u64,
    /// Mark-to-market result: booked cycles plus every open position valued
    /// at the last close, fees included (its entry fee paid, its exit fee at
    /// the maker rate), so healing that realizes a loss is compared fairly
    /// with holding it.
    pub net_pnl_usd: Decimal,
    /// Sum of booked net profit (realized only).
    pub realized_pnl_usd: Decimal,
    /// Sum of the losses of losing cycles.
    pub realized_loss_usd: Decimal,
    /// Fees of every execution.
    pub fees_usd: Decimal,
    /// Open positions per band at the end.
    pub open_positions_by_band: BTreeMap<AgeBand, usize>,
    /// Distinct positions seen in band stuck or worse (hourly samples).
    pub positions_reached_stuck: usize,
    /// Of those, positions whose exit filled afterwards.
    pub positions_healed: usize,
    /// `positions_healed / positions_reached_stuck` (1 when none got stuck).
    pub heal_rate: f64,
    /// Median time from first seen stuck to healed, seconds (hourly
    /// resolution); `null` when nothing healed.
    pub time_to_heal_p50_seconds: Option<i64>,
    /// 90th percentile of the same.
    pub time_to_heal_p90_seconds: Option<i64>,
    /// Positions that reached stuck and are still open at the end.
    pub still_stuck_at_end: usize,
    /// Sum over positions of hours in band stuck or write-off x entry cost.
    pub stuck_capital_hours: Decimal,
    /// The part of `stuck_capital_hours` held in churner round trips handed
    /// over to their slot: what the churner added to the grid's own.
    #[serde(default)]
    pub stuck_capital_hours_churner: Decimal,
    /// Subsidy credited (over-performance, churner, operator).
    pub subsidy_earned_usd: Decimal,
    /// Subsidy spent on reprices.
    pub subsidy_spent_usd: Decimal,
    /// Free tighten reprices.
    pub reprices_tighten: u64,
    /// Subsidized reprices (full and partial).
    pub reprices_subsidy: u64,
    /// Reprices below breakeven paid by subsidy.
    pub reprices_loss_funded: u64,
    /// Reprice skips per reason.
    pub reprice_skips: BTreeMap<String, u64>,
    /// Positions a policy closed at market (`SUBSIDY_WRITE_OFF_AUTO`, and
    /// the legs of released locked pairs).
    pub auto_write_offs: u64,
    /// Their realized loss, USD.
    pub auto_write_off_loss_usd: Decimal,
    /// Locked pairs released (`HEAL_RELEASE_LOCKED_PAIRS`); their two legs
    /// are counted in `auto_write_offs`.
    pub locked_pairs_released: u64,
    /// Quote locked in buys plus base locked in sells valued at the last
    /// close.
    pub capital_locked_usd_at_end: Decimal,
    /// Share of time in each regime (`unknown` until a detector is ready).
    pub regime_share: BTreeMap<String, f64>,
    /// Longest time a position was open (hourly samples + end).
    pub longest_open_seconds: i64,
    /// Full runtime loops run (the rest were quiet candles).
    pub runtime_steps: u64,
    /// Orders placed.
    pub placements: u64,
    /// Orders cancelled (refreshes and reprices).
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
    /// Churner round trips completed.
    pub churner_cycles: u64,
    /// Of those, with a negative net.
    pub churner_losing_cycles: u64,
    /// Net of every completed churner round trip, USD.
    pub churner_net_usd: Decimal,
    /// Churner round trips handed over to their slot (exit timeout).
    pub handed_over: u64,
    /// Most of the churner reserve lent at once, USD.
    pub reserve_peak_usd: Decimal,
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

/// Open positions valued at `price`: what closing each at that price would
/// add, with its entry fee (already paid) and an exit fee at `maker_pct`.
fn mark_to_market(
    engine: &crate::engine::EngineState,
    price: Decimal,
    maker_pct: Decimal,
) -> Decimal {
    engine
        .open_exits()
        .map(|x| {
            let vol = x.remaining();
            let gross = match x.id.trade {
                crate::engine::TradeId::A => (x.entry.price - price) * vol,
                crate::engine::TradeId::B => (price - x.entry.price) * vol,
            };
            // The executed part of the exit is already in its own fills.
            let done = match x.id.trade {
                crate::engine::TradeId::A => (x.entry.price * x.fills.volume) - x.fills.notional,
                crate::engine::TradeId::B => x.fills.notional - (x.entry.price * x.fills.volume),
            };
            gross + done
                - x.entry.fee
                - x.fills.fee
                - price * vol * maker_pct / Decimal::ONE_HUNDRED
        })
        .sum()
}

/// Fraction of the sampled time under each regime label; all `unknown`
/// when healing (and with it the detector) is off.
fn regime_share(seconds: &BTreeMap<crate::healing::Regime, i64>) -> BTreeMap<String, f64> {
    let total: i64 = seconds.values().sum();
    if total <= 0 {
        return BTreeMap::from([("unknown".to_owned(), 1.0)]);
    }
    seconds
        .iter()
        .map(|(r, s)| (r.as_str().to_owned(), *s as f64 / total as f64))
        .collect()
}

/// Every open position at `now` with its band and entry cost: the grid's
/// exits and the churner round trips handed over to their slots (held
/// like any position, so they count as stuck like any position).
fn held<E: crate::exchange::Exchange, L: LedgerApi>(
    rt: &Runtime<E, L>,
    now: i64,
    market: Decimal,
) -> Vec<Held> {
    let bands = &rt.engine_config().bands;
    let costs: BTreeMap<_, _> = rt
        .engine()
        .open_exits()
        .map(|x| ((x.id.slot, x.id.trade, x.id.cycle), x.entry.cost))
        .collect();
    let grid = classify_all(rt.engine(), now, bands)
        .into_iter()
        .map(|p| Held {
            cost: costs
                .get(&(p.slot, p.trade, p.cycle))
                .copied()
                .unwrap_or_default(),
            key: Key::Trade(p.slot, p.trade, p.cycle),
            band: p.age.band,
            age_sec: p.age.age_sec,
        });
    let churn = rt
        .churn_book()
        .handed_over(now, market, bands)
        .into_iter()
        .map(|h| Held {
            key: Key::Churn(h.position.open_key.clone()),
            band: h.age.band,
            age_sec: h.age.age_sec,
            cost: h.position.entry_cost,
        });
    grid.chain(churn).collect()
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
    rcfg.reprice = cfg.reprice.clone();
    rcfg.stage = cfg.stage;
    rcfg.market = cfg.market.clone();
    rcfg.open_order_limit = u32::try_from(cfg.paper.max_open_orders).unwrap_or(u32::MAX);
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
    let mut last_sample = first.time;
    let mut next_day = first.time;
    let mut tracker = HealTracker::default();
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
            let hours = Decimal::from(c.time - last_sample) / Decimal::from(HOUR);
            last_sample = c.time;
            tracker.sample(c.time, hours, &held(&rt, c.time, c.close));
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
    let last = candles.last().unwrap_or(first);
    let end_ms = clock.now_ms();
    rt.step(end_ms).await?;
    rt.flush(end_ms).await?;
    let hours = Decimal::from(last.time - last_sample) / Decimal::from(HOUR);
    tracker.sample(last.time, hours, &held(&rt, last.time, last.close));
    let status = rt.status(end_ms).await?;
    let ledger_open = rt.ledger_open_positions().await.unwrap_or(usize::MAX);
    let stats = rt.stats().clone();
    let rs = rt.reprice_stats().clone();
    let subsidy = rt.subsidy().clone();
    let acct = paper.with_book(|b| b.account());
    let churn = rt.churn_book().clone();
    let unrealized = mark_to_market(rt.engine(), last.close, cfg.paper.fees.maker_pct)
        + churn.unrealized(last.close, cfg.paper.fees.maker_pct);
    let reached = tracker.reached_stuck();
    Ok(BacktestReport {
        stage: cfg.stage,
        candles: candles.len() as u64,
        fills: stats.fills,
        completed_cycles: stats.completed_cycles,
        net_pnl_usd: usd(stats.net_pnl + unrealized),
        realized_pnl_usd: usd(stats.net_pnl),
        realized_loss_usd: usd(stats.realized_loss),
        fees_usd: usd(stats.fees_paid),
        open_positions_by_band: band_counts(&rt, last.time),
        positions_reached_stuck: reached,
        positions_healed: tracker.healed(),
        heal_rate: if reached == 0 {
            1.0
        } else {
            tracker.healed() as f64 / reached as f64
        },
        time_to_heal_p50_seconds: tracker.time_to_heal(0.5),
        time_to_heal_p90_seconds: tracker.time_to_heal(0.9),
        still_stuck_at_end: tracker.still_stuck(),
        stuck_capital_hours: usd(tracker.stuck_capital_hours()),
        stuck_capital_hours_churner: usd(tracker.stuck_capital_hours_churner()),
        subsidy_earned_usd: usd(subsidy.total_earned()),
        subsidy_spent_usd: usd(subsidy.spent),
        reprices_tighten: rs.tighten,
        reprices_subsidy: rs.subsidized_full + rs.subsidized_partial,
        reprices_loss_funded: rs.loss_funded,
        reprice_skips: rs.skipped.clone(),
        auto_write_offs: rt.write_offs().auto,
        locked_pairs_released: rt.write_offs().pairs_released,
        auto_write_off_loss_usd: usd(rt.write_offs().auto_loss_usd),
        capital_locked_usd_at_end: usd(acct.quote_locked + acct.base_locked * last.close),
        regime_share: regime_share(rt.regime_seconds()),
        longest_open_seconds: tracker.longest_open(),
        runtime_steps: steps,
        placements: stats.placements,
        cancels: stats.cancels,
        entries_below_minimum: stats.entries_below_minimum,
        ledger_open_positions: ledger_open,
        outbox_depth: status.outbox.depth,
        daily,
        churner_cycles: churn.stats.cycles,
        churner_losing_cycles: churn.stats.losing_cycles,
        churner_net_usd: usd(churn.stats.net_usd),
        handed_over: churn.stats.handed_over,
        reserve_peak_usd: usd(churn.reserve.peak),
        wall_seconds: started.elapsed().as_secs_f64(),
    })
}

/// A side-by-side table of the headline figures of several runs on the
/// same candles (for `--compare`), one column per stage.
#[must_use]
pub fn compare_table(reports: &[BacktestReport]) -> String {
    use std::fmt::Write as _;
    type Row = (&'static str, fn(&BacktestReport) -> String);
    let rows: [Row; 21] = [
        ("net_pnl_usd (mark-to-market)", |r| {
            r.net_pnl_usd.round_dp(4).to_string()
        }),
        ("realized_pnl_usd", |r| {
            r.realized_pnl_usd.round_dp(4).to_string()
        }),
        ("completed_cycles", |r| r.completed_cycles.to_string()),
        ("positions_reached_stuck", |r| {
            r.positions_reached_stuck.to_string()
        }),
        ("positions_healed", |r| r.positions_healed.to_string()),
        ("heal_rate", |r| format!("{:.2}", r.heal_rate)),
        ("time_to_heal_p50_h", |r| hours(r.time_to_heal_p50_seconds)),
        ("time_to_heal_p90_h", |r| hours(r.time_to_heal_p90_seconds)),
        ("still_stuck_at_end", |r| r.still_stuck_at_end.to_string()),
        ("stuck_capital_hours", |r| {
            r.stuck_capital_hours.round_dp(1).to_string()
        }),
        ("  of which churner", |r| {
            r.stuck_capital_hours_churner.round_dp(1).to_string()
        }),
        ("subsidy_earned/spent_usd", |r| {
            format!(
                "{}/{}",
                r.subsidy_earned_usd.round_dp(4),
                r.subsidy_spent_usd.round_dp(4)
            )
        }),
        ("reprices t/s/l", |r| {
            format!(
                "{}/{}/{}",
                r.reprices_tighten, r.reprices_subsidy, r.reprices_loss_funded
            )
        }),
        ("realized_loss_usd", |r| {
            r.realized_loss_usd.round_dp(4).to_string()
        }),
        ("auto_write_offs (loss_usd)", |r| {
            format!(
                "{} ({})",
                r.auto_write_offs,
                r.auto_write_off_loss_usd.round_dp(4)
            )
        }),
        ("locked_pairs_released", |r| {
            r.locked_pairs_released.to_string()
        }),
        ("churner_cycles (losing)", |r| {
            format!("{} ({})", r.churner_cycles, r.churner_losing_cycles)
        }),
        ("churner_net_usd", |r| {
            r.churner_net_usd.round_dp(4).to_string()
        }),
        ("handed_over", |r| r.handed_over.to_string()),
        ("reserve_peak_usd", |r| {
            r.reserve_peak_usd.round_dp(2).to_string()
        }),
        ("capital_locked_usd_at_end", |r| {
            r.capital_locked_usd_at_end.round_dp(2).to_string()
        }),
    ];
    let mut out = String::new();
    let _ = write!(out, "{:<30}", "stage");
    for r in reports {
        let _ = write!(out, " {:>16}", format!("{:?}", r.stage));
    }
    out.push('\n');
    for (name, f) in rows {
        let _ = write!(out, "{name:<30}");
        for r in reports {
            let _ = write!(out, " {:>16}", f(r));
        }
        out.push('\n');
    }
    out
}

fn hours(secs: Option<i64>) -> String {
    secs.map_or_else(|| "-".to_owned(), |s| format!("{:.1}", s as f64 / 3600.0))
}

/// Report money to 8 decimals: exact sums of per-fill figures can carry
/// 20 digits that mean nothing to a reader.
fn usd(amount: Decimal) -> Decimal {
    amount
        .round_dp_with_strategy(8, rust_decimal::RoundingStrategy::MidpointNearestEven)
        .normalize()
}
