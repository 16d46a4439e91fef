//! The price bars the trader keeps for people: 5-minute open/high/low/close
//! of the market prices it observed (one per loop), the same buckets the
//! regime detector's returns come from ([`super::candles::REGIME_BAR_SEC`]).
//! The detector itself keeps only log returns (statistics, in `f64`); the
//! dashboard's chart needs prices, so these are `Decimal` and bounded to the
//! last day. Observations out of order or not positive are ignored, like
//! the detector's.

use std::collections::VecDeque;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::candles::REGIME_BAR_SEC;

/// Bars kept: 24 hours of 5-minute bars.
pub const KEPT_BARS: usize = 288;

/// One bar of observed prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceBar {
    /// Bar start, unix seconds (a multiple of [`REGIME_BAR_SEC`]).
    pub start: i64,
    /// First price observed in the bar.
    pub open: Decimal,
    /// Highest.
    pub high: Decimal,
    /// Lowest.
    pub low: Decimal,
    /// Last.
    pub close: Decimal,
    /// Prices observed.
    pub samples: u32,
}

/// The newest [`KEPT_BARS`] bars, the open one last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceBars {
    bars: VecDeque<PriceBar>,
    last_at: Option<i64>,
}

impl PriceBars {
    /// Records the price at `at` (unix seconds).
    pub fn observe(&mut self, at: i64, price: Decimal) {
        if price <= Decimal::ZERO || self.last_at.is_some_and(|l| at < l) {
            return;
        }
        self.last_at = Some(at);
        let start = at - at.rem_euclid(REGIME_BAR_SEC);
        match self.bars.back_mut() {
            Some(b) if b.start == start => {
                b.high = b.high.max(price);
                b.low = b.low.min(price);
                b.close = price;
                b.samples = b.samples.saturating_add(1);
            }
            _ => {
                self.bars.push_back(PriceBar {
                    start,
                    open: price,
                    high: price,
                    low: price,
                    close: price,
                    samples: 1,
                });
                if self.bars.len() > KEPT_BARS {
                    self.bars.pop_front();
                }
            }
        }
    }

    /// Bars starting at or after `since` (unix seconds), oldest first.
    #[must_use]
    pub fn since(&self, since: i64) -> Vec<PriceBar> {
        self.bars
            .iter()
            .filter(|b| b.start >= since)
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    /// Proves: prices in one 5-minute bucket make one bar (open first,
    /// close last, high/low the extremes); a later bucket opens a new bar;
    /// out-of-order and non-positive prices change nothing; only the last
    /// day is kept; `since` filters by bar start.
    #[test]
    fn bars_from_observations() {
        let mut b = PriceBars::default();
        b.observe(600, dec!(0.10));
        b.observe(660, dec!(0.12));
        b.observe(700, dec!(0.09));
        b.observe(899, dec!(0.11));
        b.observe(650, dec!(0.50));
        b.observe(899, dec!(0));
        b.observe(900, dec!(0.2));
        let all = b.since(0);
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[0],
            PriceBar {
                start: 600,
                open: dec!(0.10),
                high: dec!(0.12),
                low: dec!(0.09),
                close: dec!(0.11),
                samples: 4,
            }
        );
        assert_eq!((all[1].start, all[1].open), (900, dec!(0.2)));
        assert_eq!(b.since(601).len(), 1);
        for i in 0..400 {
            b.observe(1_200 + i * 300, dec!(1));
        }
        let kept = b.since(0);
        assert_eq!(kept.len(), KEPT_BARS);
        assert_eq!(kept.last().unwrap().start, 1_200 + 399 * 300);
    }
}
