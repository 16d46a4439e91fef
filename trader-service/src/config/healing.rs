//! Validated self-healing settings and the configurations of the healing
//! components derived from them.

use rust_decimal::Decimal;

use super::validation::{Clamp, ConfigError, positive};
use super::{
    AutoRepriceBand, BandThresholds, ConfigWarning, HealingArgs, OrderSize, TradingSettings,
};

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
    /// Locked pairs are closed at market (`HEAL_RELEASE_LOCKED_PAIRS`).
    pub release_locked_pairs: bool,
    /// Re-entry wait after a close at market, doubled per losing life in a
    /// row (`HEAL_RELEASE_BACKOFF_SEC`).
    pub release_backoff_sec: i64,
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
    /// The churner's hit-rate gate.
    pub churner_hit_gate: crate::healing::HitGate,
    /// Regime detector and profit-target windows (clamped).
    pub market: crate::healing::HealingConfig,
}

impl HealingArgs {
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
            clamp.at_least("CHURNER_TIMEOUT_SEC", self.churner_timeout_sec, 60);
        let churner_exit_timeout_sec = clamp.at_least(
            "CHURNER_EXIT_TIMEOUT_SEC",
            self.churner_exit_timeout_sec,
            churner_timeout_sec,
        );
        let churner_max_active = clamp.at_least("CHURNER_MAX_ACTIVE", self.churner_max_active, 1);
        let churner_hit_gate = self.hit_gate(&mut clamp);
        let journal_local_limit = clamp.at_least(
            "POSITION_JOURNAL_LOCAL_LIMIT",
            self.position_journal_local_limit,
            50,
        );
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
            subsidy_reprice_interval_sec: clamp.at_least(
                "SUBSIDY_REPRICE_INTERVAL_SEC",
                self.subsidy_reprice_interval_sec,
                60,
            ),
            subsidy_auto_reprice_band: self.subsidy_auto_reprice_band,
            subsidy_write_off_auto: self.subsidy_write_off_auto,
            release_locked_pairs: self.heal_release_locked_pairs,
            release_backoff_sec: clamp.at_least(
                "HEAL_RELEASE_BACKOFF_SEC",
                self.heal_release_backoff_sec,
                0,
            ),
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
            churner_hit_gate,
            market: self.market_config(&mut clamp),
        };
        Ok((settings, clamp.warnings))
    }

    /// The churner's hit-rate gate: window 1..=100, minimum 0..=100 %,
    /// first cool-off at least ten minutes.
    fn hit_gate(&self, clamp: &mut Clamp) -> crate::healing::HitGate {
        let window = clamp.at_least("CHURNER_HIT_WINDOW", self.churner_hit_window, 1);
        let window = clamp.at_most("CHURNER_HIT_WINDOW", window, 100);
        crate::healing::HitGate {
            window,
            min_hit_pct: clamp.at_most("CHURNER_MIN_HIT_PCT", self.churner_min_hit_pct, 100),
            cooloff_sec: secs(clamp.at_least("CHURNER_COOLOFF_SEC", self.churner_cooloff_sec, 600)),
        }
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
        c.trend.window = self.heal_trend_window;
        // The hold comes with the release of locked pairs (stage D): it
        // keeps a released slot from stepping back into the move.
        if self.heal_release_locked_pairs {
            c.trend.hold_er = self.heal_trend_hold_er;
            c.trend.resume_er = self.heal_trend_resume_er;
        }
        let (c, warnings) = c.validate();
        clamp.warnings.extend(warnings);
        c
    }

    /// Band thresholds clamped to >= 60 s and strictly increasing.
    fn bands(&self, clamp: &mut Clamp) -> BandThresholds {
        let fresh = clamp.at_least("AGE_BAND_FRESH_SEC", self.age_band_fresh_sec, 60);
        let aging = clamp.at_least("AGE_BAND_AGING_SEC", self.age_band_aging_sec, fresh + 1);
        let stale = clamp.at_least("AGE_BAND_STALE_SEC", self.age_band_stale_sec, aging + 1);
        let stuck = clamp.at_least("AGE_BAND_STUCK_SEC", self.age_band_stuck_sec, stale + 1);
        BandThresholds {
            fresh_sec: secs(fresh),
            aging_sec: secs(aging),
            stale_sec: secs(stale),
            stuck_sec: secs(stuck),
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
        crate::healing::ChurnerConfig {
            enabled: self.churner_enabled,
            entry_pct: self.churner_entry_pct,
            profit_pct: self.churner_profit_pct(round_trip_fee_pct).0,
            order_size_usd: match self.churner_order_size {
                OrderSize::Usd(usd) => Some(usd),
                OrderSize::PairMinimum => None,
            },
            entry_timeout_sec: secs(self.churner_timeout_sec),
            exit_timeout_sec: secs(self.churner_exit_timeout_sec),
            min_headroom: self.churner_min_headroom,
            reserve_usd: self.churner_reserve_usd,
            max_active: self.churner_max_active,
            hit_gate: self.churner_hit_gate,
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
            interval_sec: secs(self.subsidy_reprice_interval_sec),
            allow_loss: self.subsidy_allow_loss,
            round_trip_fee_pct,
            market_stale_sec: secs(poll_interval_sec.saturating_mul(3).max(120)),
            write_off_auto: self.subsidy_enabled && self.subsidy_write_off_auto,
            release_locked_pairs: self.release_locked_pairs,
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
            format!(
                "HEAL_RELEASE_LOCKED_PAIRS={} (backoff {} s)",
                self.release_locked_pairs, self.release_backoff_sec
            ),
            format!(
                "HEAL_TREND_HOLD_ER={} (resume {}, window {} returns)",
                self.market.trend.hold_er, self.market.trend.resume_er, self.market.trend.window
            ),
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
                "CHURNER_HIT_WINDOW/CHURNER_MIN_HIT_PCT/CHURNER_COOLOFF_SEC={}/{}/{}",
                self.churner_hit_gate.window,
                self.churner_hit_gate.min_hit_pct,
                self.churner_hit_gate.cooloff_sec
            ),
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

/// Seconds as the healing components count them; a setting beyond `i64`
/// saturates rather than wrapping.
fn secs(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RolloutStage;
    use crate::config::fixture::parse;
    use rust_decimal_macros::dec;

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
}
