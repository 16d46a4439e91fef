//! Throughput, opportunity cost and ETA (SPEC §7), as pure statistics.
//!
//! The sizer keeps the newest completed round trips per *bucket*: one per
//! regime x trade for the sticky grid, one aggregate over all sticky trips,
//! and a separate churner bucket. Churner round trips are short and
//! near-market; mixing them into the sticky statistics would make stuck
//! positions look far more expensive than they are, so they can only enter
//! the churner bucket ([`CycleKind::Churner`]).
//!
//! `profit_per_hour = sum(w x net) / sum(w x duration_h)`, where the newest
//! sample weighs 1 and each older one `0.5^(rank / half_life)` (rank 0 is
//! the newest). Open exits enter as *censored* samples: the time they have
//! been open so far, with no profit yet, at weight [`CENSORED_WEIGHT`] times
//! their recency weight. Counting them keeps a regime whose exits never
//! fill from looking profitable just because its few fills were.
//!
//! Weights and rates are statistics (`f64`); money that comes out
//! ([`ThroughputSizer::opportunity_cost`]) is a `Decimal` rounded to
//! [`MONEY_DP`] places.

use std::collections::{BTreeMap, VecDeque};

use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::engine::TradeId;
use crate::healing::vocab::Regime;

/// Completed samples kept per bucket (SPEC §7).
pub const WINDOW: usize = 500;
/// Rank at which a sample weighs half of the newest (SPEC §7).
pub const HALF_LIFE: f64 = 100.0;
/// Weight of an open exit relative to a completed trip (SPEC §7).
pub const CENSORED_WEIGHT: f64 = 0.5;
/// Decimal places of money figures the sizer returns.
pub const MONEY_DP: u32 = 8;
/// The rolling window of churner profit the ETA rate is taken over.
pub const ETA_WINDOW_SEC: i64 = 86_400;

/// Where a round trip is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum CycleKind {
    /// A sticky grid trade, under the regime in force when it completed.
    Sticky {
        /// Regime label.
        regime: Regime,
        /// Trade A or B.
        trade: TradeId,
    },
    /// A churner round trip (only ever the churner bucket).
    Churner,
}

/// A statistics bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "bucket")]
pub enum Bucket {
    /// Sticky trips of one regime and trade.
    Sticky {
        /// Regime label.
        regime: Regime,
        /// Trade A or B.
        trade: TradeId,
    },
    /// Every sticky trip.
    Aggregate,
    /// Churner round trips.
    Churner,
}

/// One completed round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleSample {
    /// Net profit after both fees (may be negative).
    pub net: Decimal,
    /// Seconds from entry fill to exit fill.
    pub duration_sec: i64,
}

/// One open exit as a censored sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenSample {
    /// The sticky bucket it would complete into.
    pub regime: Regime,
    /// Trade A or B.
    pub trade: TradeId,
    /// Seconds it has been open so far.
    pub age_sec: i64,
}

/// Completed round trips per bucket, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThroughputSizer {
    /// Newest first, at most [`WINDOW`] each. A `Vec` of pairs, not a map,
    /// so it serialises as JSON (whose keys must be strings).
    buckets: Vec<(Bucket, VecDeque<CycleSample>)>,
}

impl ThroughputSizer {
    /// Records a completed round trip: a sticky one into its regime x trade
    /// bucket and the aggregate, a churner one into the churner bucket only.
    /// A trip with a negative duration (clock skew) counts as zero seconds.
    pub fn record(&mut self, kind: CycleKind, sample: CycleSample) {
        let sample = CycleSample {
            duration_sec: sample.duration_sec.max(0),
            ..sample
        };
        match kind {
            CycleKind::Sticky { regime, trade } => {
                self.push(Bucket::Sticky { regime, trade }, sample);
                self.push(Bucket::Aggregate, sample);
            }
            CycleKind::Churner => self.push(Bucket::Churner, sample),
        }
    }

    fn push(&mut self, bucket: Bucket, sample: CycleSample) {
        let i = match self.buckets.iter().position(|(b, _)| *b == bucket) {
            Some(i) => i,
            None => {
                self.buckets.push((bucket, VecDeque::new()));
                self.buckets.len() - 1
            }
        };
        let q = &mut self.buckets[i].1;
        q.push_front(sample);
        q.truncate(WINDOW);
    }

    /// Completed samples of `bucket`, newest first.
    #[must_use]
    pub fn samples(&self, bucket: Bucket) -> Vec<CycleSample> {
        self.buckets
            .iter()
            .find(|(b, _)| *b == bucket)
            .map(|(_, q)| q.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Completed samples per bucket (for the status).
    #[must_use]
    pub fn counts(&self) -> BTreeMap<Bucket, usize> {
        self.buckets.iter().map(|(b, q)| (*b, q.len())).collect()
    }

    /// Recency-weighted profit per hour of `bucket`, with `open` exits of
    /// the sticky buckets as censored samples (the churner bucket takes
    /// none: its open trips are not sticky exits). `None` when the bucket
    /// has no duration to divide by.
    #[must_use]
    pub fn profit_per_hour(&self, bucket: Bucket, open: &[OpenSample]) -> Option<f64> {
        let mut num = 0.0;
        let mut den = 0.0;
        let q = self.buckets.iter().find(|(b, _)| *b == bucket);
        for (rank, s) in q.into_iter().flat_map(|(_, q)| q.iter()).enumerate() {
            let w = recency_weight(rank);
            num += w * s.net.to_f64().unwrap_or(0.0);
            den += w * s.duration_sec as f64 / 3_600.0;
        }
        let censored = open.iter().filter(|o| match bucket {
            Bucket::Sticky { regime, trade } => o.regime == regime && o.trade == trade,
            Bucket::Aggregate => true,
            Bucket::Churner => false,
        });
        // Open exits have been waiting since before the newest completion,
        // so they rank with the newest samples: recency weight 1.
        for o in censored {
            den += CENSORED_WEIGHT * o.age_sec.max(0) as f64 / 3_600.0;
        }
        (den > 0.0 && num.is_finite()).then(|| num / den)
    }

    /// The rate a position of `regime` x `trade` is measured against: its
    /// own bucket when it has completed samples, else the aggregate.
    #[must_use]
    pub fn rate_for(&self, regime: Regime, trade: TradeId, open: &[OpenSample]) -> Option<f64> {
        let own = Bucket::Sticky { regime, trade };
        if self.samples(own).is_empty() {
            self.profit_per_hour(Bucket::Aggregate, open)
        } else {
            self.profit_per_hour(own, open)
        }
    }

    /// Opportunity cost of a position (SPEC §7): `age_h x
    /// profit_per_hour(regime bucket, else aggregate) x entry_cost /
    /// total_capital`. Zero when no rate is known, the rate is not positive
    /// (capital earning nothing costs nothing to tie up) or the capital is
    /// not positive.
    #[must_use]
    pub fn opportunity_cost(&self, p: &PositionCost, open: &[OpenSample]) -> Decimal {
        let Some(rate) = self.rate_for(p.regime, p.trade, open) else {
            return Decimal::ZERO;
        };
        if rate <= 0.0 || p.total_capital <= Decimal::ZERO || p.age_sec <= 0 {
            return Decimal::ZERO;
        }
        let Some(rate) = Decimal::from_f64(rate) else {
            return Decimal::ZERO;
        };
        let age_h = Decimal::from(p.age_sec) / Decimal::from(3_600);
        (age_h * rate * p.entry_cost / p.total_capital)
            .round_dp_with_strategy(MONEY_DP, RoundingStrategy::MidpointAwayFromZero)
    }
}

/// What [`ThroughputSizer::opportunity_cost`] needs of a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositionCost {
    /// Regime in force now (its bucket is used).
    pub regime: Regime,
    /// Trade A or B.
    pub trade: TradeId,
    /// `now - entry_time`, seconds.
    pub age_sec: i64,
    /// The entry's cost (USD tied up).
    pub entry_cost: Decimal,
    /// The bot's total capital (USD).
    pub total_capital: Decimal,
}

/// `0.5^(rank / HALF_LIFE)`.
fn recency_weight(rank: usize) -> f64 {
    0.5_f64.powf(rank as f64 / HALF_LIFE)
}

/// One completed churner round trip's net (fed by the churner).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChurnerProfit {
    /// When it was earned, unix seconds.
    pub at: i64,
    /// Net profit (may be negative).
    pub net: Decimal,
}

/// Net of the churner round trips of the [`ETA_WINDOW_SEC`] up to `now`
/// (later ones, from a clock that stepped back, do not count).
pub fn net_in_window<'a>(
    churner: impl IntoIterator<Item = &'a ChurnerProfit>,
    now: i64,
) -> Decimal {
    churner
        .into_iter()
        .filter(|c| c.at <= now && now - c.at < ETA_WINDOW_SEC)
        .map(|c| c.net)
        .sum()
}

/// Time to clear `pending_need` at the churner's profit rate of the last
/// [`ETA_WINDOW_SEC`] (SPEC §7), in seconds, rounded up. `Some(0)` when
/// nothing is needed; `None` when the rate is zero or negative (unknown).
#[must_use]
pub fn eta_sec<'a>(
    pending_need: Decimal,
    churner: impl IntoIterator<Item = &'a ChurnerProfit>,
    now: i64,
) -> Option<i64> {
    if pending_need <= Decimal::ZERO {
        return Some(0);
    }
    let earned = net_in_window(churner, now);
    if earned <= Decimal::ZERO {
        return None;
    }
    // need / (earned / window) seconds.
    let secs = (pending_need * Decimal::from(ETA_WINDOW_SEC) / earned)
        .round_dp_with_strategy(0, RoundingStrategy::ToPositiveInfinity);
    secs.to_i64()
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    const RANGING_B: CycleKind = CycleKind::Sticky {
        regime: Regime::Ranging,
        trade: TradeId::B,
    };

    fn trip(net: Decimal, hours: i64) -> CycleSample {
        CycleSample {
            net,
            duration_sec: hours * 3_600,
        }
    }

    /// Proves: with equal-weight-free arithmetic (one sample) the rate is
    /// net / hours, and the newest sample outweighs an old one by the
    /// half-life rule (rank 100 weighs exactly half).
    #[test]
    fn rate_is_recency_weighted() {
        let mut s = ThroughputSizer::default();
        s.record(RANGING_B, trip(dec!(1), 2));
        let b = Bucket::Sticky {
            regime: Regime::Ranging,
            trade: TradeId::B,
        };
        assert_eq!(s.profit_per_hour(b, &[]), Some(0.5));
        // 100 more trips of 0 profit / 1 h: the first now has rank 100.
        for _ in 0..100 {
            s.record(RANGING_B, trip(dec!(0), 1));
        }
        let w: f64 = (0..100).map(recency_weight).sum();
        let expected = 0.5 / (w + 0.5 * 2.0);
        let got = s.profit_per_hour(b, &[]).unwrap();
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
        assert!((recency_weight(100) - 0.5).abs() < 1e-15);
    }

    /// Proves: a bucket keeps only the newest 500 trips, and the aggregate
    /// counts every sticky trip.
    #[test]
    fn window_keeps_newest_500() {
        let mut s = ThroughputSizer::default();
        for i in 0..600 {
            s.record(RANGING_B, trip(Decimal::from(i), 1));
        }
        let b = Bucket::Sticky {
            regime: Regime::Ranging,
            trade: TradeId::B,
        };
        assert_eq!(s.samples(b).len(), WINDOW);
        assert_eq!(s.samples(b)[0].net, dec!(599));
        assert_eq!(s.samples(b)[WINDOW - 1].net, dec!(100));
        assert_eq!(s.samples(Bucket::Aggregate).len(), WINDOW);
    }

    /// Proves: churner round trips feed only the churner bucket; sticky
    /// rates are untouched by them.
    #[test]
    fn churner_trips_never_enter_sticky_buckets() {
        let mut s = ThroughputSizer::default();
        s.record(RANGING_B, trip(dec!(1), 10));
        for _ in 0..50 {
            s.record(CycleKind::Churner, trip(dec!(0.05), 0));
        }
        assert_eq!(s.samples(Bucket::Aggregate).len(), 1);
        assert_eq!(s.samples(Bucket::Churner).len(), 50);
        assert_eq!(s.profit_per_hour(Bucket::Aggregate, &[]), Some(0.1));
        // Zero-duration trips: no rate can be divided out.
        assert_eq!(s.profit_per_hour(Bucket::Churner, &[]), None);
    }

    /// Proves: open exits are censored samples at half weight, only in
    /// their own bucket and the aggregate, never the churner's.
    #[test]
    fn open_exits_are_censored_at_half_weight() {
        let mut s = ThroughputSizer::default();
        s.record(RANGING_B, trip(dec!(1), 1));
        let open = [OpenSample {
            regime: Regime::Ranging,
            trade: TradeId::B,
            age_sec: 4 * 3_600,
        }];
        let b = Bucket::Sticky {
            regime: Regime::Ranging,
            trade: TradeId::B,
        };
        // 1 / (1 + 0.5 x 4) = 1/3.
        let r = s.profit_per_hour(b, &open).unwrap();
        assert!((r - 1.0 / 3.0).abs() < 1e-12);
        let other = Bucket::Sticky {
            regime: Regime::Bearish,
            trade: TradeId::B,
        };
        assert_eq!(s.profit_per_hour(other, &open), None);
        s.record(CycleKind::Churner, trip(dec!(1), 1));
        assert_eq!(s.profit_per_hour(Bucket::Churner, &open), Some(1.0));
    }

    /// Proves: the SPEC §7 formula on a worked example, the fallback to
    /// the aggregate for an empty regime bucket, and zero cost without a
    /// positive rate or capital.
    #[test]
    fn opportunity_cost_formula() {
        let mut s = ThroughputSizer::default();
        // 0.2 USD per hour in ranging x B.
        s.record(RANGING_B, trip(dec!(0.4), 2));
        let p = PositionCost {
            regime: Regime::Ranging,
            trade: TradeId::B,
            age_sec: 48 * 3_600,
            entry_cost: dec!(6),
            total_capital: dec!(120),
        };
        // 48 h x 0.2 x 6 / 120 = 0.48.
        assert_eq!(s.opportunity_cost(&p, &[]), dec!(0.48));
        // Bearish x A has no samples: the aggregate (same trip) is used.
        let q = PositionCost {
            regime: Regime::Bearish,
            trade: TradeId::A,
            ..p
        };
        assert_eq!(s.opportunity_cost(&q, &[]), dec!(0.48));
        let broke = PositionCost {
            total_capital: Decimal::ZERO,
            ..p
        };
        assert_eq!(s.opportunity_cost(&broke, &[]), Decimal::ZERO);
        let empty = ThroughputSizer::default();
        assert_eq!(empty.opportunity_cost(&p, &[]), Decimal::ZERO);
        let mut losing = ThroughputSizer::default();
        losing.record(RANGING_B, trip(dec!(-1), 1));
        assert_eq!(losing.opportunity_cost(&p, &[]), Decimal::ZERO);
    }

    /// Proves: ETA = need / (24 h churner profit per hour), rounded up;
    /// credits older than 24 h or in the future are ignored; unknown at a
    /// zero or negative rate; zero when nothing is needed.
    #[test]
    fn eta_from_rolling_churner_profit() {
        let now = 1_000_000;
        let c = [
            ChurnerProfit {
                at: now - 100,
                net: dec!(0.12),
            },
            ChurnerProfit {
                at: now - 3_600,
                net: dec!(0.12),
            },
            ChurnerProfit {
                at: now - ETA_WINDOW_SEC,
                net: dec!(50),
            },
            ChurnerProfit {
                at: now + 10,
                net: dec!(50),
            },
        ];
        // 0.24 per day = 0.01 per hour; need 0.03 -> 3 h.
        assert_eq!(eta_sec(dec!(0.03), &c, now), Some(3 * 3_600));
        assert_eq!(eta_sec(dec!(0.030001), &c, now), Some(10_801));
        assert_eq!(eta_sec(dec!(0), &c, now), Some(0));
        assert_eq!(eta_sec(dec!(1), &[], now), None);
        let loss = [ChurnerProfit {
            at: now,
            net: dec!(-1),
        }];
        assert_eq!(eta_sec(dec!(1), &loss, now), None);
    }

    /// Proves: the sizer serialises (it is persisted with the trader's
    /// state) and resumes identical.
    #[test]
    fn sizer_round_trips_through_json() {
        let mut s = ThroughputSizer::default();
        s.record(RANGING_B, trip(dec!(0.3), 3));
        s.record(CycleKind::Churner, trip(dec!(0.01), 1));
        let json = serde_json::to_string(&s).unwrap();
        let back: ThroughputSizer = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }
}
