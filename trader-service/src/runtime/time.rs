//! Wall-clock instants as plain data.
//!
//! Logic never reads the clock: the async runtime samples it once per step
//! and passes it in, so every rule (back-off, ages) is deterministic and
//! testable with a fake `now`, and backtests replay at any speed.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// An instant as milliseconds since the Unix epoch (UTC), the unit stored in
/// SQLite `INTEGER` columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    /// This instant moved forward by `delay`, saturating instead of
    /// overflowing so a huge back-off can never wrap into the past.
    #[must_use]
    pub fn saturating_add(self, delay: Duration) -> Self {
        let millis = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(millis))
    }

    /// Time elapsed from `earlier` to `self`; zero if `earlier` is in the
    /// future (clock skew must not produce negative ages).
    #[must_use]
    pub fn since(self, earlier: Self) -> Duration {
        let millis = self.0.saturating_sub(earlier.0).max(0);
        Duration::from_millis(u64::try_from(millis).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_saturates_and_since_never_negative() {
        assert_eq!(
            UnixMillis(i64::MAX - 1).saturating_add(Duration::from_secs(1)),
            UnixMillis(i64::MAX)
        );
        assert_eq!(
            UnixMillis(1_000).saturating_add(Duration::from_millis(1_500)),
            UnixMillis(2_500)
        );
        assert_eq!(UnixMillis(5).since(UnixMillis(10)), Duration::ZERO);
        assert_eq!(
            UnixMillis(2_000).since(UnixMillis(500)),
            Duration::from_millis(1_500)
        );
    }
}
