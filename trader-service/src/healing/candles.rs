//! Market history for the healing decisions: turns the runtime's stream of
//! `(time, price)` observations (1-minute candles in a backtest, one price
//! per loop live) into closed bars and bounded windows of returns.
//!
//! - 5-minute bars (bucket `time / 300`) give the log returns the regime
//!   detector is fitted on (SPEC §12);
//! - 1-minute bars (bucket `time / 60`) give the absolute 1-minute moves the
//!   volatility-scaled profit target compares (recent hour against the
//!   long-run baseline).
//!
//! A bar closes when the first observation of a later bucket arrives; its
//! close is the last price seen in its bucket. **Gaps are skipped, never
//! filled**: a return is only produced between two *adjacent* buckets. A
//! missing bar is not carried forward as a zero return (that would invent a
//! calm market and pull the detector towards "ranging" and the target
//! towards its floor after every outage), and the jump across a gap is not
//! counted as one bar's return either (it spans several bars, so it would
//! look like a huge move). After a gap the chain simply restarts.
//!
//! Everything is O(1) amortized per observation and serde-serialisable;
//! the runtime persists the 5-minute side ([`RegimeBars`] and the return
//! window) with the regime detector
//! ([`crate::healing::regime_persist`]). Prices are converted to `f64`
//! here because these are statistics, never money.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::healing::config::HealingConfig;
use crate::healing::regime_persist::RestoreError;

/// Seconds in a regime bar.
pub const REGIME_BAR_SEC: i64 = 300;
/// Seconds in a volatility bar.
pub const MOVE_BAR_SEC: i64 = 60;

/// An observation the history refuses; the history is left unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ObserveError {
    /// Prices must be strictly positive (a log return of zero is undefined).
    #[error("price {price} at {at} is not positive")]
    NonPositivePrice {
        /// The observation time.
        at: i64,
        /// The rejected price.
        price: Decimal,
    },
    /// Observations must not go back in time.
    #[error("observation at {at} is older than the last one at {last}")]
    OutOfOrder {
        /// The observation time.
        at: i64,
        /// The newest time already observed.
        last: i64,
    },
}

/// A bounded window of the newest `cap` values with their running sum.
///
/// Stored as a `Vec` that is compacted once it holds `2 x cap` values, so
/// pushing is O(1) amortized and the window is always one contiguous slice.
/// The sum is recomputed exactly at each compaction, so floating-point drift
/// cannot accumulate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollingWindow {
    cap: usize,
    buf: Vec<f64>,
    sum: f64,
}

impl RollingWindow {
    /// An empty window keeping at most `cap` (at least 1) values.
    #[must_use]
    pub fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        Self {
            cap,
            buf: Vec::with_capacity(2 * cap),
            sum: 0.0,
        }
    }

    /// Appends `x`, dropping the oldest value once full.
    pub fn push(&mut self, x: f64) {
        self.buf.push(x);
        self.sum += x;
        let len = self.buf.len();
        if len > self.cap {
            self.sum -= self.buf[len - 1 - self.cap];
        }
        if len >= 2 * self.cap {
            self.buf.drain(..len - self.cap);
            self.sum = self.buf.iter().sum();
        }
    }

    /// The window, oldest first.
    #[must_use]
    pub fn as_slice(&self) -> &[f64] {
        &self.buf[self.buf.len().saturating_sub(self.cap)..]
    }

    /// Values held (at most the capacity).
    #[must_use]
    pub fn len(&self) -> usize {
        self.buf.len().min(self.cap)
    }

    /// True before the first push.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Mean of the window, `None` when empty.
    #[must_use]
    pub fn mean(&self) -> Option<f64> {
        let n = self.len();
        (n > 0).then(|| self.sum / n as f64)
    }
}

/// A closed bar's log return, stamped with the bar's end time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BarReturn {
    /// End of the bar (unix seconds).
    pub at: i64,
    /// `ln(close / previous close)`.
    pub log_return: f64,
}

/// Builds closed bars of one period from observations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BarBuilder {
    period: i64,
    /// Bucket and last price of the bar still open.
    open: Option<(i64, f64)>,
    /// Bucket and close of the last closed bar.
    prev: Option<(i64, f64)>,
}

impl BarBuilder {
    fn new(period: i64) -> Self {
        Self {
            period,
            open: None,
            prev: None,
        }
    }

    /// Feeds one observation; returns the return of the bar it closed, if
    /// that bar directly follows the one before it.
    fn observe(&mut self, at: i64, price: f64) -> Option<BarReturn> {
        let bucket = at.div_euclid(self.period);
        match self.open {
            Some((b, _)) if b == bucket => {
                self.open = Some((bucket, price));
                None
            }
            Some((b, close)) => {
                let ret = match self.prev {
                    Some((pb, pc)) if pb + 1 == b => Some(BarReturn {
                        at: (b + 1) * self.period,
                        log_return: (close / pc).ln(),
                    }),
                    _ => None,
                };
                self.prev = Some((b, close));
                self.open = Some((bucket, price));
                ret
            }
            None => {
                self.open = Some((bucket, price));
                None
            }
        }
    }
}

/// The 5-minute side of a [`MarketHistory`] apart from its return window:
/// where the bar chain stands and how many returns it has produced. With the
/// window it is everything the regime detector needs to continue after a
/// restart (see [`crate::healing::regime_persist`]); the 1-minute moves are
/// not part of it and warm up again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegimeBars {
    last_at: Option<i64>,
    bars_5m: BarBuilder,
    returns_5m_total: u64,
    last_return_at: Option<i64>,
}

impl RegimeBars {
    /// 5-minute returns produced before these bars were taken.
    #[must_use]
    pub fn returns_total(&self) -> u64 {
        self.returns_5m_total
    }

    /// Refuses bars no [`MarketHistory`] could have produced: another bar
    /// length, a non-positive or non-finite price, a chain going backwards.
    fn check(&self) -> Result<(), RestoreError> {
        let b = &self.bars_5m;
        if b.period != REGIME_BAR_SEC {
            return Err(RestoreError::Inconsistent { what: "bar length" });
        }
        let mut prices = [b.open, b.prev].into_iter().flatten().map(|(_, p)| p);
        if prices.any(|p| !(p.is_finite() && p > 0.0)) {
            return Err(RestoreError::NonFinite { what: "bar price" });
        }
        let ordered = match (b.prev, b.open) {
            (Some((pb, _)), Some((ob, _))) => pb < ob,
            (Some(_), None) => false,
            _ => true,
        };
        let observed = match (b.open, self.last_at) {
            (Some((ob, _)), Some(at)) => at.div_euclid(REGIME_BAR_SEC) == ob,
            (None, None) => true,
            _ => false,
        };
        let returned = match (self.last_return_at, b.prev) {
            (Some(at), Some((pb, _))) => at <= (pb + 1) * REGIME_BAR_SEC,
            (Some(_), None) => false,
            (None, _) => self.returns_5m_total == 0,
        };
        if ordered && observed && returned {
            Ok(())
        } else {
            Err(RestoreError::Inconsistent {
                what: "5-minute bars",
            })
        }
    }
}

/// Recent and baseline mean absolute 1-minute log moves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MoveStats {
    /// Mean |1-minute log return| over the recent window.
    pub recent: f64,
    /// Mean |1-minute log return| over the baseline window.
    pub baseline: f64,
    /// Moves in the baseline window.
    pub samples: usize,
}

/// What one observation changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// The 5-minute return this observation closed, if any: feed the
    /// regime detector ([`crate::healing::RegimeDetector::update`]).
    pub regime_return: Option<BarReturn>,
    /// The 1-minute move this observation closed, if any.
    pub move_return: Option<BarReturn>,
}

/// Bars and return windows derived from market observations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketHistory {
    last_at: Option<i64>,
    bars_5m: BarBuilder,
    bars_1m: BarBuilder,
    returns_5m: RollingWindow,
    returns_5m_total: u64,
    last_return_at: Option<i64>,
    moves_recent: RollingWindow,
    moves_baseline: RollingWindow,
    /// 1-minute moves produced since the history began.
    #[serde(default)]
    moves_total: u64,
    baseline_min: usize,
}

impl MarketHistory {
    /// An empty history sized by the (validated) config: the 5-minute window
    /// holds `regime.window` returns, the move windows `target.*_minutes`.
    #[must_use]
    pub fn new(config: &HealingConfig) -> Self {
        Self {
            last_at: None,
            bars_5m: BarBuilder::new(REGIME_BAR_SEC),
            bars_1m: BarBuilder::new(MOVE_BAR_SEC),
            returns_5m: RollingWindow::new(config.regime.window),
            returns_5m_total: 0,
            last_return_at: None,
            moves_recent: RollingWindow::new(config.target.recent_minutes),
            moves_baseline: RollingWindow::new(config.target.baseline_minutes),
            moves_total: 0,
            baseline_min: config.target.baseline_min_minutes,
        }
    }

    /// Records the market price at `at` (unix seconds). Call it with every
    /// price the runtime sees (each 1-minute candle's close in a backtest,
    /// the ticker each loop live), then call
    /// [`crate::healing::RegimeDetector::update`] with this history.
    ///
    /// # Errors
    /// A non-positive price or a time older than the last observation is
    /// refused and changes nothing.
    pub fn observe(&mut self, at: i64, price: Decimal) -> Result<Observed, ObserveError> {
        if price <= Decimal::ZERO {
            return Err(ObserveError::NonPositivePrice { at, price });
        }
        if let Some(last) = self.last_at.filter(|&last| at < last) {
            return Err(ObserveError::OutOfOrder { at, last });
        }
        let p = price.to_f64().unwrap_or(f64::NAN);
        if !(p.is_finite() && p > 0.0) {
            // Unreachable for a positive Decimal; refuse rather than poison.
            return Err(ObserveError::NonPositivePrice { at, price });
        }
        self.last_at = Some(at);
        let regime_return = self.bars_5m.observe(at, p);
        if let Some(r) = regime_return {
            self.returns_5m.push(r.log_return);
            self.returns_5m_total += 1;
            self.last_return_at = Some(r.at);
        }
        let move_return = self.bars_1m.observe(at, p);
        if let Some(m) = move_return {
            let abs = m.log_return.abs();
            self.moves_recent.push(abs);
            self.moves_baseline.push(abs);
            self.moves_total += 1;
        }
        Ok(Observed {
            regime_return,
            move_return,
        })
    }

    /// The newest 5-minute log returns (oldest first), at most the regime
    /// window.
    #[must_use]
    pub fn returns_5m(&self) -> &[f64] {
        self.returns_5m.as_slice()
    }

    /// 5-minute returns produced since the history began (including those
    /// that have left the window).
    #[must_use]
    pub fn returns_5m_total(&self) -> u64 {
        self.returns_5m_total
    }

    /// End time of the newest closed 5-minute bar with a return.
    #[must_use]
    pub fn last_return_at(&self) -> Option<i64> {
        self.last_return_at
    }

    /// Time of the newest observation.
    #[must_use]
    pub fn last_observed_at(&self) -> Option<i64> {
        self.last_at
    }

    /// The 5-minute bar chain, to persist beside [`Self::returns_5m`].
    #[must_use]
    pub fn regime_bars(&self) -> RegimeBars {
        RegimeBars {
            last_at: self.last_at,
            bars_5m: self.bars_5m.clone(),
            returns_5m_total: self.returns_5m_total,
            last_return_at: self.last_return_at,
        }
    }

    /// A history sized by the (validated) `config` that continues the
    /// 5-minute chain of `bars` with `window` (oldest first) as its return
    /// window; the 1-minute moves start empty. Its returns are what
    /// [`Self::returns_5m`] gave when `bars` were taken, so the detector
    /// sees the same window.
    ///
    /// # Errors
    /// Bars no history could have produced, a non-finite return, or a
    /// window whose length is not what `bars` and the configured window
    /// imply.
    pub fn with_regime_bars(
        config: &HealingConfig,
        bars: RegimeBars,
        window: &[f64],
    ) -> Result<Self, RestoreError> {
        bars.check()?;
        let cap = config.regime.window.max(1);
        let expect = usize::try_from(bars.returns_5m_total).map_or(cap, |n| n.min(cap));
        if window.len() != expect {
            return Err(RestoreError::Inconsistent {
                what: "return window length",
            });
        }
        if window.iter().any(|r| !r.is_finite()) {
            return Err(RestoreError::NonFinite { what: "return" });
        }
        let mut h = Self::new(config);
        for &r in window {
            h.returns_5m.push(r);
        }
        h.last_at = bars.last_at;
        h.bars_5m = bars.bars_5m;
        h.returns_5m_total = bars.returns_5m_total;
        h.last_return_at = bars.last_return_at;
        Ok(h)
    }

    /// The baseline window of absolute 1-minute moves, oldest first. The
    /// recent window is its newest `recent_minutes` (both take every
    /// move), so this is all a restart needs to keep the profit target's
    /// volatility scale ([`Self::with_moves`]).
    #[must_use]
    pub fn moves(&self) -> &[f64] {
        self.moves_baseline.as_slice()
    }

    /// 1-minute moves produced since the history began (including those
    /// that have left the windows).
    #[must_use]
    pub fn moves_total(&self) -> u64 {
        self.moves_total
    }

    /// Refills both move windows from `moves`, oldest first, as
    /// [`Self::moves`] returned them (each window keeps its newest
    /// values), the newest being move number `total` of the history.
    ///
    /// # Errors
    /// A move that is negative or not finite; nothing is refilled then.
    pub fn with_moves(mut self, moves: &[f64], total: u64) -> Result<Self, RestoreError> {
        if moves.iter().any(|m| !m.is_finite()) {
            return Err(RestoreError::NonFinite { what: "move" });
        }
        if moves.iter().any(|m| *m < 0.0) {
            return Err(RestoreError::Inconsistent {
                what: "negative absolute move",
            });
        }
        for &m in moves {
            self.moves_recent.push(m);
            self.moves_baseline.push(m);
        }
        self.moves_total = total;
        Ok(self)
    }

    /// Mean absolute 1-minute moves, recent and baseline; `None` until the
    /// baseline holds `baseline_min_minutes` moves (the target then stays
    /// at its base).
    #[must_use]
    pub fn move_stats(&self) -> Option<MoveStats> {
        let samples = self.moves_baseline.len();
        if samples < self.baseline_min {
            return None;
        }
        Some(MoveStats {
            recent: self.moves_recent.mean()?,
            baseline: self.moves_baseline.mean()?,
            samples,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn small() -> HealingConfig {
        let mut c = HealingConfig::default();
        c.regime.window = 48;
        c.regime.min_returns = 24;
        c.target.recent_minutes = 5;
        c.target.baseline_minutes = 10;
        c.target.baseline_min_minutes = 8;
        c.validate().0
    }

    #[test]
    fn rolling_window_keeps_the_newest_values_and_an_exact_mean() {
        let mut w = RollingWindow::new(3);
        assert!(w.is_empty());
        assert_eq!(w.mean(), None);
        for i in 0..100 {
            w.push(f64::from(i));
            let n = (i + 1).min(3);
            let expect: Vec<f64> = ((i + 1 - n)..=i).map(f64::from).collect();
            assert_eq!(w.as_slice(), expect.as_slice());
            let mean = expect.iter().sum::<f64>() / expect.len() as f64;
            assert!((w.mean().expect("mean") - mean).abs() < 1e-9);
        }
        assert!(w.buf.len() < 6, "compacted");
    }

    #[test]
    fn one_minute_candles_make_five_minute_returns() {
        let mut h = MarketHistory::new(&small());
        let mut got = Vec::new();
        // Minutes 0..=10: price 1.00 for bar 0, 1.10 for bar 1, then 1.21.
        for m in 0..=10i64 {
            let p = match m / 5 {
                0 => dec!(1.00),
                1 => dec!(1.10),
                _ => dec!(1.21),
            };
            let o = h.observe(m * 60, p).expect("valid");
            got.extend(o.regime_return);
        }
        // Bar 0 closes at minute 5 (no previous bar: no return), bar 1 at 10.
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].at, 600);
        assert!((got[0].log_return - 1.1f64.ln()).abs() < 1e-12);
        assert_eq!(h.returns_5m_total(), 1);
        assert_eq!(h.last_return_at(), Some(600));
        assert_eq!(h.returns_5m().len(), 1);
    }

    #[test]
    fn gaps_are_skipped_not_filled() {
        let mut h = MarketHistory::new(&small());
        for (t, p) in [(0, dec!(1)), (300, dec!(2)), (600, dec!(3))] {
            h.observe(t, p).expect("valid");
        }
        assert_eq!(h.returns_5m_total(), 1, "bar 1 over bar 0");
        // Bars 3..=9 are missing: bar 2 closes (adjacent to bar 1: a return),
        // then bar 10 closes with no adjacent predecessor: no return.
        h.observe(3000, dec!(30)).expect("valid");
        assert_eq!(h.returns_5m_total(), 2);
        let o = h.observe(3300, dec!(31)).expect("valid");
        assert_eq!(
            o.regime_return, None,
            "the jump across the gap is no return"
        );
        let o = h.observe(3600, dec!(32)).expect("valid");
        let r = o.regime_return.expect("adjacent bars again");
        assert!((r.log_return - (31f64 / 30.0).ln()).abs() < 1e-12);
        assert!(h.returns_5m().iter().all(|r| r.abs() < 1.0));
    }

    #[test]
    fn several_observations_per_bar_keep_the_last_as_close() {
        let mut h = MarketHistory::new(&small());
        for (t, p) in [(0, dec!(1)), (30, dec!(5)), (59, dec!(2)), (60, dec!(2.2))] {
            h.observe(t, p).expect("valid");
        }
        h.observe(120, dec!(9)).expect("valid");
        assert_eq!(h.moves_recent.as_slice().len(), 1);
        assert!((h.moves_recent.as_slice()[0] - 1.1f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn bad_observations_are_refused_and_change_nothing() {
        let mut h = MarketHistory::new(&small());
        h.observe(600, dec!(1)).expect("valid");
        let before = h.clone();
        assert_eq!(
            h.observe(660, dec!(0)),
            Err(ObserveError::NonPositivePrice {
                at: 660,
                price: dec!(0)
            })
        );
        assert!(h.observe(660, dec!(-1)).is_err());
        let e = h.observe(599, dec!(1)).expect_err("older");
        assert_eq!(e, ObserveError::OutOfOrder { at: 599, last: 600 });
        assert!(e.to_string().contains("older"));
        assert_eq!(h, before);
        h.observe(600, dec!(1.5)).expect("same time is fine");
    }

    #[test]
    fn move_stats_wait_for_the_baseline_then_compare_recent_moves() {
        let mut h = MarketHistory::new(&small());
        let mut p = dec!(1);
        // Calm: 0.1 % moves for 10 minutes, then 0.4 % moves for 5.
        for m in 0..=16i64 {
            let step = if m <= 10 { dec!(1.001) } else { dec!(1.004) };
            p *= step;
            h.observe(m * 60, p).expect("valid");
            let moves = h.moves_baseline.len();
            assert_eq!(h.move_stats().is_some(), moves >= 8, "minute {m}");
        }
        let s = h.move_stats().expect("ready");
        assert!((s.recent - 1.004f64.ln()).abs() < 1e-9, "{s:?}");
        assert!(s.baseline < s.recent && s.baseline > 1.001f64.ln());
        assert_eq!(s.samples, 10);
    }

    #[test]
    fn survives_a_serde_round_trip() {
        let mut h = MarketHistory::new(&small());
        for m in 0..40i64 {
            h.observe(m * 60, Decimal::from(100 + m % 7))
                .expect("valid");
        }
        let json = serde_json::to_string(&h).expect("serialize");
        let back: MarketHistory = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, h);
    }
}
