//! Kraken's rate-limit model as pure counters.
//!
//! The REST counter rises by a cost per private call and decays at a
//! tier-dependent rate; the per-pair trading counter rises on each order and
//! more on cancelling a young order. The counters never sleep: they answer
//! "wait this long", so they can be unit-tested with a fake clock, used by
//! the client (with a safety margin) to pace itself, and by the simulator
//! (without margin) to enforce the limit.

use std::collections::HashMap;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::super::types::UnixMillis;

/// One thousandth of a counter point: counters are integral so decay is exact.
pub type Milli = u64;

/// Rate-limit parameters of a verification tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateTier {
    /// REST counter maximum, in points.
    pub rest_max: u32,
    /// REST counter decay, milli-points per second.
    pub rest_decay: Milli,
    /// Per-pair trading counter threshold, in points.
    pub trading_max: u32,
    /// Trading counter decay, milli-points per second.
    pub trading_decay: Milli,
}

impl RateTier {
    /// Starter tier: REST 15 decaying 0.33/s; trading 60 decaying 1/s.
    #[must_use]
    pub fn starter() -> Self {
        Self {
            rest_max: 15,
            rest_decay: 330,
            trading_max: 60,
            trading_decay: 1_000,
        }
    }

    /// Intermediate tier: REST 20 decaying 0.5/s; trading 125 decaying 2.34/s.
    #[must_use]
    pub fn intermediate() -> Self {
        Self {
            rest_max: 20,
            rest_decay: 500,
            trading_max: 125,
            trading_decay: 2_340,
        }
    }

    /// Pro tier: REST 20 decaying 1/s; trading 180 decaying 3.75/s.
    #[must_use]
    pub fn pro() -> Self {
        Self {
            rest_max: 20,
            rest_decay: 1_000,
            trading_max: 180,
            trading_decay: 3_750,
        }
    }

    /// Parses `starter` / `intermediate` / `pro`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "starter" => Some(Self::starter()),
            "intermediate" => Some(Self::intermediate()),
            "pro" => Some(Self::pro()),
            _ => None,
        }
    }
}

/// REST-counter cost of a private method: history calls cost 2, order
/// placement and cancellation are on the trading counter instead (0).
#[must_use]
pub fn rest_cost(method: &str) -> u32 {
    match method {
        "Ledgers" | "QueryLedgers" | "TradesHistory" | "QueryTrades" => 2,
        "AddOrder" | "CancelOrder" | "AmendOrder" | "EditOrder" => 0,
        _ => 1,
    }
}

/// Trading-counter penalty for cancelling an order of the given age:
/// Kraken charges more the younger the order.
#[must_use]
pub fn cancel_penalty(age_ms: i64) -> u32 {
    const SCHEDULE: [(i64, u32); 6] = [
        (5_000, 8),
        (10_000, 6),
        (15_000, 5),
        (45_000, 4),
        (90_000, 2),
        (300_000, 1),
    ];
    SCHEDULE
        .iter()
        .find(|(younger_than, _)| age_ms < *younger_than)
        .map_or(0, |(_, penalty)| *penalty)
}

/// A counter that rises by call costs and decays linearly with time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecayCounter {
    value: Milli,
    updated: UnixMillis,
    max: Milli,
    decay_per_sec: Milli,
}

impl DecayCounter {
    /// An empty counter with maximum `max_points` decaying at
    /// `decay_per_sec` milli-points per second.
    #[must_use]
    pub fn new(max_points: u32, decay_per_sec: Milli) -> Self {
        Self {
            value: 0,
            updated: 0,
            max: Milli::from(max_points) * 1000,
            decay_per_sec: decay_per_sec.max(1),
        }
    }

    fn decay(&mut self, now: UnixMillis) {
        if now > self.updated {
            let elapsed = u64::try_from(now - self.updated).unwrap_or(0);
            let dec = elapsed.saturating_mul(self.decay_per_sec) / 1000;
            self.value = self.value.saturating_sub(dec);
            self.updated = now;
        }
    }

    /// The value at `now`, in milli-points.
    pub fn value(&mut self, now: UnixMillis) -> Milli {
        self.decay(now);
        self.value
    }

    /// The maximum, in milli-points.
    #[must_use]
    pub fn max(&self) -> Milli {
        self.max
    }

    /// Adds `cost` points if the result stays within `limit_pct` percent of
    /// the maximum; otherwise returns how long to wait until it would.
    pub fn try_acquire(
        &mut self,
        now: UnixMillis,
        cost: u32,
        limit_pct: u32,
    ) -> Result<(), Duration> {
        self.decay(now);
        let limit = (self.max * Milli::from(limit_pct.min(100)) / 100).max(1000);
        let cost = (Milli::from(cost) * 1000).min(limit);
        if self.value + cost <= limit {
            self.value += cost;
            return Ok(());
        }
        let excess = self.value + cost - limit;
        let ms = (excess * 1000).div_ceil(self.decay_per_sec);
        Err(Duration::from_millis(ms.max(1)))
    }

    /// Adds `cost` points unconditionally (a cost charged after the fact).
    pub fn charge(&mut self, now: UnixMillis, cost: u32) {
        self.decay(now);
        self.value = self.value.saturating_add(Milli::from(cost) * 1000);
    }

    /// Marks the counter full: the server said the limit was hit, so our
    /// model was optimistic.
    pub fn saturate(&mut self, now: UnixMillis) {
        self.decay(now);
        self.value = self.value.max(self.max);
    }
}

/// Per-key REST counter plus per-pair trading counters.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    tier: RateTier,
    limit_pct: u32,
    rest: DecayCounter,
    trading: HashMap<String, DecayCounter>,
}

impl RateLimiter {
    /// Limits of `tier`, keeping usage within `limit_pct` percent of each
    /// maximum (the client uses ~75 %, the simulator 100 %).
    #[must_use]
    pub fn new(tier: RateTier, limit_pct: u32) -> Self {
        Self {
            tier,
            limit_pct,
            rest: DecayCounter::new(tier.rest_max, tier.rest_decay),
            trading: HashMap::new(),
        }
    }

    /// Reserves REST-counter points for `method`, or says how long to wait.
    pub fn acquire_rest(&mut self, now: UnixMillis, method: &str) -> Result<(), Duration> {
        match rest_cost(method) {
            0 => Ok(()),
            cost => self.rest.try_acquire(now, cost, self.limit_pct),
        }
    }

    fn trading_counter(&mut self, pair: &str) -> &mut DecayCounter {
        let tier = self.tier;
        self.trading
            .entry(pair.to_owned())
            .or_insert_with(|| DecayCounter::new(tier.trading_max, tier.trading_decay))
    }

    /// Reserves trading-counter points on `pair` (1 for a new order, the
    /// cancel penalty for a cancel), or says how long to wait.
    pub fn acquire_trading(
        &mut self,
        now: UnixMillis,
        pair: &str,
        cost: u32,
    ) -> Result<(), Duration> {
        let pct = self.limit_pct;
        if cost == 0 {
            return Ok(());
        }
        self.trading_counter(pair).try_acquire(now, cost, pct)
    }

    /// Records that the server rejected a call for the REST limit.
    pub fn saturate_rest(&mut self, now: UnixMillis) {
        self.rest.saturate(now);
    }

    /// Records that the server rejected an order for the trading limit.
    pub fn saturate_trading(&mut self, now: UnixMillis, pair: &str) {
        self.trading_counter(pair).saturate(now);
    }
}

/// Exponential backoff with deterministic jitter, for when the server says
/// the rate limit was exceeded despite our model.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    rng: ChaCha8Rng,
}

impl Backoff {
    /// Backoff starting at `base`, doubling up to `cap`, jitter seeded by
    /// `seed` so tests and replays are reproducible.
    #[must_use]
    pub fn new(base: Duration, cap: Duration, seed: u64) -> Self {
        Self {
            base,
            cap,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Delay before retry number `attempt` (0-based): between half and all
    /// of `min(cap, base * 2^attempt)`.
    pub fn delay(&mut self, attempt: u32) -> Duration {
        let full = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.cap);
        let ms = u64::try_from(full.as_millis()).unwrap_or(u64::MAX).max(1);
        let jitter = self.rng.random_range(0..=ms / 2);
        Duration::from_millis(ms - jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_counter_waits_instead_of_exceeding() {
        let mut c = DecayCounter::new(15, 330);
        for _ in 0..15 {
            c.try_acquire(0, 1, 100).unwrap();
        }
        let wait = c.try_acquire(0, 1, 100).unwrap_err();
        // One point at 0.33/s takes ~3.03 s to decay.
        assert_eq!(wait, Duration::from_millis(3031));
        assert!(c.try_acquire(3_000, 1, 100).is_err());
        c.try_acquire(3_031, 1, 100).unwrap();
    }

    #[test]
    fn safety_margin_limits_to_a_fraction_of_max() {
        let mut l = RateLimiter::new(RateTier::starter(), 75);
        let mut ok = 0;
        while l.acquire_rest(0, "Balance").is_ok() {
            ok += 1;
        }
        assert_eq!(ok, 11, "75 % of 15 is 11.25 points");
        assert!(
            l.acquire_rest(0, "AddOrder").is_ok(),
            "AddOrder is not on the REST counter"
        );
        assert_eq!(rest_cost("TradesHistory"), 2);
    }

    #[test]
    fn cancel_penalty_follows_krakens_schedule() {
        assert_eq!(cancel_penalty(0), 8);
        assert_eq!(cancel_penalty(4_999), 8);
        assert_eq!(cancel_penalty(5_000), 6);
        assert_eq!(cancel_penalty(12_000), 5);
        assert_eq!(cancel_penalty(44_000), 4);
        assert_eq!(cancel_penalty(60_000), 2);
        assert_eq!(cancel_penalty(200_000), 1);
        assert_eq!(cancel_penalty(300_000), 0);
    }

    #[test]
    fn trading_counter_is_per_pair_and_saturates() {
        let mut l = RateLimiter::new(RateTier::starter(), 100);
        for _ in 0..7 {
            l.acquire_trading(0, "XDGUSD", 8).unwrap();
        }
        assert!(l.acquire_trading(0, "XDGUSD", 8).is_err());
        assert!(l.acquire_trading(0, "XBTUSD", 8).is_ok());
        l.saturate_trading(0, "XBTUSD");
        let wait = l.acquire_trading(0, "XBTUSD", 1).unwrap_err();
        assert_eq!(wait, Duration::from_millis(1000));
        l.saturate_rest(0);
        assert!(l.acquire_rest(0, "Balance").is_err());
    }

    #[test]
    fn backoff_doubles_with_bounded_reproducible_jitter() {
        let mut a = Backoff::new(Duration::from_millis(100), Duration::from_secs(2), 1);
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2), 1);
        for attempt in 0..8 {
            let d = a.delay(attempt);
            assert_eq!(d, b.delay(attempt));
            let full = (100u64 << attempt).min(2000);
            let ms = u64::try_from(d.as_millis()).unwrap();
            assert!(ms >= full / 2 && ms <= full, "attempt {attempt}: {ms}");
        }
    }
}
