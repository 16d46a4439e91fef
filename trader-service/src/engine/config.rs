//! Engine tunables with SPEC §10 semantics: out-of-range values are clamped
//! to safe values and reported as warnings, never a crash.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::engine::bands::BandConfig;
use crate::pair::PairSpec;

/// Everything the reducer needs besides state and event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// The pair's precision and minimums (from the exchange, never constants).
    pub pair: PairSpec,
    /// Number of slots (`SLOTS`, default 3).
    pub slots: u32,
    /// Order size of every entry (`ORDER_SIZE_USD`; by default the pair
    /// minimum at the current price plus a margin, so the default trades).
    pub order_size: OrderSize,
    /// Entry offset from market in percent (`ENTRY_PCT`, default 0.2).
    pub entry_pct: Decimal,
    /// Profit target in percent (`PROFIT_PCT`, default 1.0); recorded on
    /// every exit as its `target_profit_pct`.
    pub profit_pct: Decimal,
    /// An entry further than this (percent) from market is refreshed
    /// (`REFRESH_PCT`, default 1.0).
    pub refresh_pct: Decimal,
    /// Anti-chase pause after `refresh_streak_limit` same-direction
    /// refreshes (`REFRESH_COOLDOWN_SEC`, default 300).
    pub refresh_cooldown_sec: i64,
    /// Same-direction refreshes allowed before the pause (default 3).
    pub refresh_streak_limit: u32,
    /// Re-entry cooldown after a losing cycle (`REENTRY_BASE_COOLDOWN_SEC`,
    /// default 60).
    pub reentry_base_cooldown_sec: i64,
    /// Re-entry cooldown once `long_cooldown_after_losses` losses in a row
    /// happened (default 900).
    pub reentry_long_cooldown_sec: i64,
    /// Consecutive losses that switch to the long cooldown (default 5).
    pub long_cooldown_after_losses: u32,
    /// Re-entry wait after a trade's exit was closed at market
    /// (`HEAL_RELEASE_BACKOFF_SEC`; 0 = the ordinary loss cooldown). It
    /// doubles for each closed life in a row that lost money (see
    /// [`crate::engine::release_wait`]): a slot stopped out by a trend does not
    /// step straight back in front of it.
    pub release_backoff_sec: i64,
    /// Losses below this keep the back-off multiplier at 1.0 (default 3).
    pub backoff_start_losses: u32,
    /// Multiplier step per loss from `backoff_start_losses` on (default 0.5):
    /// multiplier = 1 + step x (losses - (start - 1)).
    pub backoff_step: Decimal,
    /// Cap of the back-off multiplier (default 5.0).
    pub backoff_cap: Decimal,
    /// Delay before re-trying a placement the exchange refused (default 60).
    pub place_retry_sec: i64,
    /// Sticky slots never abandon exits on a timer. Only `true` is supported
    /// (non-sticky orphaning is out of scope); `false` is clamped to `true`.
    pub sticky: bool,
    /// Age-band thresholds and distance weight (SPEC §4).
    pub bands: BandConfig,
    /// Grid spacing in percent (`GRID_SPACING_PCT`, default 0.5): slot k
    /// quotes its entries `k x spacing` further from the market than slot 0,
    /// so the slots spread over price levels instead of quoting one price.
    pub grid_spacing_pct: Decimal,
}

/// How big an entry order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderSize {
    /// A fixed amount of quote currency. Below the pair minimums the slot
    /// waits (loudly: start-up warning, idle reason); it is never upsized.
    Usd(Decimal),
    /// The smallest order the pair accepts at the current price plus
    /// [`PAIR_MINIMUM_MARGIN_PCT`], rounded up to the lot: the default, because
    /// a fixed default is below the minimum of some pair at some price
    /// (2 USD is 20 DOGE at 0.10, under XDGUSD's 50) and then nothing trades.
    PairMinimum,
}

/// Margin over the pair minimum of [`OrderSize::PairMinimum`], percent: room
/// for the exit of a position to stay above `costmin` when its price is
/// below the entry's.
pub const PAIR_MINIMUM_MARGIN_PCT: Decimal = Decimal::from_parts(5, 0, 0, false, 0);

impl std::fmt::Display for OrderSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Usd(usd) => write!(f, "{usd} USD"),
            Self::PairMinimum => write!(f, "pair minimum + {PAIR_MINIMUM_MARGIN_PCT}%"),
        }
    }
}

/// One clamped setting: what was given, what is used and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigWarning {
    /// Setting name (as in SPEC §10 where it has one).
    pub field: &'static str,
    /// The value given.
    pub given: String,
    /// The value now in force.
    pub used: String,
    /// The rule it broke.
    pub rule: &'static str,
}

impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}={} clamped to {} ({})",
            self.field, self.given, self.used, self.rule
        )
    }
}

impl EngineConfig {
    /// SPEC defaults for a pair.
    #[must_use]
    pub fn defaults(pair: PairSpec) -> Self {
        Self {
            pair,
            slots: 3,
            order_size: OrderSize::PairMinimum,
            entry_pct: Decimal::new(2, 1),
            profit_pct: Decimal::ONE,
            refresh_pct: Decimal::ONE,
            refresh_cooldown_sec: 300,
            refresh_streak_limit: 3,
            reentry_base_cooldown_sec: 60,
            reentry_long_cooldown_sec: 900,
            long_cooldown_after_losses: 5,
            release_backoff_sec: 0,
            backoff_start_losses: 3,
            backoff_step: Decimal::new(5, 1),
            backoff_cap: Decimal::new(5, 0),
            place_retry_sec: 60,
            sticky: true,
            bands: BandConfig::default(),
            grid_spacing_pct: Decimal::new(5, 1),
        }
    }

    /// Clamps every out-of-range value to a safe one and returns the warnings
    /// (SPEC §10: never a crash). Idempotent: validating a validated config
    /// yields no warnings.
    #[must_use]
    pub fn validate(mut self) -> (Self, Vec<ConfigWarning>) {
        let mut w = Vec::new();
        let d = Self::defaults(self.pair.clone());
        clamp_u32(&mut w, "SLOTS", &mut self.slots, 1, 1000, "1..=1000");
        if let OrderSize::Usd(usd) = self.order_size
            && usd <= Decimal::ZERO
        {
            w.push(ConfigWarning {
                field: "ORDER_SIZE_USD",
                given: usd.to_string(),
                used: d.order_size.to_string(),
                rule: "> 0",
            });
            self.order_size = d.order_size;
        }
        clamp_dec(
            &mut w,
            "GRID_SPACING_PCT",
            &mut self.grid_spacing_pct,
            d.grid_spacing_pct,
            |v| v >= Decimal::ZERO && v <= Decimal::TEN,
            "0 <= v <= 10",
        );
        clamp_dec(
            &mut w,
            "ENTRY_PCT",
            &mut self.entry_pct,
            d.entry_pct,
            |v| v > Decimal::ZERO && v <= Decimal::TEN,
            "0 < v <= 10",
        );
        clamp_dec(
            &mut w,
            "PROFIT_PCT",
            &mut self.profit_pct,
            d.profit_pct,
            |v| v > Decimal::ZERO && v <= Decimal::new(50, 0),
            "0 < v <= 50",
        );
        clamp_dec(
            &mut w,
            "REFRESH_PCT",
            &mut self.refresh_pct,
            d.refresh_pct,
            |v| v > Decimal::ZERO,
            "> 0",
        );
        clamp_i64(
            &mut w,
            "REFRESH_COOLDOWN_SEC",
            &mut self.refresh_cooldown_sec,
            0,
            ">= 0",
        );
        clamp_u32(
            &mut w,
            "refresh_streak_limit",
            &mut self.refresh_streak_limit,
            1,
            1000,
            ">= 1",
        );
        clamp_i64(
            &mut w,
            "REENTRY_BASE_COOLDOWN_SEC",
            &mut self.reentry_base_cooldown_sec,
            0,
            ">= 0",
        );
        clamp_i64(
            &mut w,
            "HEAL_RELEASE_BACKOFF_SEC",
            &mut self.release_backoff_sec,
            0,
            ">= 0",
        );
        let base = self.reentry_base_cooldown_sec;
        clamp_i64(
            &mut w,
            "reentry_long_cooldown_sec",
            &mut self.reentry_long_cooldown_sec,
            base,
            ">= REENTRY_BASE_COOLDOWN_SEC",
        );
        clamp_u32(
            &mut w,
            "long_cooldown_after_losses",
            &mut self.long_cooldown_after_losses,
            1,
            u32::MAX,
            ">= 1",
        );
        clamp_u32(
            &mut w,
            "backoff_start_losses",
            &mut self.backoff_start_losses,
            1,
            u32::MAX,
            ">= 1",
        );
        clamp_dec(
            &mut w,
            "backoff_step",
            &mut self.backoff_step,
            d.backoff_step,
            |v| v >= Decimal::ZERO,
            ">= 0",
        );
        clamp_dec(
            &mut w,
            "backoff_cap",
            &mut self.backoff_cap,
            d.backoff_cap,
            |v| v >= Decimal::ONE && v <= Decimal::TEN,
            "1 <= v <= 10",
        );
        clamp_i64(
            &mut w,
            "place_retry_sec",
            &mut self.place_retry_sec,
            1,
            ">= 1",
        );
        if !self.sticky {
            w.push(ConfigWarning {
                field: "sticky",
                given: "false".into(),
                used: "true".into(),
                rule: "non-sticky orphaning is not supported",
            });
            self.sticky = true;
        }
        let (bands, band_warnings) = self.bands.validate();
        self.bands = bands;
        w.extend(band_warnings);
        (self, w)
    }
}

fn clamp_dec(
    w: &mut Vec<ConfigWarning>,
    field: &'static str,
    v: &mut Decimal,
    default: Decimal,
    ok: impl Fn(Decimal) -> bool,
    rule: &'static str,
) {
    if !ok(*v) {
        w.push(ConfigWarning {
            field,
            given: v.to_string(),
            used: default.to_string(),
            rule,
        });
        *v = default;
    }
}

fn clamp_i64(
    w: &mut Vec<ConfigWarning>,
    field: &'static str,
    v: &mut i64,
    min: i64,
    rule: &'static str,
) {
    if *v < min {
        w.push(ConfigWarning {
            field,
            given: v.to_string(),
            used: min.to_string(),
            rule,
        });
        *v = min;
    }
}

fn clamp_u32(
    w: &mut Vec<ConfigWarning>,
    field: &'static str,
    v: &mut u32,
    min: u32,
    max: u32,
    rule: &'static str,
) {
    let c = (*v).clamp(min, max);
    if c != *v {
        w.push(ConfigWarning {
            field,
            given: v.to_string(),
            used: c.to_string(),
            rule,
        });
        *v = c;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_support::xdg;
    use rust_decimal_macros::dec;

    #[test]
    fn defaults_are_valid_and_match_the_spec() {
        let c = EngineConfig::defaults(xdg());
        assert_eq!(c.order_size, OrderSize::PairMinimum);
        assert_eq!(c.grid_spacing_pct, dec!(0.5));
        assert_eq!(c.entry_pct, dec!(0.2));
        assert_eq!(c.slots, 3);
        let (v, w) = c.clone().validate();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(v, c);
    }

    #[test]
    fn invalid_values_are_clamped_with_warnings_never_a_crash() {
        let mut c = EngineConfig::defaults(xdg());
        c.slots = 0;
        c.entry_pct = dec!(-1);
        c.profit_pct = dec!(0);
        c.order_size = OrderSize::Usd(dec!(-2));
        c.grid_spacing_pct = dec!(-1);
        c.refresh_cooldown_sec = -5;
        c.reentry_long_cooldown_sec = 10;
        c.backoff_cap = dec!(0.5);
        c.sticky = false;
        c.bands.thresholds.aging_sec = 10;
        let (v, w) = c.validate();
        let fields: Vec<_> = w.iter().map(|w| w.field).collect();
        for f in [
            "SLOTS",
            "ENTRY_PCT",
            "PROFIT_PCT",
            "ORDER_SIZE_USD",
            "GRID_SPACING_PCT",
            "REFRESH_COOLDOWN_SEC",
            "reentry_long_cooldown_sec",
            "backoff_cap",
            "sticky",
            "AGE_BAND_*_SEC",
        ] {
            assert!(fields.contains(&f), "missing warning for {f}: {fields:?}");
        }
        assert_eq!(v.slots, 1);
        assert_eq!(v.entry_pct, dec!(0.2));
        assert_eq!(v.order_size, OrderSize::PairMinimum);
        assert_eq!(v.grid_spacing_pct, dec!(0.5));
        assert_eq!(v.reentry_long_cooldown_sec, 60);
        assert!(v.sticky);
        let (again, w2) = v.clone().validate();
        assert!(w2.is_empty());
        assert_eq!(again, v);
    }
}
