//! Nonces for private calls: strictly increasing per API key, even when
//! several tasks sign at the same instant or the wall clock steps back.
//! Within a process the source remembers its last nonce; across restarts
//! the runtime stores a lease above it (`runtime::nonce_lease`) and a new
//! process resumes above that, so a clock that stepped back while the
//! trader was down cannot make Kraken refuse every call as `EAPI:Invalid
//! nonce` until the clock catches up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Issues microsecond-based nonces that never repeat or decrease.
#[derive(Debug, Default)]
pub struct NonceSource {
    last: AtomicU64,
}

impl NonceSource {
    /// A fresh source.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The next nonce: the current time in microseconds, or one more than the
    /// previous nonce if the clock has not moved (or moved back).
    pub fn next(&self) -> u64 {
        self.next_at(now_micros())
    }

    /// At least every nonce issued so far and the clock's reading: a lease
    /// stored above it covers every nonce until the clock passes the lease.
    #[must_use]
    pub fn mark(&self) -> u64 {
        self.mark_at(now_micros())
    }

    /// [`Self::mark`] with an explicit clock reading (testable).
    #[must_use]
    pub fn mark_at(&self, now_micros: u64) -> u64 {
        self.last.load(Ordering::Acquire).max(now_micros)
    }

    /// Every later nonce exceeds `floor`, whatever the clock says.
    pub fn resume_after(&self, floor: u64) {
        self.last.fetch_max(floor, Ordering::AcqRel);
    }

    /// [`Self::next`] with an explicit clock reading (testable).
    pub fn next_at(&self, now_micros: u64) -> u64 {
        let mut prev = self.last.load(Ordering::Relaxed);
        loop {
            let candidate = now_micros.max(prev.saturating_add(1));
            match self.last.compare_exchange_weak(
                prev,
                candidate,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return candidate,
                Err(actual) => prev = actual,
            }
        }
    }
}

/// The wall clock in microseconds since the epoch (0 before it).
fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Arc;

    #[test]
    fn increases_even_when_clock_stalls_or_goes_back() {
        let n = NonceSource::new();
        assert_eq!(n.next_at(100), 100);
        assert_eq!(n.next_at(100), 101);
        assert_eq!(n.next_at(50), 102);
        assert_eq!(n.next_at(500), 500);
    }

    /// Proves: a source resumed above a stored lease issues nonces above it
    /// though the clock reads earlier (it stepped back while the process
    /// was down), and its mark covers both the lease and the clock.
    #[test]
    fn a_resumed_source_stays_above_the_floor_when_the_clock_is_behind() {
        let n = NonceSource::new();
        n.resume_after(1_000);
        assert_eq!(n.mark_at(400), 1_000);
        assert_eq!(n.next_at(400), 1_001);
        assert_eq!(n.mark_at(5_000), 5_000);
        n.resume_after(10);
        assert_eq!(n.next_at(400), 1_002, "a lower floor changes nothing");
    }

    #[test]
    fn unique_across_threads() {
        let n = Arc::new(NonceSource::new());
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let n = Arc::clone(&n);
                std::thread::spawn(move || (0..1000).map(|_| n.next_at(7)).collect::<Vec<_>>())
            })
            .collect();
        let mut all = HashSet::new();
        for h in handles {
            for v in h.join().unwrap() {
                assert!(all.insert(v));
            }
        }
        assert_eq!(all.len(), 8000);
    }
}
