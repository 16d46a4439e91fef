//! The flags of `trader-service run` and their environment variables (flags
//! win), with every default of SPEC §10 in `--help`. Validation lives with
//! the settings each group resolves to ([`super::trading`],
//! [`super::healing`]).

use clap::{Args, ValueEnum};
use rust_decimal::Decimal;

/// Grid settings: what every slot trades and how often the loop runs.
#[derive(Debug, Clone, Args)]
pub struct TradingArgs {
    /// Exchange pair symbol; its precision and minimums are read from the exchange.
    #[arg(long, env = "PAIR", default_value = "XDGUSD")]
    pub pair: String,
    /// Number of independent grid slots.
    #[arg(long, env = "SLOTS", default_value_t = 3)]
    pub slots: u32,
    /// Order size of every entry, in USD [default: the pair minimum at the
    /// current price + 5 %, so the default always trades]. A size below the
    /// pair minimum is never upsized: the slot waits and says so.
    #[arg(long, env = "ORDER_SIZE_USD")]
    pub order_size_usd: Option<Decimal>,
    /// Grid spacing, percent: slot k quotes its entries k x spacing further
    /// from the market than slot 0 (0 = every slot at the same level).
    #[arg(long, env = "GRID_SPACING_PCT", default_value = "0.5")]
    pub grid_spacing_pct: Decimal,
    /// Entry distance from the market, percent.
    #[arg(long, env = "ENTRY_PCT", default_value = "0.2")]
    pub entry_pct: Decimal,
    /// Profit target of an exit, percent.
    #[arg(long, env = "PROFIT_PCT", default_value = "1.0")]
    pub profit_pct: Decimal,
    /// An entry further than this from the market (percent) is refreshed.
    #[arg(long, env = "REFRESH_PCT", default_value = "1.0")]
    pub refresh_pct: Decimal,
    /// Seconds between two loops (>= 5).
    #[arg(long, env = "POLL_INTERVAL_SEC", default_value_t = 30)]
    pub poll_interval_sec: u64,
}

/// The band at or above which subsidized repricing runs automatically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum AutoRepriceBand {
    /// Stale and worse.
    Stale,
    /// Stuck and worse (the default: the full flywheel).
    Stuck,
    /// Only write-off positions.
    WriteOff,
}

/// Self-healing settings (SPEC §10), each with its documented default.
#[derive(Debug, Clone, Args)]
pub struct HealingArgs {
    /// Journal positions in the ledger (forced on when churner or subsidy is enabled).
    #[arg(long, env = "POSITION_LEDGER_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub position_ledger_enabled: bool,
    /// Size of the trader's local journal window (>= 50).
    #[arg(long, env = "POSITION_JOURNAL_LOCAL_LIMIT", default_value_t = 500)]
    pub position_journal_local_limit: u32,
    /// Effective age (s) below which a position is fresh.
    #[arg(long, env = "AGE_BAND_FRESH_SEC", default_value_t = 21_600)]
    pub age_band_fresh_sec: u64,
    /// Effective age (s) below which a position is aging.
    #[arg(long, env = "AGE_BAND_AGING_SEC", default_value_t = 86_400)]
    pub age_band_aging_sec: u64,
    /// Effective age (s) below which a position is stale.
    #[arg(long, env = "AGE_BAND_STALE_SEC", default_value_t = 259_200)]
    pub age_band_stale_sec: u64,
    /// Effective age (s) below which a position is stuck; above it, write-off.
    #[arg(long, env = "AGE_BAND_STUCK_SEC", default_value_t = 604_800)]
    pub age_band_stuck_sec: u64,
    /// Distance weight of the effective age (> 0).
    #[arg(long, env = "AGE_DISTANCE_WEIGHT", default_value = "5.0")]
    pub age_distance_weight: Decimal,
    /// Master switch for tighten and subsidized reprices.
    #[arg(long, env = "SUBSIDY_ENABLED", default_value_t = false, action = clap::ArgAction::Set)]
    pub subsidy_enabled: bool,
    /// Minimum seconds between two subsidized reprices of one position (>= 60).
    #[arg(long, env = "SUBSIDY_REPRICE_INTERVAL_SEC", default_value_t = 3600)]
    pub subsidy_reprice_interval_sec: u64,
    /// Band from which subsidized repricing runs.
    #[arg(
        long,
        env = "SUBSIDY_AUTO_REPRICE_BAND",
        value_enum,
        default_value = "stuck"
    )]
    pub subsidy_auto_reprice_band: AutoRepriceBand,
    /// Close write-off positions automatically when holding costs more than healing.
    #[arg(long, env = "SUBSIDY_WRITE_OFF_AUTO", default_value_t = false, action = clap::ArgAction::Set)]
    pub subsidy_write_off_auto: bool,
    /// Close both exits of a slot at market when both are stuck (a locked
    /// pair: its loss no longer moves with the price), so the slot trades again.
    #[arg(long, env = "HEAL_RELEASE_LOCKED_PAIRS", default_value_t = false, action = clap::ArgAction::Set)]
    pub heal_release_locked_pairs: bool,
    /// Wait before a trade closed at market enters again after a life that
    /// made money; doubled per losing life in a row (seconds, >= 0; used while
    /// HEAL_RELEASE_LOCKED_PAIRS is on). 60 days: shorter waits stepped back
    /// into the move that locked the pair and lost money in every backtest.
    #[arg(long, env = "HEAL_RELEASE_BACKOFF_SEC", default_value_t = 5_184_000)]
    pub heal_release_backoff_sec: i64,
    /// Let subsidy pay a real loss to free an underwater position.
    #[arg(long, env = "SUBSIDY_ALLOW_LOSS", default_value_t = false, action = clap::ArgAction::Set)]
    pub subsidy_allow_loss: bool,
    /// Run churners on stuck slots while the market ranges (requires the ledger).
    #[arg(long, env = "CHURNER_ENABLED", default_value_t = false, action = clap::ArgAction::Set)]
    pub churner_enabled: bool,
    /// Churner entry distance from the market, percent (> 0).
    #[arg(long, env = "CHURNER_ENTRY_PCT", default_value = "0.15")]
    pub churner_entry_pct: Decimal,
    /// Churner profit target, percent (default: round-trip fee + 0.10).
    #[arg(long, env = "CHURNER_PROFIT_PCT")]
    pub churner_profit_pct: Option<Decimal>,
    /// Churner order size in USD (default: ORDER_SIZE_USD).
    #[arg(long, env = "CHURNER_ORDER_SIZE_USD")]
    pub churner_order_size_usd: Option<Decimal>,
    /// Seconds before an unfilled churner entry is re-placed (>= 60).
    #[arg(long, env = "CHURNER_TIMEOUT_SEC", default_value_t = 300)]
    pub churner_timeout_sec: u64,
    /// Seconds before an unfilled churner exit is handed over to the slot (>= entry timeout).
    #[arg(long, env = "CHURNER_EXIT_TIMEOUT_SEC", default_value_t = 600)]
    pub churner_exit_timeout_sec: u64,
    /// Open-order headroom a churner needs.
    #[arg(long, env = "CHURNER_MIN_HEADROOM", default_value_t = 10)]
    pub churner_min_headroom: u32,
    /// Shared USD reserve lent to churners of slots without idle capital
    /// (default: CHURNER_MAX_ACTIVE churner orders at the current price; a
    /// fixed 5 USD cannot fund one pair-minimum order above 0.095 USD/XDG).
    #[arg(long, env = "CHURNER_RESERVE_USD")]
    pub churner_reserve_usd: Option<Decimal>,
    /// Maximum simultaneously active churners (>= 1).
    #[arg(long, env = "CHURNER_MAX_ACTIVE", default_value_t = 5)]
    pub churner_max_active: u32,
    /// Churner round trips judged together by the hit-rate gate (1..=100).
    #[arg(long, env = "CHURNER_HIT_WINDOW", default_value_t = 10)]
    pub churner_hit_window: u32,
    /// Share of those round trips that must complete rather than be handed
    /// over, percent (0..=100; 0 turns the gate off); below it every
    /// churner cools off.
    #[arg(long, env = "CHURNER_MIN_HIT_PCT", default_value_t = 80)]
    pub churner_min_hit_pct: u32,
    /// First churner cool-off in seconds (>= 600), doubled for each
    /// cool-off in a row, at most 30 days.
    #[arg(long, env = "CHURNER_COOLOFF_SEC", default_value_t = 86_400)]
    pub churner_cooloff_sec: u64,
    /// Efficiency ratio of the last HEAL_TREND_WINDOW 5-minute returns at
    /// which entries against the move wait (0 = off, else 0.01..=1; used
    /// while HEAL_RELEASE_LOCKED_PAIRS is on).
    #[arg(long, env = "HEAL_TREND_HOLD_ER", default_value_t = 0.10)]
    pub heal_trend_hold_er: f64,
    /// A hold lasts while the ratio stays at or above this (0..=HEAL_TREND_HOLD_ER).
    #[arg(long, env = "HEAL_TREND_RESUME_ER", default_value_t = 0.07)]
    pub heal_trend_resume_er: f64,
    /// 5-minute returns the efficiency ratio is measured over (12..=REGIME_WINDOW).
    #[arg(long, env = "HEAL_TREND_WINDOW", default_value_t = 288)]
    pub heal_trend_window: usize,
    /// 5-minute returns the regime model is fitted on (48..=4032; 288 = a day).
    #[arg(long, env = "REGIME_WINDOW", default_value_t = 288)]
    pub regime_window: usize,
    /// Returns needed before the regime is known (24..=REGIME_WINDOW).
    #[arg(long, env = "REGIME_MIN_RETURNS", default_value_t = 96)]
    pub regime_min_returns: usize,
    /// New returns between two refits of the regime model (1..=REGIME_WINDOW).
    #[arg(long, env = "REGIME_REFIT_EVERY", default_value_t = 12)]
    pub regime_refit_every: usize,
    /// Posterior a regime label needs to count towards a change (0.51..=0.99).
    #[arg(long, env = "REGIME_CONFIDENCE", default_value_t = 0.6)]
    pub regime_confidence: f64,
    /// Consecutive qualifying returns before the regime label changes (1..=100).
    #[arg(long, env = "REGIME_DWELL", default_value_t = 3)]
    pub regime_dwell: u32,
    /// 1-minute moves averaged as "recent" for the profit target (5..=1440).
    #[arg(long, env = "TARGET_RECENT_MINUTES", default_value_t = 60)]
    pub target_recent_minutes: usize,
    /// 1-minute moves averaged as the long-run baseline (>= 2 x recent, <= 10080).
    #[arg(long, env = "TARGET_BASELINE_MINUTES", default_value_t = 1440)]
    pub target_baseline_minutes: usize,
}
