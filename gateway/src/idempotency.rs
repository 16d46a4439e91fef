//! Answers of actions by `Idempotency-Key`, so a retried action returns the
//! first answer instead of acting twice.
//!
//! The trader's Pause/Resume RPCs take no request id, so the gateway keeps
//! the answers itself: in memory, bounded (oldest evicted first), lost on
//! restart. Only successful answers are kept; a failed action may be
//! retried with the same key. Actions run one at a time (operators click,
//! they do not stream), which also makes two concurrent requests with one
//! key act once.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use axum::http::HeaderMap;

use crate::error::ApiError;

/// Header carrying the key.
pub const HEADER: &str = "idempotency-key";

/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 128;

/// Answers kept at most.
pub const CAPACITY: usize = 4096;

/// One stored answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// What the request was (method, path, body), so a key reused for
    /// another request is refused instead of answered wrongly.
    pub fingerprint: String,
    /// HTTP status of the answer.
    pub status: u16,
    /// JSON body of the answer.
    pub body: serde_json::Value,
}

#[derive(Debug, Default)]
struct Entries {
    by_key: HashMap<String, Stored>,
    order: VecDeque<String>,
}

/// The answer cache plus the lock that runs actions one at a time.
#[derive(Debug, Default)]
pub struct IdempotencyCache {
    entries: Mutex<Entries>,
    serial: tokio::sync::Mutex<()>,
}

/// Reads and checks the `Idempotency-Key` header.
///
/// # Errors
/// [`ApiError::BadRequest`] when it is missing, empty, too long or not
/// visible ASCII.
pub fn key_from(headers: &HeaderMap) -> Result<String, ApiError> {
    let raw = headers.get(HEADER).ok_or_else(|| {
        ApiError::BadRequest("the Idempotency-Key header is required on actions".into())
    })?;
    let key = raw
        .to_str()
        .map_err(|_| ApiError::BadRequest("Idempotency-Key must be visible ASCII".into()))?;
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::BadRequest(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
        )));
    }
    Ok(key.to_owned())
}

impl IdempotencyCache {
    /// Takes the action lock; hold it from lookup to store.
    pub async fn serialize(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.serial.lock().await
    }

    /// The stored answer for `key`, if any.
    ///
    /// # Errors
    /// [`ApiError::Conflict`] when the key was used for another request.
    pub fn lookup(&self, key: &str, fingerprint: &str) -> Result<Option<Stored>, ApiError> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match entries.by_key.get(key) {
            Some(s) if s.fingerprint != fingerprint => Err(ApiError::Conflict(
                "this Idempotency-Key was already used for a different request".into(),
            )),
            other => Ok(other.cloned()),
        }
    }

    /// Keeps a successful answer, evicting the oldest beyond [`CAPACITY`].
    pub fn store(&self, key: String, stored: Stored) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.by_key.insert(key.clone(), stored).is_none() {
            entries.order.push_back(key);
        }
        while entries.order.len() > CAPACITY {
            if let Some(old) = entries.order.pop_front() {
                entries.by_key.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(fp: &str) -> Stored {
        Stored {
            fingerprint: fp.into(),
            status: 200,
            body: serde_json::json!({"mode": "paused"}),
        }
    }

    /// Proves: a stored answer comes back for its own request, a reused key
    /// for another request is a conflict, and the cache stays bounded.
    #[test]
    fn replays_refuses_reuse_and_evicts() {
        let c = IdempotencyCache::default();
        assert_eq!(c.lookup("k", "POST /pause").unwrap(), None);
        c.store("k".into(), stored("POST /pause"));
        assert_eq!(
            c.lookup("k", "POST /pause").unwrap(),
            Some(stored("POST /pause"))
        );
        assert!(matches!(
            c.lookup("k", "POST /resume"),
            Err(ApiError::Conflict(_))
        ));
        for i in 0..CAPACITY {
            c.store(format!("k{i}"), stored("x"));
        }
        assert_eq!(
            c.lookup("k", "POST /pause").unwrap(),
            None,
            "oldest evicted"
        );
        assert!(
            c.lookup(&format!("k{}", CAPACITY - 1), "x")
                .unwrap()
                .is_some()
        );
    }

    /// Proves: the key header is required and checked.
    #[test]
    fn key_header_checked() {
        let mut h = HeaderMap::new();
        assert!(matches!(key_from(&h), Err(ApiError::BadRequest(_))));
        h.insert(HEADER, "has space".parse().unwrap());
        assert!(matches!(key_from(&h), Err(ApiError::BadRequest(_))));
        h.insert(HEADER, "x".repeat(MAX_KEY_LEN + 1).parse().unwrap());
        assert!(matches!(key_from(&h), Err(ApiError::BadRequest(_))));
        h.insert(HEADER, "retry-1".parse().unwrap());
        assert_eq!(key_from(&h).unwrap(), "retry-1");
    }
}
