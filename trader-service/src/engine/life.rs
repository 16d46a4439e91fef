//! A trade's "life": its cycles from one close at market to the next, and
//! the wait before a closed trade enters again.
//!
//! A close at market (an operator's, or healing's release of a locked pair)
//! ends a life: the market just walked through the trade's grid level, and
//! stepping straight back in usually buys the next lock against the same
//! move. So the trade waits `HEAL_RELEASE_BACKOFF_SEC` after a life that
//! made money, twice that after a losing one, and twice again for each
//! further losing life in a row (capped).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The longest release wait, whatever the count (180 days).
pub const MAX_RELEASE_WAIT_SEC: i64 = 180 * 86_400;

/// Net and losing-life count of one trade.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeLife {
    /// Net of the cycles booked since the last close at market.
    pub net: Decimal,
    /// Lives in a row that ended at market with a negative net.
    pub losing_in_a_row: u32,
}

impl TradeLife {
    /// Adds a booked cycle. When it was a close at market the life ends:
    /// returns the re-entry wait for `backoff_sec` (`None` when the
    /// backoff is off, the trade then follows the ordinary loss cooldown).
    pub fn book(&mut self, net: Decimal, closed_at_market: bool, backoff_sec: i64) -> Option<i64> {
        self.net += net;
        if !closed_at_market {
            return None;
        }
        if self.net < Decimal::ZERO {
            self.losing_in_a_row = self.losing_in_a_row.saturating_add(1);
        } else {
            self.losing_in_a_row = 0;
        }
        self.net = Decimal::ZERO;
        release_wait(backoff_sec, self.losing_in_a_row)
    }
}

/// Re-entry wait after a close at market that ended the `losing_in_a_row`-th
/// losing life in a row (0 when that life made money): `backoff_sec x
/// 2^n` capped at [`MAX_RELEASE_WAIT_SEC`]; `None` when the backoff is off.
#[must_use]
pub fn release_wait(backoff_sec: i64, losing_in_a_row: u32) -> Option<i64> {
    if backoff_sec <= 0 {
        return None;
    }
    let doublings = losing_in_a_row.min(20);
    Some(
        backoff_sec
            .saturating_mul(1_i64 << doublings)
            .min(MAX_RELEASE_WAIT_SEC),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    const WEEK: i64 = 604_800;

    #[test]
    fn the_wait_doubles_per_losing_life_and_is_capped() {
        assert_eq!(release_wait(0, 3), None, "off");
        assert_eq!(
            release_wait(WEEK, 0),
            Some(WEEK),
            "after a life that made money"
        );
        assert_eq!(release_wait(WEEK, 1), Some(2 * WEEK));
        assert_eq!(release_wait(WEEK, 2), Some(4 * WEEK));
        assert_eq!(release_wait(WEEK, 30), Some(MAX_RELEASE_WAIT_SEC));
    }

    #[test]
    fn a_life_ends_at_market_and_a_profitable_one_resets_the_count() {
        let mut life = TradeLife::default();
        assert_eq!(life.book(dec!(0.05), false, WEEK), None, "ordinary cycle");
        assert_eq!(
            life.book(dec!(-0.20), true, WEEK),
            Some(2 * WEEK),
            "lost 0.15"
        );
        assert_eq!(life.net, Decimal::ZERO);
        assert_eq!(life.book(dec!(-0.01), true, WEEK), Some(4 * WEEK));
        assert_eq!(life.book(dec!(0.30), false, WEEK), None);
        assert_eq!(life.book(dec!(-0.10), true, WEEK), Some(WEEK), "net +0.20");
        assert_eq!(life.losing_in_a_row, 0);
        assert_eq!(life.book(dec!(-0.10), true, 0), None, "backoff off");
    }
}
