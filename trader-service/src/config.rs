//! Trader configuration: command-line flags and environment variables (flags
//! win), with every default of SPEC §10 in `--help`.
//!
//! Two kinds of bad value are told apart on purpose:
//! - nonsense that cannot be traded safely (zero slots, a negative order size,
//!   an unparsable URL, an empty pair) is a [`ConfigError`]: the process says
//!   what is wrong and exits non-zero before touching the exchange;
//! - a tunable outside its safe range (a 2 s poll interval, a band threshold
//!   below 60 s) is clamped to the nearest safe value and reported as a
//!   [`ConfigWarning`], so a typo never takes a running bot down.
//!
//! Feature flags come only from here (and explicit operator overrides at run
//! time), never from persisted state.

use clap::{Args, ValueEnum};
use rust_decimal::Decimal;
use thiserror::Error;

pub use crate::engine::{BandThresholds, ConfigWarning, OrderSize};

/// A configuration value that cannot be used at all.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// A value is outside the range that makes sense (zero slots, negative sizes).
    #[error("{name}: {reason} (got {value})")]
    OutOfRange {
        /// Environment variable name of the setting.
        name: &'static str,
        /// The offending value as given.
        value: String,
        /// What a valid value looks like.
        reason: &'static str,
    },
    /// A URL setting does not parse as an http(s) URL.
    #[error("{name}: not an http(s) URL: {value:?}")]
    BadUrl {
        /// Environment variable name of the setting.
        name: &'static str,
        /// The offending value as given.
        value: String,
    },
}

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

/// Validated grid settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradingSettings {
    /// Exchange pair symbol.
    pub pair: String,
    /// Number of slots (>= 1).
    pub slots: u32,
    /// Entry order size.
    pub order_size: OrderSize,
    /// Grid spacing, percent (clamped by the engine to 0..=10).
    pub grid_spacing_pct: Decimal,
    /// Entry distance, percent (> 0).
    pub entry_pct: Decimal,
    /// Profit target, percent (> 0).
    pub profit_pct: Decimal,
    /// Refresh distance, percent (> 0).
    pub refresh_pct: Decimal,
    /// Loop interval in seconds (>= 5).
    pub poll_interval_sec: u64,
}

/// Validated self-healing settings.
#[derive(Debug, Clone, PartialEq)]
pub struct HealingSettings {
    /// Ledger journaling on (forced when churner or subsidy is on).
    pub ledger_enabled: bool,
    /// Local journal window.
    pub journal_local_limit: u32,
    /// Age band thresholds.
    pub bands: BandThresholds,
    /// Distance weight of the effective age.
    pub distance_weight: Decimal,
    /// Tighten and subsidized reprices on.
    pub subsidy_enabled: bool,
    /// Seconds between two subsidized reprices of a position.
    pub subsidy_reprice_interval_sec: u64,
    /// Band from which subsidized repricing runs.
    pub subsidy_auto_reprice_band: AutoRepriceBand,
    /// Automatic write-off by policy.
    pub subsidy_write_off_auto: bool,
    /// Below-breakeven healing.
    pub subsidy_allow_loss: bool,
    /// Churner on.
    pub churner_enabled: bool,
    /// Churner entry distance, percent.
    pub churner_entry_pct: Decimal,
    /// Churner profit target as configured; `None` means round-trip fee + 0.10.
    pub churner_profit_pct: Option<Decimal>,
    /// Churner order size.
    pub churner_order_size: OrderSize,
    /// Churner entry timeout, seconds.
    pub churner_timeout_sec: u64,
    /// Churner exit hand-over timeout, seconds.
    pub churner_exit_timeout_sec: u64,
    /// Open-order headroom a churner needs.
    pub churner_min_headroom: u32,
    /// Shared churner reserve in USD; `None`: CHURNER_MAX_ACTIVE orders.
    pub churner_reserve_usd: Option<Decimal>,
    /// Maximum active churners.
    pub churner_max_active: u32,
    /// Regime detector and profit-target windows (clamped).
    pub market: crate::healing::HealingConfig,
}

/// Rollout stage of SPEC §10, derived from the flags in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum, serde::Serialize)]
#[value(rename_all = "UPPER")]
pub enum RolloutStage {
    /// Ledger only.
    A,
    /// Ledger + tighten.
    B,
    /// + churner.
    C,
    /// + subsidized repricing from band stuck: the full flywheel.
    D,
    /// + automatic write-off by policy.
    E,
}

/// Collects clamp warnings while validating.
#[derive(Default)]
struct Clamp {
    warnings: Vec<ConfigWarning>,
}

impl Clamp {
    fn at_least_u64(&mut self, name: &'static str, value: u64, min: u64) -> u64 {
        if value < min {
            self.warnings.push(ConfigWarning {
                field: name,
                given: value.to_string(),
                used: min.to_string(),
                rule: "below the safe minimum",
            });
            min
        } else {
            value
        }
    }

    fn positive_dec(&mut self, name: &'static str, value: Decimal, default: Decimal) -> Decimal {
        if value <= Decimal::ZERO {
            self.warnings.push(ConfigWarning {
                field: name,
                given: value.to_string(),
                used: default.to_string(),
                rule: "must be > 0; default used",
            });
            default
        } else {
            value
        }
    }
}

fn positive(name: &'static str, value: Decimal) -> Result<Decimal, ConfigError> {
    if value <= Decimal::ZERO {
        return Err(ConfigError::OutOfRange {
            name,
            value: value.to_string(),
            reason: "must be greater than zero",
        });
    }
    Ok(value)
}

impl TradingArgs {
    /// Validates the grid settings; see the module docs for error vs clamp.
    pub fn resolve(&self) -> Result<(TradingSettings, Vec<ConfigWarning>), ConfigError> {
        let pair = self.pair.trim().to_ascii_uppercase();
        if pair.is_empty() || pair.len() > 32 || !pair.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ConfigError::OutOfRange {
                name: "PAIR",
                value: self.pair.clone(),
                reason: "an exchange symbol of 1-32 letters or digits, e.g. XDGUSD",
            });
        }
        if self.slots == 0 || self.slots > 1000 {
            return Err(ConfigError::OutOfRange {
                name: "SLOTS",
                value: self.slots.to_string(),
                reason: "between 1 and 1000",
            });
        }
        let mut clamp = Clamp::default();
        let settings = TradingSettings {
            pair,
            slots: self.slots,
            order_size: match self.order_size_usd {
                Some(usd) => OrderSize::Usd(positive("ORDER_SIZE_USD", usd)?),
                None => OrderSize::PairMinimum,
            },
            grid_spacing_pct: self.grid_spacing_pct,
            entry_pct: positive("ENTRY_PCT", self.entry_pct)?,
            profit_pct: positive("PROFIT_PCT", self.profit_pct)?,
            refresh_pct: positive("REFRESH_PCT", self.refresh_pct)?,
            poll_interval_sec: clamp.at_least_u64("POLL_INTERVAL_SEC", self.poll_interval_sec, 5),
        };
        Ok((settings, clamp.warnings))
    }
}

impl HealingArgs {
    /// Sets the flags of a SPEC §10 rollout stage: A ledger only; B +
    /// tighten (`SUBSIDY_ENABLED`, subsidized only for write-off); C +
    /// churner; D + subsidized repricing from band stuck (the full
    /// flywheel); E + automatic write-off. Other settings keep their values,
    /// and [`HealingSettings::stage`] derives the same stage back.
    pub fn apply_stage(&mut self, stage: RolloutStage) {
        self.subsidy_enabled = stage >= RolloutStage::B;
        self.churner_enabled = stage >= RolloutStage::C;
        // Before D subsidized repricing waits for write-off positions; D is
        // where it starts at band stuck (the full flywheel).
        self.subsidy_auto_reprice_band = if stage >= RolloutStage::D {
            AutoRepriceBand::Stuck
        } else {
            AutoRepriceBand::WriteOff
        };
        self.subsidy_write_off_auto = stage >= RolloutStage::E;
        if stage > RolloutStage::A {
            self.position_ledger_enabled = true;
        }
    }

    /// Validates the self-healing settings against the grid's order size.
    pub fn resolve(
        &self,
        trading: &TradingSettings,
    ) -> Result<(HealingSettings, Vec<ConfigWarning>), ConfigError> {
        let mut clamp = Clamp::default();
        for (name, value) in [
            (
                "CHURNER_RESERVE_USD",
                self.churner_reserve_usd.unwrap_or_default(),
            ),
            ("AGE_DISTANCE_WEIGHT", self.age_distance_weight),
        ] {
            if value < Decimal::ZERO {
                return Err(ConfigError::OutOfRange {
                    name,
                    value: value.to_string(),
                    reason: "must not be negative",
                });
            }
        }
        let churner_order_size = match self.churner_order_size_usd {
            Some(size) => OrderSize::Usd(positive("CHURNER_ORDER_SIZE_USD", size)?),
            None => trading.order_size,
        };
        if let Some(pct) = self.churner_profit_pct {
            positive("CHURNER_PROFIT_PCT", pct)?;
        }

        let bands = self.bands(&mut clamp);
        let churner_timeout_sec =
            clamp.at_least_u64("CHURNER_TIMEOUT_SEC", self.churner_timeout_sec, 60);
        let churner_exit_timeout_sec = clamp.at_least_u64(
            "CHURNER_EXIT_TIMEOUT_SEC",
            self.churner_exit_timeout_sec,
            churner_timeout_sec,
        );
        let churner_max_active = if self.churner_max_active == 0 {
            clamp.warnings.push(ConfigWarning {
                field: "CHURNER_MAX_ACTIVE",
                given: "0".into(),
                used: "1".into(),
                rule: "below the safe minimum",
            });
            1
        } else {
            self.churner_max_active
        };
        let journal_local_limit = if self.position_journal_local_limit < 50 {
            clamp.warnings.push(ConfigWarning {
                field: "POSITION_JOURNAL_LOCAL_LIMIT",
                given: self.position_journal_local_limit.to_string(),
                used: "50".into(),
                rule: "below the safe minimum",
            });
            50
        } else {
            self.position_journal_local_limit
        };
        let needs_ledger = self.churner_enabled || self.subsidy_enabled;
        if needs_ledger && !self.position_ledger_enabled {
            clamp.warnings.push(ConfigWarning {
                field: "POSITION_LEDGER_ENABLED",
                given: "false".into(),
                used: "true".into(),
                rule: "forced on: churner and subsidy need the ledger",
            });
        }
        let settings = HealingSettings {
            ledger_enabled: self.position_ledger_enabled || needs_ledger,
            journal_local_limit,
            bands,
            distance_weight: clamp.positive_dec(
                "AGE_DISTANCE_WEIGHT",
                self.age_distance_weight,
                Decimal::new(5, 0),
            ),
            subsidy_enabled: self.subsidy_enabled,
            subsidy_reprice_interval_sec: clamp.at_least_u64(
                "SUBSIDY_REPRICE_INTERVAL_SEC",
                self.subsidy_reprice_interval_sec,
                60,
            ),
            subsidy_auto_reprice_band: self.subsidy_auto_reprice_band,
            subsidy_write_off_auto: self.subsidy_write_off_auto,
            subsidy_allow_loss: self.subsidy_allow_loss,
            churner_enabled: self.churner_enabled,
            churner_entry_pct: clamp.positive_dec(
                "CHURNER_ENTRY_PCT",
                self.churner_entry_pct,
                Decimal::new(15, 2),
            ),
            churner_profit_pct: self.churner_profit_pct,
            churner_order_size,
            churner_timeout_sec,
            churner_exit_timeout_sec,
            churner_min_headroom: self.churner_min_headroom,
            churner_reserve_usd: self.churner_reserve_usd,
            churner_max_active,
            market: self.market_config(&mut clamp),
        };
        Ok((settings, clamp.warnings))
    }

    /// The regime and profit-target settings, clamped by their own rules.
    fn market_config(&self, clamp: &mut Clamp) -> crate::healing::HealingConfig {
        let mut c = crate::healing::HealingConfig::default();
        c.regime.window = self.regime_window;
        c.regime.min_returns = self.regime_min_returns;
        c.regime.refit_every = self.regime_refit_every;
        c.regime.confidence = self.regime_confidence;
        c.regime.dwell = self.regime_dwell;
        c.target.recent_minutes = self.target_recent_minutes;
        c.target.baseline_minutes = self.target_baseline_minutes;
        let (c, warnings) = c.validate();
        clamp.warnings.extend(warnings);
        c
    }

    /// Band thresholds clamped to >= 60 s and strictly increasing.
    fn bands(&self, clamp: &mut Clamp) -> BandThresholds {
        let fresh = clamp.at_least_u64("AGE_BAND_FRESH_SEC", self.age_band_fresh_sec, 60);
        let aging = clamp.at_least_u64("AGE_BAND_AGING_SEC", self.age_band_aging_sec, fresh + 1);
        let stale = clamp.at_least_u64("AGE_BAND_STALE_SEC", self.age_band_stale_sec, aging + 1);
        let stuck = clamp.at_least_u64("AGE_BAND_STUCK_SEC", self.age_band_stuck_sec, stale + 1);
        let sec = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        BandThresholds {
            fresh_sec: sec(fresh),
            aging_sec: sec(aging),
            stale_sec: sec(stale),
            stuck_sec: sec(stuck),
        }
    }
}

impl HealingSettings {
    /// The churner profit target in force: the configured value if it beats the
    /// round-trip fee, else round-trip fee + 0.10 (with a warning when a
    /// configured value had to be replaced).
    #[must_use]
    pub fn churner_profit_pct(
        &self,
        round_trip_fee_pct: Decimal,
    ) -> (Decimal, Option<ConfigWarning>) {
        let default = round_trip_fee_pct + Decimal::new(10, 2);
        match self.churner_profit_pct {
            None => (default, None),
            Some(pct) if pct > round_trip_fee_pct => (pct, None),
            Some(pct) => (
                default,
                Some(ConfigWarning {
                    field: "CHURNER_PROFIT_PCT",
                    given: pct.to_string(),
                    used: default.to_string(),
                    rule: "must exceed the round-trip fee",
                }),
            ),
        }
    }

    /// The churner's settings in force (SPEC §6, §10): off unless
    /// `CHURNER_ENABLED`; the profit target per [`Self::churner_profit_pct`].
    #[must_use]
    pub fn churner_config(&self, round_trip_fee_pct: Decimal) -> crate::healing::ChurnerConfig {
        let sec = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        crate::healing::ChurnerConfig {
            enabled: self.churner_enabled,
            entry_pct: self.churner_entry_pct,
            profit_pct: self.churner_profit_pct(round_trip_fee_pct).0,
            order_size_usd: match self.churner_order_size {
                OrderSize::Usd(usd) => Some(usd),
                OrderSize::PairMinimum => None,
            },
            entry_timeout_sec: sec(self.churner_timeout_sec),
            exit_timeout_sec: sec(self.churner_exit_timeout_sec),
            min_headroom: self.churner_min_headroom,
            reserve_usd: self.churner_reserve_usd,
            max_active: self.churner_max_active,
        }
    }

    /// What repricing may do under these settings: tighten and subsidized
    /// reprices both follow `SUBSIDY_ENABLED` (the SPEC §10 master switch);
    /// subsidized ones start at `SUBSIDY_AUTO_REPRICE_BAND`. A market price
    /// older than three loops (at least two minutes) is stale.
    #[must_use]
    pub fn reprice_config(
        &self,
        round_trip_fee_pct: Decimal,
        poll_interval_sec: u64,
    ) -> crate::healing::RepriceConfig {
        use crate::engine::AgeBand;
        crate::healing::RepriceConfig {
            tighten: self.subsidy_enabled,
            subsidized: self.subsidy_enabled,
            auto_band: match self.subsidy_auto_reprice_band {
                AutoRepriceBand::Stale => AgeBand::Stale,
                AutoRepriceBand::Stuck => AgeBand::Stuck,
                AutoRepriceBand::WriteOff => AgeBand::WriteOff,
            },
            interval_sec: i64::try_from(self.subsidy_reprice_interval_sec).unwrap_or(i64::MAX),
            allow_loss: self.subsidy_allow_loss,
            round_trip_fee_pct,
            market_stale_sec: i64::try_from(poll_interval_sec.saturating_mul(3).max(120))
                .unwrap_or(i64::MAX),
            write_off_auto: self.subsidy_enabled && self.subsidy_write_off_auto,
        }
    }

    /// The rollout stage the flags amount to.
    #[must_use]
    pub fn stage(&self) -> RolloutStage {
        let full_flywheel = self.subsidy_enabled
            && self.churner_enabled
            && self.subsidy_auto_reprice_band != AutoRepriceBand::WriteOff;
        match (self.subsidy_enabled, self.churner_enabled) {
            _ if full_flywheel && self.subsidy_write_off_auto => RolloutStage::E,
            _ if full_flywheel && self.subsidy_auto_reprice_band == AutoRepriceBand::Stuck => {
                RolloutStage::D
            }
            (_, true) => RolloutStage::C,
            (true, false) => RolloutStage::B,
            (false, false) => RolloutStage::A,
        }
    }

    /// One line per effective value, for the start-up log.
    #[must_use]
    pub fn profile(&self) -> Vec<String> {
        let b = &self.bands;
        vec![
            format!("self-healing stage {:?}", self.stage()),
            format!("POSITION_LEDGER_ENABLED={}", self.ledger_enabled),
            format!("POSITION_JOURNAL_LOCAL_LIMIT={}", self.journal_local_limit),
            format!(
                "AGE_BAND_FRESH/AGING/STALE/STUCK_SEC={}/{}/{}/{}",
                b.fresh_sec, b.aging_sec, b.stale_sec, b.stuck_sec
            ),
            format!("AGE_DISTANCE_WEIGHT={}", self.distance_weight),
            format!("SUBSIDY_ENABLED={}", self.subsidy_enabled),
            format!(
                "SUBSIDY_REPRICE_INTERVAL_SEC={}",
                self.subsidy_reprice_interval_sec
            ),
            format!(
                "SUBSIDY_AUTO_REPRICE_BAND={:?}",
                self.subsidy_auto_reprice_band
            ),
            format!("SUBSIDY_WRITE_OFF_AUTO={}", self.subsidy_write_off_auto),
            format!("SUBSIDY_ALLOW_LOSS={}", self.subsidy_allow_loss),
            format!("CHURNER_ENABLED={}", self.churner_enabled),
            format!("CHURNER_ENTRY_PCT={}", self.churner_entry_pct),
            format!(
                "CHURNER_PROFIT_PCT={}",
                self.churner_profit_pct
                    .map_or_else(|| "round-trip fee + 0.10".to_string(), |p| p.to_string())
            ),
            format!("CHURNER_ORDER_SIZE_USD={}", self.churner_order_size),
            format!(
                "CHURNER_TIMEOUT_SEC/CHURNER_EXIT_TIMEOUT_SEC={}/{}",
                self.churner_timeout_sec, self.churner_exit_timeout_sec
            ),
            format!("CHURNER_MIN_HEADROOM={}", self.churner_min_headroom),
            format!(
                "CHURNER_RESERVE_USD={}",
                self.churner_reserve_usd.map_or_else(
                    || "CHURNER_MAX_ACTIVE churner orders at the current price".to_string(),
                    |r| r.to_string()
                )
            ),
            format!("CHURNER_MAX_ACTIVE={}", self.churner_max_active),
            format!(
                "REGIME_WINDOW/MIN_RETURNS/REFIT_EVERY/CONFIDENCE/DWELL={}/{}/{}/{}/{}",
                self.market.regime.window,
                self.market.regime.min_returns,
                self.market.regime.refit_every,
                self.market.regime.confidence,
                self.market.regime.dwell
            ),
            format!(
                "TARGET_RECENT_MINUTES/TARGET_BASELINE_MINUTES={}/{}",
                self.market.target.recent_minutes, self.market.target.baseline_minutes
            ),
        ]
    }
}

/// Checks that a URL setting is an absolute http(s) URL with a host.
pub fn check_http_url(name: &'static str, value: &str) -> Result<(), ConfigError> {
    let bad = || ConfigError::BadUrl {
        name,
        value: value.to_string(),
    };
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .ok_or_else(bad)?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') || host.chars().any(char::is_whitespace) {
        return Err(bad());
    }
    Ok(())
}

impl TradingSettings {
    /// The pure engine's configuration for these settings on `pair` (whose
    /// precision and minimums come from the exchange), with the band
    /// thresholds and distance weight of `healing`. The engine clamps again
    /// (SPEC §10) and reports what it changed.
    #[must_use]
    pub fn engine_config(
        &self,
        healing: &HealingSettings,
        pair: crate::pair::PairSpec,
    ) -> (
        crate::engine::EngineConfig,
        Vec<crate::engine::ConfigWarning>,
    ) {
        let mut c = crate::engine::EngineConfig::defaults(pair);
        c.slots = self.slots;
        c.order_size = self.order_size;
        c.grid_spacing_pct = self.grid_spacing_pct;
        c.entry_pct = self.entry_pct;
        c.profit_pct = self.profit_pct;
        c.refresh_pct = self.refresh_pct;
        c.bands.thresholds = healing.bands;
        c.bands.distance_weight = healing.distance_weight;
        c.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use rust_decimal_macros::dec;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        trading: TradingArgs,
        #[command(flatten)]
        healing: HealingArgs,
    }

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("trader").chain(args.iter().copied())).unwrap()
    }

    /// Proves: nonsense regime and profit-target settings are clamped with a
    /// warning naming each (never a crash), and valid ones reach the
    /// healing settings unchanged.
    #[test]
    fn regime_and_target_settings_are_clamped_with_warnings() {
        let cli = parse(&[
            "--regime-window",
            "5",
            "--regime-confidence",
            "0.3",
            "--regime-dwell",
            "0",
            "--target-recent-minutes",
            "1",
        ]);
        let (t, _) = cli.trading.resolve().unwrap();
        let (h, w) = cli.healing.resolve(&t).unwrap();
        let fields: Vec<_> = w.iter().map(|w| w.field).collect();
        for f in [
            "REGIME_WINDOW",
            "REGIME_CONFIDENCE",
            "REGIME_DWELL",
            "TARGET_RECENT_MINUTES",
        ] {
            assert!(fields.contains(&f), "no warning for {f}: {fields:?}");
        }
        assert_eq!(h.market.regime.window, 48);
        assert!(h.market.regime.confidence >= 0.51);
        let cli = parse(&["--regime-window", "576", "--regime-dwell", "5"]);
        let (t, _) = cli.trading.resolve().unwrap();
        let (h, w) = cli.healing.resolve(&t).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!((h.market.regime.window, h.market.regime.dwell), (576, 5));
    }

    #[test]
    fn defaults_match_the_spec() {
        let cli = parse(&[]);
        let (t, tw) = cli.trading.resolve().unwrap();
        let (h, hw) = cli.healing.resolve(&t).unwrap();
        assert!(tw.is_empty() && hw.is_empty());
        assert_eq!(t.slots, 3);
        assert_eq!(t.order_size, OrderSize::PairMinimum);
        assert_eq!(t.grid_spacing_pct, dec!(0.5));
        assert_eq!(t.entry_pct, dec!(0.2));
        assert_eq!(t.poll_interval_sec, 30);
        assert_eq!(
            h.bands,
            BandThresholds {
                fresh_sec: 21_600,
                aging_sec: 86_400,
                stale_sec: 259_200,
                stuck_sec: 604_800
            }
        );
        assert_eq!(h.churner_order_size, OrderSize::PairMinimum);
        assert_eq!(h.stage(), RolloutStage::A);
        assert_eq!(h.churner_profit_pct(dec!(0.50)).0, dec!(0.60));
    }

    #[test]
    fn nonsense_is_an_error_naming_the_setting() {
        for (args, name) in [
            (&["--slots", "0"][..], "SLOTS"),
            (&["--order-size-usd=-1"][..], "ORDER_SIZE_USD"),
            (&["--pair", ""][..], "PAIR"),
            (&["--pair", "XDG/USD"][..], "PAIR"),
        ] {
            let err = parse(args).trading.resolve().unwrap_err();
            assert!(err.to_string().starts_with(name), "{err}");
        }
        let cli = parse(&["--churner-reserve-usd=-5"]);
        let t = cli.trading.resolve().unwrap().0;
        assert!(
            cli.healing
                .resolve(&t)
                .unwrap_err()
                .to_string()
                .starts_with("CHURNER_RESERVE_USD")
        );
    }

    #[test]
    fn tunables_are_clamped_with_warnings() {
        let cli = parse(&[
            "--poll-interval-sec",
            "1",
            "--age-band-fresh-sec",
            "10",
            "--age-band-aging-sec",
            "10",
            "--churner-timeout-sec",
            "5",
            "--churner-exit-timeout-sec",
            "30",
            "--position-journal-local-limit",
            "3",
        ]);
        let (t, tw) = cli.trading.resolve().unwrap();
        assert_eq!(t.poll_interval_sec, 5);
        assert_eq!(tw.len(), 1);
        let (h, hw) = cli.healing.resolve(&t).unwrap();
        assert_eq!(h.bands.fresh_sec, 60);
        assert_eq!(h.bands.aging_sec, 61);
        assert_eq!(h.churner_timeout_sec, 60);
        assert_eq!(h.churner_exit_timeout_sec, 60);
        assert_eq!(h.journal_local_limit, 50);
        assert_eq!(hw.len(), 5, "{hw:?}");
    }

    #[test]
    fn churner_or_subsidy_force_the_ledger_and_set_the_stage() {
        let cli = parse(&[
            "--position-ledger-enabled",
            "false",
            "--subsidy-enabled",
            "true",
            "--churner-enabled",
            "true",
        ]);
        let t = cli.trading.resolve().unwrap().0;
        let (h, w) = cli.healing.resolve(&t).unwrap();
        assert!(h.ledger_enabled);
        assert_eq!(w[0].field, "POSITION_LEDGER_ENABLED");
        assert_eq!(h.stage(), RolloutStage::D);
        let (pct, warn) = HealingSettings {
            churner_profit_pct: Some(dec!(0.3)),
            ..h
        }
        .churner_profit_pct(dec!(0.5));
        assert_eq!(pct, dec!(0.60));
        assert!(warn.is_some());
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_http_url("LEDGER_URL", "http://127.0.0.1:50051").is_ok());
        assert!(check_http_url("KRAKEN_API_URL", "https://api.kraken.com").is_ok());
        for bad in [
            "",
            "127.0.0.1:50051",
            "ftp://x",
            "http://",
            "http://:80",
            "http://a b",
        ] {
            assert!(check_http_url("LEDGER_URL", bad).is_err(), "{bad}");
        }
    }
}
