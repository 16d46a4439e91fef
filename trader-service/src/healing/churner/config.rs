//! The churner's tunables (SPEC §10 `CHURNER_*`), already clamped by the
//! configuration layer; built from it by
//! [`crate::config::HealingSettings::churner_config`].

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// What the churner may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChurnerConfig {
    /// `CHURNER_ENABLED`.
    pub enabled: bool,
    /// `CHURNER_ENTRY_PCT`: entry distance from the market, percent.
    pub entry_pct: Decimal,
    /// `CHURNER_PROFIT_PCT`: exit distance from the entry fill, percent
    /// (above the round-trip fee).
    pub profit_pct: Decimal,
    /// `CHURNER_ORDER_SIZE_USD`; `None`: the pair minimum plus a margin.
    pub order_size_usd: Option<Decimal>,
    /// `CHURNER_TIMEOUT_SEC`: an unfilled entry is re-entered after this.
    pub entry_timeout_sec: i64,
    /// `CHURNER_EXIT_TIMEOUT_SEC`: an unfilled exit is handed over after
    /// this (counted from the entry fill).
    pub exit_timeout_sec: i64,
    /// `CHURNER_MIN_HEADROOM`: open-order headroom a churner needs.
    pub min_headroom: u32,
    /// `CHURNER_RESERVE_USD`: the shared reserve; `None`: enough for
    /// `CHURNER_MAX_ACTIVE` base orders at the current price (see
    /// [`ChurnerConfig::reserve_limit`]).
    pub reserve_usd: Option<Decimal>,
    /// `CHURNER_MAX_ACTIVE`.
    pub max_active: u32,
    /// `CHURNER_HIT_WINDOW`, `CHURNER_MIN_HIT_PCT`, `CHURNER_COOLOFF_SEC`.
    pub hit_gate: super::HitGate,
}

impl ChurnerConfig {
    /// The churner off (stages A and B), SPEC defaults otherwise.
    #[must_use]
    pub fn off() -> Self {
        Self {
            enabled: false,
            entry_pct: Decimal::new(15, 2),
            profit_pct: Decimal::new(60, 2),
            order_size_usd: None,
            entry_timeout_sec: 300,
            exit_timeout_sec: 600,
            min_headroom: 10,
            reserve_usd: None,
            max_active: 5,
            hit_gate: super::HitGate::DEFAULT,
        }
    }
}

impl ChurnerConfig {
    /// The reserve in force at `price`: the configured amount, else
    /// `CHURNER_MAX_ACTIVE` base churner orders (so the default can always
    /// fund the churners it allows, whatever the pair's price).
    #[must_use]
    pub fn reserve_limit(&self, pair: &crate::pair::PairSpec, price: Decimal) -> Decimal {
        self.reserve_usd.unwrap_or_else(|| {
            super::base_size_usd(self, pair, price).unwrap_or_default()
                * Decimal::from(self.max_active)
        })
    }
}

impl Default for ChurnerConfig {
    fn default() -> Self {
        Self::off()
    }
}
