//! Time sources. The paper exchange never reads the wall clock: backtests and
//! demos drive a [`SimClock`] so runs are reproducible.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::types::UnixMillis;

/// A source of "now" in unix milliseconds.
pub trait Clock: Send + Sync {
    /// The current time, unix milliseconds.
    fn now_ms(&self) -> UnixMillis;
}

/// Wall-clock time, for production.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> UnixMillis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// Simulated time that only moves when the caller says so. Cloning shares the
/// same instant, so the market driver and the exchange agree on "now".
#[derive(Debug, Clone, Default)]
pub struct SimClock {
    now: Arc<AtomicI64>,
}

impl SimClock {
    /// A clock frozen at `start_ms`.
    #[must_use]
    pub fn new(start_ms: UnixMillis) -> Self {
        Self {
            now: Arc::new(AtomicI64::new(start_ms)),
        }
    }

    /// Jumps to `now_ms`; time never runs backwards, so an earlier value is
    /// ignored.
    pub fn set(&self, now_ms: UnixMillis) {
        self.now.fetch_max(now_ms, Ordering::SeqCst);
    }

    /// Moves time forward by `delta_ms`.
    pub fn advance(&self, delta_ms: i64) {
        self.now.fetch_add(delta_ms.max(0), Ordering::SeqCst);
    }
}

impl Clock for SimClock {
    fn now_ms(&self) -> UnixMillis {
        self.now.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_clock_is_shared_and_monotonic() {
        let c = SimClock::new(1_000);
        let c2 = c.clone();
        c.advance(500);
        assert_eq!(c2.now_ms(), 1_500);
        c2.set(1_200);
        assert_eq!(c.now_ms(), 1_500, "never runs backwards");
        c2.set(9_000);
        assert_eq!(c.now_ms(), 9_000);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
    }
}
