//! Nonces for private calls: strictly increasing per API key, even when
//! several tasks sign at the same instant or the wall clock steps back.

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
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        self.next_at(now)
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
