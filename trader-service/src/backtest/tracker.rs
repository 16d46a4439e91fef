//! What the backtest measures about healing, sampled hourly from the
//! engine: which positions reached band stuck, when they healed (their exit
//! filled afterwards), how long that took, and how much capital sat stuck
//! for how long. Plain bookkeeping over samples; no I/O. A churner round
//! trip handed over to its slot is held like any position, so it is
//! sampled like one.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;

use crate::engine::{AgeBand, TradeId};

/// Which position a sample is of.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    /// A grid slot's trade cycle.
    Trade(u32, TradeId, u64),
    /// A churner round trip, by its ledger open key.
    Churn(String),
}

/// One open position at a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Which position.
    pub key: Key,
    /// Its band now.
    pub band: AgeBand,
    /// Seconds since its entry filled.
    pub age_sec: i64,
    /// What its entry cost.
    pub cost: Decimal,
}

/// Hourly samples of open positions, folded into the report's figures.
#[derive(Debug, Default)]
pub struct HealTracker {
    /// First sample time each position was seen stuck or worse.
    stuck_since: BTreeMap<Key, i64>,
    /// Positions that reached stuck and later closed, with the time it took.
    healed: Vec<i64>,
    /// Keys already counted as healed.
    closed: BTreeSet<Key>,
    /// Sum over samples of hours x entry cost of positions stuck or worse.
    stuck_capital_hours: Decimal,
    /// The part of it in handed-over churner round trips.
    stuck_capital_hours_churner: Decimal,
    /// Longest time a position was open.
    longest_open: i64,
}

impl HealTracker {
    /// Folds one sample at `now`, `hours` after the previous one, of every
    /// open position.
    pub fn sample(&mut self, now: i64, hours: Decimal, open: &[Held]) {
        let mut still: BTreeSet<&Key> = BTreeSet::new();
        for p in open {
            still.insert(&p.key);
            self.longest_open = self.longest_open.max(p.age_sec);
            if p.band >= AgeBand::Stuck {
                self.stuck_since.entry(p.key.clone()).or_insert(now);
                self.stuck_capital_hours += hours * p.cost;
                if matches!(p.key, Key::Churn(_)) {
                    self.stuck_capital_hours_churner += hours * p.cost;
                }
            }
        }
        let gone: Vec<Key> = self
            .stuck_since
            .keys()
            .filter(|k| !still.contains(k) && !self.closed.contains(*k))
            .cloned()
            .collect();
        for k in gone {
            if let Some(since) = self.stuck_since.get(&k) {
                self.healed.push(now - since);
            }
            self.closed.insert(k);
        }
    }

    /// Positions seen in band stuck or worse.
    #[must_use]
    pub fn reached_stuck(&self) -> usize {
        self.stuck_since.len()
    }

    /// Of those, the ones whose exit filled afterwards.
    #[must_use]
    pub fn healed(&self) -> usize {
        self.healed.len()
    }

    /// Of those, the ones still open.
    #[must_use]
    pub fn still_stuck(&self) -> usize {
        self.stuck_since.len() - self.closed.len()
    }

    /// Hours x entry cost spent stuck or worse.
    #[must_use]
    pub fn stuck_capital_hours(&self) -> Decimal {
        self.stuck_capital_hours
    }

    /// Of [`Self::stuck_capital_hours`], the part in handed-over churner
    /// round trips.
    #[must_use]
    pub fn stuck_capital_hours_churner(&self) -> Decimal {
        self.stuck_capital_hours_churner
    }

    /// Longest open time seen, seconds.
    #[must_use]
    pub fn longest_open(&self) -> i64 {
        self.longest_open
    }

    /// The `q`-quantile (0..=1, nearest rank) of time to heal, seconds;
    /// `None` when nothing healed.
    #[must_use]
    pub fn time_to_heal(&self, q: f64) -> Option<i64> {
        if self.healed.is_empty() {
            return None;
        }
        let mut v = self.healed.clone();
        v.sort_unstable();
        let rank = (q * v.len() as f64).ceil().max(1.0) as usize;
        v.get(rank.min(v.len()) - 1).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn pos(cycle: u64, band: AgeBand) -> Held {
        Held {
            key: Key::Trade(0, TradeId::B, cycle),
            band,
            age_sec: 10,
            cost: dec!(5),
        }
    }

    #[test]
    fn stuck_positions_that_close_count_as_healed_with_their_time() {
        let mut t = HealTracker::default();
        t.sample(
            0,
            dec!(1),
            &[pos(1, AgeBand::Stuck), pos(2, AgeBand::Fresh)],
        );
        t.sample(3600, dec!(1), &[pos(1, AgeBand::WriteOff)]);
        t.sample(7200, dec!(1), &[]);
        assert_eq!((t.reached_stuck(), t.healed(), t.still_stuck()), (1, 1, 0));
        assert_eq!(t.time_to_heal(0.5), Some(7200));
        assert_eq!(t.stuck_capital_hours(), dec!(10));
    }

    #[test]
    fn a_handed_over_churner_position_is_held_like_any_other() {
        let mut t = HealTracker::default();
        let churn = Held {
            key: Key::Churn("churn:T1".into()),
            band: AgeBand::Stuck,
            age_sec: 100,
            cost: dec!(8),
        };
        t.sample(0, dec!(2), &[churn.clone(), pos(1, AgeBand::Stuck)]);
        t.sample(3600, dec!(1), &[pos(1, AgeBand::Stuck)]);
        assert_eq!(t.stuck_capital_hours(), dec!(31));
        assert_eq!(t.stuck_capital_hours_churner(), dec!(16), "2 h x 8");
        assert_eq!((t.reached_stuck(), t.healed()), (2, 1));
    }
}
