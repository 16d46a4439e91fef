//! The profit target in force (SPEC §2 `p`, §5 "volatility target"):
//! `PROFIT_PCT` scaled by how much the market moves now compared with how
//! much it usually moves.
//!
//! scale = mean |1-minute log return| over the recent window (60 min) /
//! the same over the baseline window (24 h). A ratio is unit-free, so the
//! rule carries across markets and price levels: a quiet hour tightens the
//! target (exits fill sooner), a wild one widens it (exits are not handed
//! away cheaply). Then, in this order:
//! 1. the scale is clamped to 0.5x..2x (1x when the baseline is not yet
//!    filled or is zero: no information, no adjustment);
//! 2. the result is rounded to the 0.01 % grid;
//! 3. capped at 3 %;
//! 4. floored at the round-trip fee + 0.1 (rounded *up* to the grid). The
//!    floor wins over the cap: an exit that loses money after fees is never
//!    the target, however expensive the fees.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::healing::candles::MarketHistory;

/// Smallest scale applied.
pub const SCALE_MIN: Decimal = Decimal::from_parts(5, 0, 0, false, 1);
/// Largest scale applied.
pub const SCALE_MAX: Decimal = Decimal::TWO;
/// Highest target in percent.
pub const CAP_PCT: Decimal = Decimal::from_parts(3, 0, 0, false, 0);
/// Margin over the round-trip fee for the floor, in percentage points.
pub const FLOOR_MARGIN_PCT: Decimal = Decimal::from_parts(1, 0, 0, false, 1);
/// Decimals of the target grid (0.01 %).
pub const GRID_DP: u32 = 2;
/// Decimals kept of the measured scale.
const SCALE_DP: u32 = 4;

/// Refused inputs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TargetError {
    /// The base target must be positive.
    #[error("base profit target {0} % is not positive")]
    NonPositiveBase(Decimal),
    /// The round-trip fee cannot be negative.
    #[error("round-trip fee {0} % is negative")]
    NegativeFee(Decimal),
}

/// How the scale was limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleLimit {
    /// Used as measured.
    None,
    /// Not enough history (or a zero baseline): 1x.
    NoData,
    /// Raised to the minimum.
    Min,
    /// Lowered to the maximum.
    Max,
}

/// How the scaled target was bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetBound {
    /// Within bounds.
    None,
    /// Lowered to [`CAP_PCT`].
    Capped,
    /// Raised to the fee floor.
    Floored,
}

/// Why the target is what it is (for logs and the status API).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TargetExplain {
    /// `PROFIT_PCT`.
    pub base_pct: Decimal,
    /// Measured recent / baseline move ratio, if there was enough data.
    pub measured: Option<f64>,
    /// The scale applied (after clamping).
    pub scale: Decimal,
    /// How the scale was limited.
    pub scale_limit: ScaleLimit,
    /// `base x scale` before bounds and rounding.
    pub raw_pct: Decimal,
    /// The floor (round-trip fee + margin, on the grid).
    pub floor_pct: Decimal,
    /// How the result was bounded.
    pub bound: TargetBound,
}

/// The profit target in force.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// Target in percent, on the 0.01 grid, within floor and cap.
    pub pct: Decimal,
    /// How it was derived.
    pub explain: TargetExplain,
}

/// The profit target in force for an exit placed now: `base_pct`
/// (`PROFIT_PCT`) scaled by the recent/baseline 1-minute move ratio of
/// `history`, clamped, capped and floored as the module doc says.
/// `round_trip_fee_pct` is entry + exit fee in percent (2 x maker, e.g.
/// 0.50).
///
/// # Errors
/// A non-positive base or a negative fee.
pub fn profit_target(
    base_pct: Decimal,
    round_trip_fee_pct: Decimal,
    history: &MarketHistory,
) -> Result<Target, TargetError> {
    let measured = history
        .move_stats()
        .filter(|s| s.baseline > 0.0 && s.recent.is_finite() && s.baseline.is_finite())
        .map(|s| s.recent / s.baseline);
    target_from_ratio(base_pct, round_trip_fee_pct, measured)
}

/// [`profit_target`] for an already measured move ratio (`None`: not enough
/// data). Exposed for callers that measure moves elsewhere, and for tests.
///
/// # Errors
/// A non-positive base or a negative fee.
pub fn target_from_ratio(
    base_pct: Decimal,
    round_trip_fee_pct: Decimal,
    measured: Option<f64>,
) -> Result<Target, TargetError> {
    if base_pct <= Decimal::ZERO {
        return Err(TargetError::NonPositiveBase(base_pct));
    }
    if round_trip_fee_pct < Decimal::ZERO {
        return Err(TargetError::NegativeFee(round_trip_fee_pct));
    }
    let (scale, scale_limit) = match measured.and_then(scale_to_decimal) {
        None => (Decimal::ONE, ScaleLimit::NoData),
        Some(r) => {
            if r < SCALE_MIN {
                (SCALE_MIN, ScaleLimit::Min)
            } else if r > SCALE_MAX {
                (SCALE_MAX, ScaleLimit::Max)
            } else {
                (r, ScaleLimit::None)
            }
        }
    };
    let raw_pct = base_pct * scale;
    let floor_pct = (round_trip_fee_pct + FLOOR_MARGIN_PCT)
        .round_dp_with_strategy(GRID_DP, RoundingStrategy::AwayFromZero);
    let mut pct = raw_pct.round_dp_with_strategy(GRID_DP, RoundingStrategy::MidpointAwayFromZero);
    let mut bound = TargetBound::None;
    if pct > CAP_PCT {
        pct = CAP_PCT;
        bound = TargetBound::Capped;
    }
    if pct < floor_pct {
        pct = floor_pct;
        bound = TargetBound::Floored;
    }
    Ok(Target {
        pct: pct.normalize(),
        explain: TargetExplain {
            base_pct,
            measured,
            scale,
            scale_limit,
            raw_pct,
            floor_pct,
            bound,
        },
    })
}

/// The measured ratio on the scale grid (4 decimals), saturated far outside
/// the clamp range so the conversion is exact and cheap (no float-to-
/// decimal expansion on the per-candle path). `None` for NaN.
fn scale_to_decimal(ratio: f64) -> Option<Decimal> {
    if ratio.is_nan() {
        return None;
    }
    let steps = (ratio.clamp(-1e6, 1e6) * 10f64.powi(SCALE_DP as i32)).round();
    // In range by the clamp above: |steps| <= 1e10.
    #[allow(clippy::cast_possible_truncation)]
    Some(Decimal::new(steps as i64, SCALE_DP))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::healing::config::HealingConfig;
    use rust_decimal_macros::dec;

    fn t(base: Decimal, fee: Decimal, ratio: Option<f64>) -> Target {
        target_from_ratio(base, fee, ratio).expect("valid inputs")
    }

    #[test]
    fn no_data_gives_the_base_target() {
        let x = t(dec!(1.0), dec!(0.5), None);
        assert_eq!(x.pct, dec!(1));
        assert_eq!(x.explain.scale_limit, ScaleLimit::NoData);
        assert_eq!(x.explain.bound, TargetBound::None);
        assert_eq!(x.explain.floor_pct, dec!(0.6));
        let nan = t(dec!(1.0), dec!(0.5), Some(f64::NAN));
        assert_eq!(nan.explain.scale_limit, ScaleLimit::NoData);
        assert_eq!(nan.pct, dec!(1));
    }

    #[test]
    fn scale_is_used_within_its_bounds_and_on_the_grid() {
        let x = t(dec!(1.0), dec!(0.5), Some(1.234_567));
        assert_eq!(x.explain.scale, dec!(1.2346));
        assert_eq!(x.pct, dec!(1.23));
        assert_eq!(x.explain.scale_limit, ScaleLimit::None);
        // Exactly on the scale edges: used as is.
        assert_eq!(t(dec!(1.0), dec!(0.2), Some(0.5)).pct, dec!(0.5));
        assert_eq!(
            t(dec!(1.0), dec!(0.2), Some(0.5)).explain.scale_limit,
            ScaleLimit::None
        );
        assert_eq!(t(dec!(1.0), dec!(0.5), Some(2.0)).pct, dec!(2));
        // Midpoint rounds away from zero.
        assert_eq!(t(dec!(1.0), dec!(0.2), Some(0.905)).pct, dec!(0.91));
    }

    #[test]
    fn scale_below_half_is_raised_and_above_two_is_lowered() {
        let lo = t(dec!(1.0), dec!(0.2), Some(0.1));
        assert_eq!(lo.explain.scale, dec!(0.5));
        assert_eq!(lo.explain.scale_limit, ScaleLimit::Min);
        assert_eq!(lo.pct, dec!(0.5));
        let zero = t(dec!(1.0), dec!(0.2), Some(0.0));
        assert_eq!(zero.explain.scale_limit, ScaleLimit::Min);
        let inf = t(dec!(1.0), dec!(0.5), Some(f64::INFINITY));
        assert_eq!(inf.explain.scale_limit, ScaleLimit::Max);
        let neg = t(dec!(1.0), dec!(0.2), Some(-3.0));
        assert_eq!(neg.explain.scale_limit, ScaleLimit::Min);
        let hi = t(dec!(1.0), dec!(0.5), Some(7.0));
        assert_eq!(hi.explain.scale, dec!(2));
        assert_eq!(hi.explain.scale_limit, ScaleLimit::Max);
        assert_eq!(hi.pct, dec!(2));
    }

    #[test]
    fn result_is_capped_at_three_percent() {
        let x = t(dec!(2.0), dec!(0.5), Some(1.6));
        assert_eq!(x.explain.raw_pct, dec!(3.2));
        assert_eq!(x.pct, dec!(3));
        assert_eq!(x.explain.bound, TargetBound::Capped);
        // Exactly at the cap is not "capped".
        let at = t(dec!(1.5), dec!(0.5), Some(2.0));
        assert_eq!(at.pct, dec!(3));
        assert_eq!(at.explain.bound, TargetBound::None);
    }

    #[test]
    fn result_is_floored_at_round_trip_fee_plus_margin() {
        // 2 x 0.25 = 0.5 -> floor 0.6; 1.0 x 0.5 = 0.5 is raised.
        let x = t(dec!(1.0), dec!(0.5), Some(0.2));
        assert_eq!(x.pct, dec!(0.6));
        assert_eq!(x.explain.bound, TargetBound::Floored);
        // Exactly at the floor is not "floored".
        let at = t(dec!(1.2), dec!(0.5), Some(0.5));
        assert_eq!(at.pct, dec!(0.6));
        assert_eq!(at.explain.bound, TargetBound::None);
        // A floor off the grid is rounded up, never down.
        let odd = t(dec!(0.1), dec!(0.505), None);
        assert_eq!(odd.explain.floor_pct, dec!(0.61));
        assert_eq!(odd.pct, dec!(0.61));
        // The floor beats the cap.
        let dear = t(dec!(2.0), dec!(3.5), Some(2.0));
        assert_eq!(dear.pct, dec!(3.6));
        assert_eq!(dear.explain.bound, TargetBound::Floored);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert_eq!(
            target_from_ratio(dec!(0), dec!(0.5), None),
            Err(TargetError::NonPositiveBase(dec!(0)))
        );
        assert_eq!(
            target_from_ratio(dec!(1), dec!(-0.1), None),
            Err(TargetError::NegativeFee(dec!(-0.1)))
        );
        assert!(
            TargetError::NegativeFee(dec!(-0.1))
                .to_string()
                .contains("negative")
        );
    }

    #[test]
    fn target_follows_the_history_moves() {
        let mut cfg = HealingConfig::default();
        cfg.target.recent_minutes = 10;
        cfg.target.baseline_minutes = 40;
        cfg.target.baseline_min_minutes = 20;
        let cfg = cfg.validate().0;
        let mut h = MarketHistory::new(&cfg);
        let mut p = dec!(0.1);
        let fee = dec!(0.5);
        assert_eq!(
            profit_target(dec!(1), fee, &h)
                .expect("ok")
                .explain
                .scale_limit,
            ScaleLimit::NoData
        );
        // 30 minutes alternating +-0.1 %, then 10 minutes alternating +-0.3 %.
        for m in 0..=41i64 {
            let step = if m <= 30 { dec!(1.001) } else { dec!(1.003) };
            p = if m % 2 == 0 { p * step } else { p / step };
            h.observe(m * 60, p).expect("valid");
        }
        let x = profit_target(dec!(1), fee, &h).expect("ok");
        let ratio = x.explain.measured.expect("measured");
        // Baseline: 30 calm and 10 wild moves -> mean 0.15 %; recent 0.3 %.
        assert!((ratio - 2.0).abs() < 0.01, "{ratio}");
        assert!(x.pct >= dec!(1.99) && x.pct <= dec!(2), "{x:?}");
        // A flat market: zero baseline means no information, not a zero scale.
        let mut flat = MarketHistory::new(&cfg);
        for m in 0..60i64 {
            flat.observe(m * 60, dec!(0.1)).expect("valid");
        }
        let f = profit_target(dec!(1), fee, &flat).expect("ok");
        assert_eq!(f.explain.scale_limit, ScaleLimit::NoData);
        assert_eq!(f.pct, dec!(1));
    }
}
