//! The simulator's single notion of "now": when each candle is played and
//! what time every reply reports. Kept pure (the caller passes the real time
//! elapsed) so the schedule can be tested without sleeping.
//!
//! A market source's candles are shifted to the present: the first candle
//! opens when the simulator starts, and candle `i` opens at
//! `start + (t_i - t_0)`. A candle is fed to the book once the simulated
//! clock reaches its close, so every execution time it produces is already
//! in the past when a client can see it. With a speed the clock runs at
//! `speed` simulated seconds per real second; without one (manual mode) it
//! only moves when a candle is stepped in.

use crate::pair::Candle;

/// The simulator's schedule. All times are unix milliseconds unless named
/// `_secs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    start_ms: i64,
    speed: Option<u32>,
    interval_secs: i64,
    /// Seconds added to every source candle's time; fixed by the first
    /// candle seen.
    offset_secs: Option<i64>,
    /// Simulated milliseconds skipped ahead by manual steps while running.
    skipped_ms: i64,
}

impl Timeline {
    /// A timeline starting at `start_ms` (truncated to whole seconds, the
    /// resolution of candle times), moving at `speed` simulated seconds per
    /// real second (`None`: manual), for candles `interval_secs` long.
    #[must_use]
    pub fn new(start_ms: i64, speed: Option<u32>, interval_secs: i64) -> Self {
        Self {
            start_ms: start_ms - start_ms.rem_euclid(1000),
            speed: speed.filter(|s| *s > 0),
            interval_secs: interval_secs.max(1),
            offset_secs: None,
            skipped_ms: 0,
        }
    }

    /// When the clock started.
    #[must_use]
    pub fn start_ms(&self) -> i64 {
        self.start_ms
    }

    /// True when only manual steps move the clock.
    #[must_use]
    pub fn is_manual(&self) -> bool {
        self.speed.is_none()
    }

    /// Simulated time after `real_elapsed_ms` of real time, or `None` in
    /// manual mode (the clock is wherever the last step left it).
    #[must_use]
    pub fn target_ms(&self, real_elapsed_ms: i64) -> Option<i64> {
        let speed = i64::from(self.speed?);
        Some(
            self.start_ms
                .saturating_add(real_elapsed_ms.max(0).saturating_mul(speed))
                .saturating_add(self.skipped_ms),
        )
    }

    /// Shifts a source candle into simulated time. The first candle fixes
    /// the offset so that it opens at the start.
    pub fn shift(&mut self, c: Candle) -> Candle {
        let start_secs = self.start_ms / 1000;
        let offset = *self.offset_secs.get_or_insert(start_secs - c.time);
        Candle {
            time: c.time.saturating_add(offset),
            ..c
        }
    }

    /// When an already shifted candle has closed and may be played.
    #[must_use]
    pub fn due_ms(&self, shifted: &Candle) -> i64 {
        shifted
            .time
            .saturating_add(self.interval_secs)
            .saturating_mul(1000)
    }

    /// Records that a manual step while running moved the clock to
    /// `clock_ms`, ahead of where `real_elapsed_ms` puts it, so the running
    /// clock carries on from there instead of pausing until it catches up.
    pub fn skip_to(&mut self, clock_ms: i64, real_elapsed_ms: i64) {
        if let Some(target) = self.target_ms(real_elapsed_ms)
            && clock_ms > target
        {
            self.skipped_ms += clock_ms - target;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn candle(time: i64) -> Candle {
        Candle {
            time,
            open: dec!(0.1),
            high: dec!(0.1),
            low: dec!(0.1),
            close: dec!(0.1),
            volume: dec!(1),
        }
    }

    #[test]
    fn csv_history_is_shifted_to_the_present_by_one_offset() {
        // 2026-11-29 06:00:00.750 UTC, replaying 2022 candles.
        let mut t = Timeline::new(1_795_932_000_750, Some(3000), 300);
        assert_eq!(t.start_ms(), 1_795_932_000_000, "whole seconds");
        let first = t.shift(candle(1_640_995_200));
        let later = t.shift(candle(1_640_995_200 + 3 * 300));
        assert_eq!(first.time, 1_795_932_000);
        assert_eq!(later.time, 1_795_932_000 + 900);
        assert_eq!(t.due_ms(&first), 1_795_932_300_000);
    }

    #[test]
    fn running_clock_moves_at_speed_and_manual_clock_does_not() {
        let mut t = Timeline::new(10_000, Some(60), 60);
        assert_eq!(t.target_ms(0), Some(10_000));
        assert_eq!(t.target_ms(1_000), Some(70_000));
        assert_eq!(t.target_ms(-5), Some(10_000), "never before the start");
        t.skip_to(200_000, 1_000);
        assert_eq!(t.target_ms(1_000), Some(200_000));
        assert_eq!(t.target_ms(2_000), Some(260_000));
        t.skip_to(100_000, 2_000);
        assert_eq!(t.target_ms(2_000), Some(260_000), "never backwards");

        let mut manual = Timeline::new(10_000, None, 60);
        assert!(manual.is_manual());
        assert_eq!(manual.target_ms(1_000_000), None);
        manual.skip_to(99_000, 5);
        assert_eq!(manual.target_ms(5), None);
        assert!(
            Timeline::new(0, Some(0), 60).is_manual(),
            "speed 0 is manual"
        );
    }
}
