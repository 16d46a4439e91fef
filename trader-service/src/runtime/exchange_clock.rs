//! The loop's "now" on the exchange's clock.
//!
//! Fills, orders and candles are stamped by the exchange, so ages and age
//! bands are only right when "now" is read on the same clock. A Kraken
//! whose clock differs from ours, or a simulator replaying at many times
//! real speed, would otherwise age positions against the wrong clock. The
//! runtime keeps one offset (exchange time - local time), measured at start
//! and refreshed every [`REFRESH_EVERY_LOOPS`] loops, and takes
//! `local + offset` as the loop's "now". [`ExchangeClock`] holds that rule;
//! only [`ExchangeClock::loop_now`] does I/O.

use crate::exchange::{Clock, Exchange, ExchangeError, UnixMillis};

/// Loops between two measurements of a steady offset.
pub const REFRESH_EVERY_LOOPS: u32 = 20;

/// An offset change larger than this is logged, and the clock is measured
/// again on the next loop (it is drifting, e.g. a simulator running faster
/// than real time). Kraken's `Time` has whole-second resolution, so smaller
/// changes are noise.
pub const SIGNIFICANT_CHANGE_MS: i64 = 2_000;

/// What one measurement of the exchange's clock did to the offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measurement {
    /// The exchange publishes no clock: the local clock stays in use and
    /// it is not asked again.
    Unsupported,
    /// The call failed: the last offset stays in use.
    Failed,
    /// The offset is now `offset_ms`; `previous` is the one it replaced
    /// (`None` on the first measurement).
    Measured {
        /// Exchange time - local time, milliseconds.
        offset_ms: i64,
        /// The offset before, if one was known.
        previous: Option<i64>,
    },
}

impl Measurement {
    /// True when the change is worth a log line: the first measurement, or
    /// a change larger than [`SIGNIFICANT_CHANGE_MS`].
    #[must_use]
    pub fn is_significant(&self) -> bool {
        match *self {
            Self::Measured {
                offset_ms,
                previous,
            } => previous.is_none_or(|p| (offset_ms - p).abs() > SIGNIFICANT_CHANGE_MS),
            Self::Unsupported | Self::Failed => false,
        }
    }
}

/// The offset between the exchange's clock and the local one, and when to
/// measure it again. Pure: the caller passes local times and the exchange's
/// answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeClock {
    offset_ms: Option<i64>,
    loops_since: u32,
    drifting: bool,
    unsupported: bool,
    last_now: i64,
    last_local: Option<i64>,
}

impl Default for ExchangeClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ExchangeClock {
    /// Not yet measured: due at once, offset zero until then.
    #[must_use]
    pub fn new() -> Self {
        Self {
            offset_ms: None,
            loops_since: REFRESH_EVERY_LOOPS,
            drifting: false,
            unsupported: false,
            last_now: i64::MIN,
            last_local: None,
        }
    }

    /// The offset in use (exchange - local, milliseconds), if measured.
    #[must_use]
    pub fn offset_ms(&self) -> Option<i64> {
        self.offset_ms
    }

    /// True when the next loop should measure the exchange's clock first.
    #[must_use]
    pub fn due(&self) -> bool {
        !self.unsupported && (self.drifting || self.loops_since >= REFRESH_EVERY_LOOPS)
    }

    /// Counts one loop that did not measure.
    pub fn skip(&mut self) {
        self.loops_since = self.loops_since.saturating_add(1);
    }

    /// Records a measurement taken at local time `local_ms` (the midpoint
    /// of the call). A failure keeps the last offset and waits a full
    /// period before asking again.
    pub fn record(
        &mut self,
        local_ms: i64,
        answer: Result<Option<UnixMillis>, &ExchangeError>,
    ) -> Measurement {
        self.loops_since = 0;
        match answer {
            Err(_) => {
                self.drifting = false;
                Measurement::Failed
            }
            Ok(None) => {
                self.unsupported = true;
                Measurement::Unsupported
            }
            Ok(Some(exchange_ms)) => {
                let offset_ms = exchange_ms.saturating_sub(local_ms);
                let previous = self.offset_ms.replace(offset_ms);
                let m = Measurement::Measured {
                    offset_ms,
                    previous,
                };
                // The first offset is checked by a second one on the next
                // loop: only two measurements tell a clock that runs faster
                // than ours (a simulator) from a steady one. Without that
                // check a drifting clock went unseen for a whole refresh
                // period, and "now" lagged it by that much.
                self.drifting = m.is_significant();
                m
            }
        }
    }

    /// "Now" on the exchange's clock for local time `local_ms`. Never runs
    /// backwards, even when a new offset is smaller than the last one.
    pub fn now(&mut self, local_ms: i64) -> i64 {
        self.last_local = Some(local_ms);
        let now = local_ms.saturating_add(self.offset_ms.unwrap_or(0));
        self.last_now = self.last_now.max(now);
        self.last_now
    }

    /// True when local time `local_ms` is more than
    /// [`SIGNIFICANT_CHANGE_MS`] behind the last one "now" was read at: the
    /// machine's clock was set back. The offset must then be measured
    /// again before it is used; with the old one, "now" (which never runs
    /// backwards) would stand still until the next scheduled measurement,
    /// up to [`REFRESH_EVERY_LOOPS`] loops, and no position would age.
    #[must_use]
    pub fn stepped_back(&self, local_ms: i64) -> bool {
        self.last_local
            .is_some_and(|last| local_ms.saturating_add(SIGNIFICANT_CHANGE_MS) < last)
    }

    /// The loop's "now": measures the exchange's clock first when due or
    /// when the local clock stepped back (a failure is logged and the last
    /// offset kept), else counts the loop.
    pub async fn loop_now<E: Exchange, C: Clock>(&mut self, exchange: &E, clock: &C) -> i64 {
        let local_now = clock.now_ms();
        let stepped_back = !self.unsupported && self.stepped_back(local_now);
        if stepped_back {
            tracing::warn!(
                local_ms = local_now,
                last_local_ms = self.last_local,
                "the local clock stepped back: measuring the exchange's clock again"
            );
        }
        if self.due() || stepped_back {
            let before = clock.now_ms();
            let answer = exchange.server_time().await;
            let after = clock.now_ms();
            let local = before + (after - before) / 2;
            let m = self.record(local, answer.as_ref().copied());
            match (m, &answer) {
                (Measurement::Failed, Err(e)) => tracing::warn!(
                    error = %e,
                    offset_ms = self.offset_ms,
                    "exchange time unavailable: keeping the last clock offset"
                ),
                (Measurement::Unsupported, _) => {
                    tracing::info!("exchange publishes no clock: ages use the local clock");
                }
                (
                    Measurement::Measured {
                        offset_ms,
                        previous,
                    },
                    _,
                ) if m.is_significant() => tracing::info!(
                    offset_ms,
                    previous_ms = previous,
                    "exchange clock offset changed: ages follow the exchange's clock"
                ),
                _ => {}
            }
        } else {
            self.skip();
        }
        self.now(clock.now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(c: &mut ExchangeClock, local: i64, exchange: i64) -> Measurement {
        c.record(local, Ok(Some(exchange)))
    }

    #[test]
    fn a_local_clock_stepping_back_is_seen_and_a_new_offset_moves_now_on() {
        let mut c = ExchangeClock::new();
        measured(&mut c, 1_000_000, 1_000_000);
        assert_eq!(c.now(1_000_000), 1_000_000);
        assert!(!c.stepped_back(1_000_000 - SIGNIFICANT_CHANGE_MS), "noise");
        let back = 1_000_000 - 3_600_000;
        assert!(c.stepped_back(back), "an hour back");
        assert_eq!(c.now(back), 1_000_000, "the old offset: now stands still");
        measured(&mut c, back + 500, 1_000_500);
        assert_eq!(c.now(back + 500), 1_000_500, "measured again: now moves on");
        assert!(!c.stepped_back(back + 600));
    }

    /// Proves, through `loop_now` against an exchange with its own clock:
    /// when the machine's clock is set back an hour between two scheduled
    /// measurements, the loop measures again at once and "now" keeps
    /// following the exchange instead of standing still.
    #[tokio::test]
    async fn the_loop_measures_again_when_the_local_clock_steps_back() {
        use crate::exchange::SimClock;
        use crate::exchange::paper::{PaperConfig, PaperExchange};
        let exchange_clock = SimClock::new(1_640_995_200_000);
        let config = PaperConfig {
            max_open_orders: 10,
            ..crate::exchange::paper::test_config()
        };
        let exchange = PaperExchange::new(config, exchange_clock.clone());
        // The machine's clock, which (unlike SimClock) can be set back.
        struct Machine(std::sync::atomic::AtomicI64);
        impl Machine {
            fn advance(&self, delta_ms: i64) {
                self.0
                    .fetch_add(delta_ms, std::sync::atomic::Ordering::SeqCst);
            }
        }
        impl Clock for Machine {
            fn now_ms(&self) -> UnixMillis {
                self.0.load(std::sync::atomic::Ordering::SeqCst)
            }
        }
        let local = Machine(std::sync::atomic::AtomicI64::new(1_640_995_200_000));
        let mut c = ExchangeClock::new();
        assert_eq!(c.loop_now(&exchange, &local).await, 1_640_995_200_000);
        exchange_clock.advance(1_000);
        local.advance(1_000);
        assert_eq!(c.loop_now(&exchange, &local).await, 1_640_995_201_000);
        assert!(!c.due(), "the next scheduled measurement is loops away");
        exchange_clock.advance(1_000);
        local.advance(-3_600_000);
        assert_eq!(
            c.loop_now(&exchange, &local).await,
            1_640_995_202_000,
            "measured again: now follows the exchange"
        );
        exchange_clock.advance(1_000);
        local.advance(1_000);
        assert_eq!(c.loop_now(&exchange, &local).await, 1_640_995_203_000);
    }

    #[test]
    fn due_at_start_then_every_refresh_period() {
        let mut c = ExchangeClock::new();
        assert!(c.due());
        assert_eq!(c.now(1_000), 1_000, "local time until measured");
        measured(&mut c, 1_000, 61_000);
        assert!(c.due(), "the first offset is checked on the next loop");
        measured(&mut c, 6_000, 66_000);
        assert!(!c.due(), "steady: then every refresh period");
        for _ in 0..REFRESH_EVERY_LOOPS - 1 {
            c.skip();
            assert!(!c.due());
        }
        c.skip();
        assert!(c.due());
    }

    #[test]
    fn now_is_local_plus_offset() {
        let mut c = ExchangeClock::new();
        let m = measured(&mut c, 10_000, 3_610_000);
        assert_eq!(
            m,
            Measurement::Measured {
                offset_ms: 3_600_000,
                previous: None
            }
        );
        assert!(m.is_significant(), "the first offset is logged");
        assert_eq!(c.offset_ms(), Some(3_600_000));
        assert_eq!(c.now(12_000), 3_612_000);
        // An exchange behind the local clock gives a negative offset.
        let mut behind = ExchangeClock::new();
        measured(&mut behind, 10_000, 4_000);
        assert_eq!(behind.now(20_000), 14_000);
    }

    #[test]
    fn a_failed_call_keeps_the_last_offset_and_waits_a_period() {
        let mut c = ExchangeClock::new();
        measured(&mut c, 0, 5_000);
        let e = ExchangeError::Retryable {
            message: "EService:Unavailable".into(),
        };
        assert_eq!(c.record(100, Err(&e)), Measurement::Failed);
        assert!(!Measurement::Failed.is_significant());
        assert_eq!(c.offset_ms(), Some(5_000));
        assert_eq!(c.now(1_000), 6_000);
        assert!(!c.due(), "not asked again on the next loop after a failure");
        // A failure before any measurement leaves the local clock in use.
        let mut fresh = ExchangeClock::new();
        assert_eq!(fresh.record(0, Err(&e)), Measurement::Failed);
        assert_eq!(fresh.offset_ms(), None);
        assert_eq!(fresh.now(7), 7);
    }

    #[test]
    fn an_exchange_without_a_clock_is_not_asked_again() {
        let mut c = ExchangeClock::new();
        assert_eq!(c.record(0, Ok(None)), Measurement::Unsupported);
        for _ in 0..3 * REFRESH_EVERY_LOOPS {
            c.skip();
        }
        assert!(!c.due());
        assert_eq!(c.now(42), 42);
    }

    /// Proves: a clock running faster than ours from the start (a
    /// simulator at 750x) is seen on the second loop and measured every
    /// loop, so "now" never lags it by more than one loop.
    #[test]
    fn a_clock_drifting_from_the_start_is_measured_every_loop() {
        let mut c = ExchangeClock::new();
        measured(&mut c, 0, 3_600_000);
        assert!(c.due());
        for i in 1..5_i64 {
            // 5 s of ours are an hour of the simulator's.
            measured(&mut c, i * 5_000, 3_600_000 + i * 3_750_000);
            assert!(c.due(), "still drifting at loop {i}");
        }
    }

    #[test]
    fn small_changes_are_noise_large_ones_are_logged_and_remeasured() {
        let mut c = ExchangeClock::new();
        measured(&mut c, 0, 10_000);
        measured(&mut c, 1, 10_001);
        c.skip();
        // Whole-second resolution: a change of a second is not significant.
        let m = measured(&mut c, 50_000, 59_000);
        assert!(!m.is_significant());
        assert!(!c.due());
        // A fast clock (a simulator at 3000x) moved an hour: measured
        // again on the very next loop while it keeps drifting.
        let m = measured(&mut c, 60_000, 3_669_000);
        assert!(m.is_significant());
        assert!(c.due());
        let m = measured(&mut c, 60_100, 3_669_100);
        assert!(!m.is_significant());
        assert!(!c.due(), "steady again: back to the refresh period");
    }

    #[test]
    fn now_never_runs_backwards_when_the_offset_shrinks() {
        let mut c = ExchangeClock::new();
        measured(&mut c, 0, 10_000);
        assert_eq!(c.now(1_000), 11_000);
        measured(&mut c, 1_000, 9_000);
        assert_eq!(c.now(1_500), 11_000, "held until local + offset catches up");
        assert_eq!(c.now(4_000), 12_000);
    }
}
