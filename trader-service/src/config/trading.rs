//! Validated grid settings and the engine configuration they amount to.

use super::validation::{Clamp, ConfigError, positive};
use super::{ConfigWarning, HealingSettings, OrderSize, TradingArgs};
use rust_decimal::Decimal;

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
            poll_interval_sec: clamp.at_least("POLL_INTERVAL_SEC", self.poll_interval_sec, 5),
        };
        Ok((settings, clamp.warnings))
    }
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
        // The release wait only governs while releasing is on: at the other
        // stages a close at market keeps the ordinary loss cooldown.
        c.release_backoff_sec = if healing.release_locked_pairs {
            healing.release_backoff_sec
        } else {
            0
        };
        c.validate()
    }
}
