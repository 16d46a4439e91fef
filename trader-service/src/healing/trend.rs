//! How steadily the market walks, and which entries wait because of it
//! ([`crate::engine::EntryHold`]).
//!
//! The measure is the efficiency ratio of the last `window` 5-minute log
//! returns: |sum of returns| / sum of |returns|, the share of the path the
//! price travelled that went somewhere. A grid earns on the path and is
//! locked by the displacement, so this one number says how hostile the
//! market is to the entry against the move, whatever the pair's volatility
//! or price scale: on a random walk over a day it is about 0.05, and on
//! the real DOGE/USDT and alt markets the daily value has nearly the same
//! distribution (median 0.05-0.06, 90th percentile 0.12-0.14).
//!
//! A hold starts when the ratio reaches `hold_er` and lasts, on the same
//! side, while it stays at or above `resume_er` (hysteresis, so a ratio
//! hovering at the threshold does not cancel and re-place entries every
//! pass). Too few returns, or a flat window, means no hold: a gate that
//! cannot see must not stop trading.

use serde::{Deserialize, Serialize};

use crate::engine::EntryHold;

/// Settings of the entry hold (`HEAL_TREND_*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendConfig {
    /// `HEAL_TREND_WINDOW`: 5-minute returns measured (288 = a day);
    /// 12..=`REGIME_WINDOW` (the history keeps no more).
    pub window: usize,
    /// `HEAL_TREND_HOLD_ER`: efficiency ratio at which entries against the
    /// move wait; 0 turns the hold off, else 0.01..=1.
    pub hold_er: f64,
    /// `HEAL_TREND_RESUME_ER`: a hold lasts while the ratio stays at or
    /// above this; 0..=`hold_er`.
    pub resume_er: f64,
}

impl Default for TrendConfig {
    fn default() -> Self {
        Self {
            window: 288,
            hold_er: 0.0,
            resume_er: 0.0,
        }
    }
}

impl TrendConfig {
    /// True when the hold can ever start.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.hold_er > 0.0
    }
}

/// One measurement of the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrendReading {
    /// Efficiency ratio, 0..=1.
    pub er: f64,
    /// Sum of the window's log returns (its sign is the move's direction).
    pub log_move: f64,
}

/// Measures the newest `window` returns; `None` with fewer, or when the
/// price did not move at all.
#[must_use]
pub fn measure(returns: &[f64], window: usize) -> Option<TrendReading> {
    if window == 0 || returns.len() < window {
        return None;
    }
    let recent = &returns[returns.len() - window..];
    let path: f64 = recent.iter().map(|r| r.abs()).sum();
    let log_move: f64 = recent.iter().sum();
    if !(path.is_finite() && log_move.is_finite()) || path <= 0.0 {
        return None;
    }
    Some(TrendReading {
        er: (log_move.abs() / path).min(1.0),
        log_move,
    })
}

/// The hold to apply after `reading`, given the one in force.
#[must_use]
pub fn next_hold(
    current: EntryHold,
    reading: Option<TrendReading>,
    cfg: &TrendConfig,
) -> EntryHold {
    let Some(r) = reading.filter(|_| cfg.enabled()) else {
        return EntryHold::None;
    };
    let against = if r.log_move > 0.0 {
        EntryHold::Sells
    } else {
        EntryHold::Buys
    };
    if r.er >= cfg.hold_er || (current == against && r.er >= cfg.resume_er) {
        against
    } else {
        EntryHold::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> TrendConfig {
        TrendConfig {
            window: 4,
            hold_er: 0.5,
            resume_er: 0.3,
        }
    }

    #[test]
    fn the_ratio_is_displacement_over_path() {
        let r = measure(&[9.0, 0.01, 0.01, -0.01, 0.01], 4).unwrap();
        assert!((r.er - 0.5).abs() < 1e-12, "{r:?}: only the newest 4 count");
        assert!(r.log_move > 0.0);
        assert_eq!(measure(&[0.01; 3], 4), None, "too few");
        assert_eq!(measure(&[0.0; 4], 4), None, "flat");
        assert_eq!(measure(&[f64::NAN; 4], 4), None);
    }

    #[test]
    fn a_steady_rise_holds_sells_and_a_fall_holds_buys() {
        let up = measure(&[0.01; 4], 4);
        let down = measure(&[-0.01; 4], 4);
        assert_eq!(next_hold(EntryHold::None, up, &cfg()), EntryHold::Sells);
        assert_eq!(next_hold(EntryHold::None, down, &cfg()), EntryHold::Buys);
        let chop = measure(&[0.01, -0.01, 0.01, -0.01], 4);
        assert_eq!(next_hold(EntryHold::Sells, chop, &cfg()), EntryHold::None);
    }

    #[test]
    fn a_hold_lasts_down_to_the_resume_ratio_on_its_own_side_only() {
        // er = 0.4: below hold, above resume.
        let mild_up = measure(&[0.01, 0.01, 0.01, -0.01], 4).map(|mut r| {
            r.er = 0.4;
            r
        });
        assert_eq!(next_hold(EntryHold::None, mild_up, &cfg()), EntryHold::None);
        assert_eq!(
            next_hold(EntryHold::Sells, mild_up, &cfg()),
            EntryHold::Sells
        );
        assert_eq!(
            next_hold(EntryHold::Buys, mild_up, &cfg()),
            EntryHold::None,
            "the move turned"
        );
    }

    #[test]
    fn off_or_blind_means_no_hold() {
        let up = measure(&[0.01; 4], 4);
        let off = TrendConfig {
            hold_er: 0.0,
            ..cfg()
        };
        assert_eq!(next_hold(EntryHold::Sells, up, &off), EntryHold::None);
        assert_eq!(next_hold(EntryHold::Sells, None, &cfg()), EntryHold::None);
    }
}
