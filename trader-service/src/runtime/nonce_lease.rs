//! The exchange's nonce across restarts: a lease in the trader's store.
//!
//! Kraken refuses a private call whose nonce is not above the last one it
//! saw for the key. Nonces are the wall clock in microseconds, kept
//! increasing within a process; a new process starts again from the clock,
//! so if the clock stepped back while the trader was down, every call
//! would be refused as `EAPI:Invalid nonce` until the clock caught up (up
//! to hours). Storing every nonce would cost a write per call; instead the
//! store keeps a *lease*, a value above every nonce issued so far, renewed
//! whenever the nonces come within half a lease of it. A new process
//! resumes above the stored lease and stores a new one before its first
//! private call, so it never issues a nonce an earlier process may have
//! used. The price: a process restarted within a lease of the last renewal
//! signs up to [`LEASE_MICROS`] ahead of the clock, which Kraken accepts
//! (a nonce only has to increase).

use crate::exchange::Exchange;
use crate::runtime::store::{StoreError, TraderStore};

/// Store metadata key of the lease (microseconds, as a decimal string).
pub const NONCE_LEASE_META_KEY: &str = "exchange_nonce_lease";

/// How far a lease reaches above the nonce mark: five minutes of the clock.
/// A loop renews it long before (every loop commits when the mark comes
/// within half of it), unless a single loop outlasts half a lease.
pub const LEASE_MICROS: u64 = 300_000_000;

/// The lease to store now, if the nonce `mark` came within half a lease of
/// the stored `lease` (or above it); `None` while the stored one suffices.
#[must_use]
pub fn renewal(mark: u64, lease: u64) -> Option<u64> {
    (mark.saturating_add(LEASE_MICROS / 2) > lease).then(|| mark.saturating_add(LEASE_MICROS))
}

/// At start-up, before any private call: resumes the exchange's nonces
/// above the lease an earlier process stored, then stores a new lease
/// above the mark. Returns that lease, or `None` for an exchange without
/// nonces.
///
/// # Errors
/// When the store cannot be read or written: trading on without a lease
/// could repeat an earlier process's nonces.
pub async fn resume<E: Exchange>(
    store: &TraderStore,
    exchange: &E,
) -> Result<Option<u64>, StoreError> {
    if exchange.nonce_mark().is_none() {
        return Ok(None);
    }
    let stored = store.get_meta(NONCE_LEASE_META_KEY).await?;
    match stored.as_deref().map(str::parse::<u64>) {
        Some(Ok(floor)) => exchange.resume_nonce_after(floor),
        Some(Err(e)) => {
            tracing::warn!(value = ?stored, error = %e,
                "stored nonce lease unreadable: nonces start from the clock");
        }
        None => {}
    }
    let Some(mark) = exchange.nonce_mark() else {
        return Ok(None);
    };
    let lease = mark.saturating_add(LEASE_MICROS);
    store
        .put_meta(NONCE_LEASE_META_KEY, &lease.to_string())
        .await?;
    tracing::info!(
        resumed_above = ?stored,
        lease,
        "exchange nonces resumed above the stored lease"
    );
    Ok(Some(lease))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::kraken::{KrakenClient, KrakenConfig};
    use crate::runtime::store::StoreLocation;

    /// Proves: the lease is renewed only once the mark comes within half a
    /// lease of it, and then reaches a full lease above the mark.
    #[test]
    fn the_lease_is_renewed_within_half_of_it() {
        let lease = 1_000 + LEASE_MICROS;
        assert_eq!(renewal(1_000, lease), None);
        assert_eq!(renewal(1_000 + LEASE_MICROS / 2, lease), None);
        let mark = 1_001 + LEASE_MICROS / 2;
        assert_eq!(renewal(mark, lease), Some(mark + LEASE_MICROS));
        assert_eq!(renewal(5, 0), Some(5 + LEASE_MICROS), "nothing stored yet");
    }

    /// Proves (regression: a restart after the wall clock stepped back
    /// signed every call below the nonces of the process before, and
    /// Kraken refused them all): a new process resumes above the stored
    /// lease, far ahead of its clock, and stores a lease above that.
    #[tokio::test]
    async fn a_restarted_client_signs_above_the_lease_of_the_process_before() {
        let store = TraderStore::open(&StoreLocation::Memory).await.unwrap();
        let cfg = KrakenConfig::new("http://127.0.0.1:1", "key", "AQEB").unwrap();
        let before = KrakenClient::new(cfg.clone()).unwrap();
        let first = resume(&store, &before).await.unwrap().unwrap();
        assert!(first > before.nonce_mark().unwrap());
        // An hour ahead of this process's clock: as if the clock stepped
        // back an hour after the last process stored its lease.
        let ahead = before.nonce_mark().unwrap() + 3_600_000_000;
        store
            .put_meta(NONCE_LEASE_META_KEY, &ahead.to_string())
            .await
            .unwrap();
        let after = KrakenClient::new(cfg).unwrap();
        let lease = resume(&store, &after).await.unwrap().unwrap();
        assert!(after.nonce_mark().unwrap() >= ahead);
        assert_eq!(lease, ahead + LEASE_MICROS);
        let stored = store.get_meta(NONCE_LEASE_META_KEY).await.unwrap();
        assert_eq!(stored, Some(lease.to_string()));
    }
}
