//! Age bands of open positions (SPEC §4).
//!
//! `age = now - entry_time` (reprices never reset it), `distance_pct =
//! |current_exit_price - market| / market x 100`, `effective_age = age x (1 +
//! distance_pct / weight)`. An exit far from the market ages faster than one
//! about to fill, so healing effort goes where it is needed. Bands are
//! derived every loop (a position can move *down* when the market comes
//! back); boundaries belong to the upper band.
//!
//! The band decision is exact: `effective_age >= T` is evaluated as
//! `age x (w x m + 100 x |x - m|) >= T x w x m` (all terms positive), which
//! needs no division, so a worked example that lands exactly on a threshold
//! (2 h at 10 % = 21600 s) is classified exactly. The reported
//! `effective_age_sec` is the (28-digit) decimal quotient, for display.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::engine::config::ConfigWarning;
use crate::engine::types::{EngineState, OrderId, SlotId, TradeId};

/// Band of a position's effective age, worst last (so `>=` comparisons read
/// naturally: `band >= AgeBand::Stuck`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgeBand {
    /// Nothing to do.
    Fresh,
    /// The churner may activate when ranging.
    Aging,
    /// Tighten reprice.
    Stale,
    /// Subsidised reprice, churner.
    Stuck,
    /// Cleanup queue (operator).
    WriteOff,
}

/// Lower bounds (seconds of effective age) of the bands above `fresh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BandThresholds {
    /// `AGE_BAND_FRESH_SEC`: below it a position is fresh (21600).
    pub fresh_sec: i64,
    /// `AGE_BAND_AGING_SEC`: below it aging (86400).
    pub aging_sec: i64,
    /// `AGE_BAND_STALE_SEC`: below it stale (259200).
    pub stale_sec: i64,
    /// `AGE_BAND_STUCK_SEC`: below it stuck, from it write-off (604800).
    pub stuck_sec: i64,
}

impl Default for BandThresholds {
    fn default() -> Self {
        Self {
            fresh_sec: 21_600,
            aging_sec: 86_400,
            stale_sec: 259_200,
            stuck_sec: 604_800,
        }
    }
}

impl BandThresholds {
    /// Whether the SPEC §10 rule holds: every threshold >= 60 and strictly
    /// increasing.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.fresh_sec >= 60
            && self.fresh_sec < self.aging_sec
            && self.aging_sec < self.stale_sec
            && self.stale_sec < self.stuck_sec
    }

    fn upper_bounds(&self) -> [(i64, AgeBand); 4] {
        [
            (self.fresh_sec, AgeBand::Fresh),
            (self.aging_sec, AgeBand::Aging),
            (self.stale_sec, AgeBand::Stale),
            (self.stuck_sec, AgeBand::Stuck),
        ]
    }
}

/// Band tunables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BandConfig {
    /// Thresholds.
    pub thresholds: BandThresholds,
    /// `AGE_DISTANCE_WEIGHT` (> 0, default 5.0): the distance in percent
    /// that doubles the ageing speed.
    pub distance_weight: Decimal,
}

impl Default for BandConfig {
    fn default() -> Self {
        Self {
            thresholds: BandThresholds::default(),
            distance_weight: Decimal::new(50, 1),
        }
    }
}

impl BandConfig {
    /// Clamps invalid values to the defaults, with warnings (SPEC §10). The
    /// thresholds are replaced as a set: fixing one of them alone could not
    /// restore a strictly increasing order the operator meant.
    #[must_use]
    pub fn validate(mut self) -> (Self, Vec<ConfigWarning>) {
        let d = Self::default();
        let mut w = Vec::new();
        if !self.thresholds.is_valid() {
            w.push(ConfigWarning {
                field: "AGE_BAND_*_SEC",
                given: format!("{:?}", self.thresholds),
                used: format!("{:?}", d.thresholds),
                rule: ">= 60 and strictly increasing",
            });
            self.thresholds = d.thresholds;
        }
        if self.distance_weight <= Decimal::ZERO {
            w.push(ConfigWarning {
                field: "AGE_DISTANCE_WEIGHT",
                given: self.distance_weight.to_string(),
                used: d.distance_weight.to_string(),
                rule: "> 0",
            });
            self.distance_weight = d.distance_weight;
        }
        (self, w)
    }
}

/// Why a position cannot be classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum BandError {
    /// No usable market price.
    #[error("market price {0} is not positive")]
    NonPositiveMarket(Decimal),
    /// The distance weight is not positive (validate the config first).
    #[error("distance weight {0} is not positive")]
    NonPositiveWeight(Decimal),
}

/// Age facts of one position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionAge {
    /// `now - entry_time`, never negative (clock skew clamps to 0).
    pub age_sec: i64,
    /// `|exit - market| / market x 100`.
    pub distance_pct: Decimal,
    /// `age x (1 + distance / weight)` (display value; the band uses the
    /// exact comparison).
    pub effective_age_sec: Decimal,
    /// The band.
    pub band: AgeBand,
}

/// Classifies one position.
pub fn classify(
    entry_time: i64,
    now: i64,
    current_exit_price: Decimal,
    market: Decimal,
    cfg: &BandConfig,
) -> Result<PositionAge, BandError> {
    if market <= Decimal::ZERO {
        return Err(BandError::NonPositiveMarket(market));
    }
    let w = cfg.distance_weight;
    if w <= Decimal::ZERO {
        return Err(BandError::NonPositiveWeight(w));
    }
    let age_sec = (now - entry_time).max(0);
    let age = Decimal::from(age_sec);
    let gap100 = (current_exit_price - market).abs() * Decimal::ONE_HUNDRED;
    let wm = w * market;
    // effective_age = age x (wm + gap100) / wm
    let scaled = age * (wm + gap100);
    let band = cfg
        .thresholds
        .upper_bounds()
        .iter()
        .find(|(t, _)| scaled < Decimal::from(*t) * wm)
        .map_or(AgeBand::WriteOff, |(_, b)| *b);
    Ok(PositionAge {
        age_sec,
        distance_pct: gap100 / market,
        effective_age_sec: scaled / wm,
        band,
    })
}

/// The band of a given effective age (boundaries belong to the upper band).
#[must_use]
pub fn band_of(effective_age_sec: Decimal, t: &BandThresholds) -> AgeBand {
    t.upper_bounds()
        .iter()
        .find(|(limit, _)| effective_age_sec < Decimal::from(*limit))
        .map_or(AgeBand::WriteOff, |(_, b)| *b)
}

/// One open position with its age facts, as derived each loop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionBand {
    /// Slot.
    pub slot: SlotId,
    /// Trade.
    pub trade: TradeId,
    /// Cycle.
    pub cycle: u64,
    /// Current exit's local id.
    pub exit_order_id: OrderId,
    /// Ledger id if known.
    pub position_id: Option<String>,
    /// Age facts.
    pub age: PositionAge,
}

/// Age facts of every open position of the engine (every exit), in
/// deterministic order; empty when the market is unknown or not positive.
#[must_use]
pub fn classify_all(state: &EngineState, now: i64, cfg: &BandConfig) -> Vec<PositionBand> {
    let Some(market) = state.market else {
        return Vec::new();
    };
    state
        .open_exits()
        .filter_map(|x| {
            let age = classify(x.entry.time, now, x.price, market, cfg).ok()?;
            Some(PositionBand {
                slot: x.id.slot,
                trade: x.id.trade,
                cycle: x.id.cycle,
                exit_order_id: x.id,
                position_id: x.position_id.clone(),
                age,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    const H: i64 = 3600;
    const D: i64 = 86_400;

    /// A position `age` seconds old whose exit sits `pct` % above a 0.1 market.
    fn at(age: i64, pct: Decimal) -> PositionAge {
        let market = dec!(0.1);
        let exit = market * (Decimal::ONE + pct / Decimal::ONE_HUNDRED);
        classify(
            1_000_000,
            1_000_000 + age,
            exit,
            market,
            &BandConfig::default(),
        )
        .unwrap()
    }

    #[test]
    fn spec_example_2h_10pct_is_exactly_21600_and_aging() {
        let p = at(2 * H, dec!(10));
        assert_eq!(p.distance_pct, dec!(10));
        assert_eq!(p.effective_age_sec, dec!(21600));
        assert_eq!(p.band, AgeBand::Aging);
    }

    #[test]
    fn spec_example_5d_half_pct_is_stuck_not_fresh() {
        let p = at(5 * D, dec!(0.5));
        assert_eq!(p.effective_age_sec, dec!(475200)); // 5.5 days
        assert_eq!(p.band, AgeBand::Stuck);
    }

    #[test]
    fn spec_examples_at_2pct() {
        let p = at(40 * H, dec!(2));
        assert_eq!(p.effective_age_sec, Decimal::from(56 * H));
        assert_eq!(p.band, AgeBand::Stale);
        let p = at(80 * H, dec!(2));
        assert_eq!(p.effective_age_sec, Decimal::from(112 * H));
        assert_eq!(p.band, AgeBand::Stuck);
        assert_eq!(at(10 * D, dec!(2)).band, AgeBand::WriteOff);
    }

    #[test]
    fn exit_below_market_measures_the_same_distance() {
        let market = dec!(0.1);
        let p = classify(0, 2 * H, dec!(0.09), market, &BandConfig::default()).unwrap();
        assert_eq!(p.band, AgeBand::Aging);
        assert_eq!(p.effective_age_sec, dec!(21600));
    }

    #[test]
    fn boundaries_belong_to_the_upper_band() {
        let t = BandThresholds::default();
        for (limit, below, at_limit) in [
            (t.fresh_sec, AgeBand::Fresh, AgeBand::Aging),
            (t.aging_sec, AgeBand::Aging, AgeBand::Stale),
            (t.stale_sec, AgeBand::Stale, AgeBand::Stuck),
            (t.stuck_sec, AgeBand::Stuck, AgeBand::WriteOff),
        ] {
            // At zero distance the effective age is the age itself.
            assert_eq!(at(limit, dec!(0)).band, at_limit, "at {limit}");
            assert_eq!(at(limit - 1, dec!(0)).band, below, "below {limit}");
            assert_eq!(band_of(Decimal::from(limit), &t), at_limit);
            assert_eq!(band_of(Decimal::from(limit) - dec!(0.000001), &t), below);
        }
        assert_eq!(at(0, dec!(0)).band, AgeBand::Fresh);
    }

    #[test]
    fn a_position_moves_down_a_band_when_the_market_comes_back() {
        let cfg = BandConfig::default();
        // 20 h at 2 % = 28 h effective (stale); at 0 % it is 20 h (aging).
        let far = classify(0, 20 * H, dec!(0.102), dec!(0.1), &cfg).unwrap();
        let near = classify(0, 20 * H, dec!(0.102), dec!(0.102), &cfg).unwrap();
        assert_eq!(far.band, AgeBand::Stale);
        assert_eq!(near.band, AgeBand::Aging);
    }

    #[test]
    fn negative_age_clamps_and_bad_inputs_are_errors() {
        let cfg = BandConfig::default();
        let p = classify(100, 50, dec!(1), dec!(1), &cfg).unwrap();
        assert_eq!((p.age_sec, p.band), (0, AgeBand::Fresh));
        assert!(classify(0, 1, dec!(1), dec!(0), &cfg).is_err());
        let bad = BandConfig {
            distance_weight: dec!(0),
            ..cfg
        };
        assert!(classify(0, 1, dec!(1), dec!(1), &bad).is_err());
    }

    #[test]
    fn thresholds_must_be_at_least_60_and_strictly_increasing() {
        let mut c = BandConfig::default();
        assert!(c.validate().1.is_empty());
        c.thresholds.fresh_sec = 59;
        let (v, w) = c.validate();
        assert_eq!(w.len(), 1);
        assert_eq!(v.thresholds, BandThresholds::default());
        c = BandConfig::default();
        c.thresholds.stale_sec = c.thresholds.aging_sec;
        c.distance_weight = dec!(-1);
        let (v, w) = c.validate();
        assert_eq!(w.len(), 2);
        assert_eq!(v, BandConfig::default());
    }

    #[test]
    fn custom_thresholds_are_honoured() {
        let cfg = BandConfig {
            thresholds: BandThresholds {
                fresh_sec: 60,
                aging_sec: 120,
                stale_sec: 180,
                stuck_sec: 240,
            },
            distance_weight: dec!(5),
        };
        let p = classify(0, 100, dec!(0.1), dec!(0.1), &cfg).unwrap();
        assert_eq!(p.band, AgeBand::Aging);
    }
}
