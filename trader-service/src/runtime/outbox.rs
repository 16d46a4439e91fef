//! Delivery of queued ledger writes: strictly in `seq` order, at least once,
//! with back-off on outages and parking of writes the ledger rejects.
//!
//! # Delivery guarantee
//! Delivery is **at-least-once**: an entry is marked delivered only *after*
//! the sink returned success, so a crash (or a cancelled drain) between the
//! ledger applying a write and the store recording the ack leaves the entry
//! pending, and it is delivered again after restart with the **same**
//! idempotency key. The ledger answers a repeated key with the original
//! result, so at-least-once delivery to an idempotent receiver gives an
//! exactly-once effect.
//!
//! # Ordering
//! Entries never overtake each other: a retryable failure stops the drain at
//! that entry (head-of-line), so e.g. a `ClosePosition` can never reach the
//! ledger before the `OpenPosition` it closes. The one exception is by
//! design: an entry the ledger *rejects* is parked and the drain moves on, so
//! one bad write cannot wedge trading; it is reported as a [`ParkedAlert`].

use std::future::Future;
use std::time::Duration;

use thiserror::Error;

use crate::runtime::entry::{IdempotencyKey, LedgerWrite, OutboxEntry, OutboxState, Seq};
use crate::runtime::store::{StoreError, TraderStore};
use crate::runtime::time::UnixMillis;

/// How many pending rows are read per query while draining.
const PAGE: u32 = 256;

/// Exponential back-off for a failing head entry: `base`, doubling per
/// consecutive failure, never more than `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub base: Duration,
    /// Upper bound, so a long outage is noticed within `cap` of its end.
    pub cap: Duration,
}

impl Default for Backoff {
    /// 1 s doubling up to 60 s.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// Delay before the next attempt after `failures` consecutive failures
    /// (zero when nothing failed yet).
    #[must_use]
    pub fn delay(&self, failures: u32) -> Duration {
        let Some(doublings) = failures.checked_sub(1) else {
            return Duration::ZERO;
        };
        let factor = 1_u32.checked_shl(doublings).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }
}

/// Tuning of the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxPolicy {
    /// Back-off of a failing head entry.
    pub backoff: Backoff,
    /// Delivered entries kept (newest first) for inspection; older ones are
    /// pruned. Pending and parked entries are never pruned.
    pub retain_delivered: u32,
    /// Deliveries attempted per drain (at least 1), so one drain after a
    /// long outage cannot monopolise the caller.
    pub max_per_drain: u32,
}

impl Default for OutboxPolicy {
    fn default() -> Self {
        Self {
            backoff: Backoff::default(),
            retain_delivered: 10_000,
            max_per_drain: 1_000,
        }
    }
}

/// Why the sink could not deliver an entry.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DeliveryError {
    /// Transient (ledger down, timeout, `UNAVAILABLE`): retry the same entry
    /// later, and deliver nothing after it meanwhile.
    #[error("retryable: {0}")]
    Retryable(String),
    /// Permanent (`FAILED_PRECONDITION`, `INVALID_ARGUMENT`): retrying can
    /// never help; the entry is parked.
    #[error("rejected: {0}")]
    Rejected(String),
}

/// Where ledger writes go; the runtime implements it over the ledger gRPC
/// client, tests over fakes.
pub trait Sink {
    /// What a successful delivery returns (e.g. the ledger's response, such
    /// as an assigned `position_id` or a new subsidy balance).
    type Ack: Send;

    /// Performs one write. Must be safe to repeat with the same
    /// idempotency key (it will be, after a crash).
    fn deliver(
        &self,
        entry: &OutboxEntry,
    ) -> impl Future<Output = Result<Self::Ack, DeliveryError>> + Send;
}

/// An entry the ledger acknowledged during a drain.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveredEntry<A> {
    /// Its position in the outbox.
    pub seq: Seq,
    /// Its idempotency key.
    pub key: IdempotencyKey,
    /// Which ledger write it was.
    pub kind: LedgerWrite,
    /// The sink's acknowledgement.
    pub ack: A,
}

/// A write the ledger rejected for good. The runtime must act on it (e.g. a
/// rejected subsidy debit stops self-healing for that slot) and surface it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParkedAlert {
    /// The entry as it was when rejected (still pending in this copy).
    pub entry: OutboxEntry,
    /// The ledger's reason.
    pub reason: String,
}

/// Why a drain stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum DrainEnd {
    /// Nothing pending is left.
    Empty,
    /// The head entry is backing off; call again at `until`.
    Waiting {
        /// The head entry.
        seq: Seq,
        /// Its next allowed attempt.
        until: UnixMillis,
    },
    /// The head entry just failed retryably; nothing after it was tried.
    Failed {
        /// The head entry.
        seq: Seq,
        /// Its idempotency key.
        key: IdempotencyKey,
        /// Attempts made so far, including this one.
        attempts: u32,
        /// The sink's message.
        error: String,
        /// Its next allowed attempt.
        retry_at: UnixMillis,
    },
    /// [`OutboxPolicy::max_per_drain`] was reached; more is due now.
    BatchLimit,
}

/// What one drain did.
#[derive(Debug, Clone, PartialEq)]
pub struct DrainReport<A> {
    /// Acknowledged entries, in `seq` order.
    pub delivered: Vec<DeliveredEntry<A>>,
    /// Entries parked because the ledger rejected them.
    pub parked: Vec<ParkedAlert>,
    /// Why the drain stopped.
    pub end: DrainEnd,
    /// Old delivered entries pruned afterwards.
    pub pruned: u64,
}

/// Delivers the store's pending ledger writes to a [`Sink`].
#[derive(Debug, Clone)]
pub struct Outbox {
    store: TraderStore,
    policy: OutboxPolicy,
}

impl Outbox {
    /// An outbox over `store`'s queue. A `max_per_drain` of 0 is raised to
    /// 1 so a drain always makes progress.
    #[must_use]
    pub fn new(store: TraderStore, mut policy: OutboxPolicy) -> Self {
        policy.max_per_drain = policy.max_per_drain.max(1);
        Self { store, policy }
    }

    /// Delivers due pending entries in `seq` order until the queue is empty,
    /// the head entry fails retryably or is backing off, or the batch limit
    /// is reached. Drains over the same store never run concurrently.
    ///
    /// # Errors
    /// [`StoreError`] if recording an outcome fails; the entry concerned
    /// stays pending and is delivered again later (at-least-once). Entries
    /// parked before the error are already stored and logged.
    pub async fn drain_once<S: Sink>(
        &self,
        sink: &S,
        now: UnixMillis,
    ) -> Result<DrainReport<S::Ack>, StoreError> {
        let _exclusive = self.store.drain_lock().lock().await;
        let mut delivered = Vec::new();
        let mut parked = Vec::new();
        let mut budget = self.policy.max_per_drain;
        let mut after = Seq(0);
        let end = 'drain: loop {
            let page = self.store.pending_page(after, PAGE).await?;
            if page.is_empty() {
                break DrainEnd::Empty;
            }
            for entry in page {
                after = entry.seq;
                if budget == 0 {
                    break 'drain DrainEnd::BatchLimit;
                }
                if !self.is_due(&entry, now) {
                    break 'drain DrainEnd::Waiting {
                        seq: entry.seq,
                        until: entry.next_attempt_at,
                    };
                }
                budget -= 1;
                match sink.deliver(&entry).await {
                    Ok(ack) => {
                        self.store.mark_delivered(entry.seq).await?;
                        tracing::debug!(seq = %entry.seq, key = %entry.key, "ledger write delivered");
                        delivered.push(DeliveredEntry {
                            seq: entry.seq,
                            key: entry.key,
                            kind: entry.kind,
                            ack,
                        });
                    }
                    Err(DeliveryError::Retryable(error)) => {
                        // Every earlier attempt of a still-pending entry failed.
                        let attempts = entry.attempts.saturating_add(1);
                        let retry_at = now.saturating_add(self.policy.backoff.delay(attempts));
                        self.store
                            .record_failure(entry.seq, &error, retry_at)
                            .await?;
                        tracing::warn!(
                            seq = %entry.seq, key = %entry.key, attempts, error = %error,
                            retry_at = retry_at.0, "ledger write failed; outbox holding"
                        );
                        break 'drain DrainEnd::Failed {
                            seq: entry.seq,
                            key: entry.key,
                            attempts,
                            error,
                            retry_at,
                        };
                    }
                    Err(DeliveryError::Rejected(reason)) => {
                        self.store.park(entry.seq, &reason).await?;
                        tracing::error!(
                            seq = %entry.seq, key = %entry.key, kind = entry.kind.as_str(),
                            reason = %reason, "ledger rejected write; parked"
                        );
                        parked.push(ParkedAlert { entry, reason });
                    }
                }
            }
        };
        let pruned = if delivered.is_empty() {
            0
        } else {
            self.store
                .prune_delivered(self.policy.retain_delivered)
                .await?
        };
        Ok(DrainReport {
            delivered,
            parked,
            end,
            pruned,
        })
    }

    /// Drains repeatedly until the queue is empty or blocked (not merely at
    /// the batch limit): what graceful shutdown calls to flush the outbox.
    ///
    /// # Errors
    /// As [`Outbox::drain_once`].
    pub async fn flush<S: Sink>(
        &self,
        sink: &S,
        now: UnixMillis,
    ) -> Result<DrainReport<S::Ack>, StoreError> {
        let mut total = self.drain_once(sink, now).await?;
        while total.end == DrainEnd::BatchLimit {
            let next = self.drain_once(sink, now).await?;
            total.delivered.extend(next.delivered);
            total.parked.extend(next.parked);
            total.pruned += next.pruned;
            total.end = next.end;
        }
        Ok(total)
    }

    /// Whether `entry` may be attempted at `now`. A retry time further ahead
    /// than the back-off cap can only come from a clock that jumped back; it
    /// is treated as due rather than stalling the outbox.
    fn is_due(&self, entry: &OutboxEntry, now: UnixMillis) -> bool {
        entry.next_attempt_at <= now || entry.next_attempt_at.since(now) > self.policy.backoff.cap
    }

    /// Number of entries not yet acknowledged (the status API's depth).
    ///
    /// # Errors
    /// [`StoreError::Sql`].
    pub async fn depth(&self) -> Result<u64, StoreError> {
        self.store.pending_count().await
    }

    /// Sends every parked entry again, in its original order, from the next
    /// drain on (an operator's retry after fixing the cause). Returns how
    /// many were re-queued.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn retry_parked(&self, now: UnixMillis) -> Result<u64, StoreError> {
        self.store.requeue_parked(now).await
    }

    /// Entries the ledger rejected, oldest first, for operators.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn parked(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        self.store.entries_in(OutboxState::Parked).await
    }

    /// How long the oldest unacknowledged write has waited; `None` when the
    /// queue is empty. A growing age means the ledger is unreachable.
    ///
    /// # Errors
    /// [`StoreError::Sql`].
    pub async fn oldest_pending_age(
        &self,
        now: UnixMillis,
    ) -> Result<Option<Duration>, StoreError> {
        self.store.oldest_pending_age(now).await
    }

    /// Unacknowledged writes in delivery order. The trader's exact subsidy
    /// view is the last acknowledged ledger balance plus these.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn pending_entries(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        self.store.entries_in(OutboxState::Pending).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::runtime::test_support::{ScriptedSink, entry, every_backend, step};

    const S: i64 = 1_000;

    fn retry(msg: &str) -> Result<(), DeliveryError> {
        Err(DeliveryError::Retryable(msg.into()))
    }

    fn called(sink: &ScriptedSink) -> Vec<String> {
        sink.calls().into_iter().map(|(_, key, _)| key).collect()
    }

    /// Proves: 1 s doubling to a 60 s cap, zero before any failure, no
    /// overflow for absurd failure counts.
    #[test]
    fn backoff_doubles_from_one_second_to_sixty() {
        let b = Backoff::default();
        let secs: Vec<u64> = (0..=9).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(secs, [0, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(60));
        let odd = Backoff {
            base: Duration::from_millis(300),
            cap: Duration::from_secs(1),
        };
        assert_eq!(odd.delay(2), Duration::from_millis(600));
        assert_eq!(odd.delay(3), Duration::from_secs(1));
    }

    /// Proves: the head entry is retried with back-off measured against the
    /// passed-in `now`, attempts and the last error are recorded, nothing
    /// overtakes it, and once it succeeds the rest follow in seq order.
    #[tokio::test]
    async fn failing_head_blocks_in_order_and_backs_off() {
        for (_dir, store) in every_backend().await {
            store
                .commit_step(step(1, 0, vec![entry("a", json!(1)), entry("b", json!(2))]))
                .await
                .unwrap();
            store
                .commit_step(step(2, 0, vec![entry("c", json!(3))]))
                .await
                .unwrap();
            let outbox = Outbox::new(store, OutboxPolicy::default());
            let sink = ScriptedSink::with_script([retry("down"), retry("down"), retry("timeout")]);

            // t=0: first failure, retry at 1 s.
            let r = outbox.drain_once(&sink, UnixMillis(0)).await.unwrap();
            assert!(matches!(
                r.end,
                DrainEnd::Failed {
                    attempts: 1,
                    retry_at: UnixMillis(S),
                    ..
                }
            ));
            // Too early: nothing is called.
            let r = outbox.drain_once(&sink, UnixMillis(S - 1)).await.unwrap();
            assert_eq!(
                r.end,
                DrainEnd::Waiting {
                    seq: Seq(1),
                    until: UnixMillis(S)
                }
            );
            // t=1 s: second failure, retry 2 s later.
            let r = outbox.drain_once(&sink, UnixMillis(S)).await.unwrap();
            assert!(matches!(
                r.end,
                DrainEnd::Failed {
                    attempts: 2,
                    retry_at: UnixMillis(3_000),
                    ..
                }
            ));
            let r = outbox.drain_once(&sink, UnixMillis(2_999)).await.unwrap();
            assert!(matches!(r.end, DrainEnd::Waiting { .. }));
            // t=3 s: third failure, retry 4 s later; the error is visible.
            outbox.drain_once(&sink, UnixMillis(3 * S)).await.unwrap();
            let head = &outbox.pending_entries().await.unwrap()[0];
            assert_eq!(
                (head.attempts, head.next_attempt_at),
                (3, UnixMillis(7 * S))
            );
            assert_eq!(head.last_error.as_deref(), Some("timeout"));
            assert_eq!(called(&sink), ["a", "a", "a"], "nothing overtook the head");

            // t=7 s: the ledger is back; everything goes, in order.
            let r = outbox.drain_once(&sink, UnixMillis(7 * S)).await.unwrap();
            assert_eq!(r.end, DrainEnd::Empty);
            let keys: Vec<_> = r.delivered.iter().map(|d| d.key.to_string()).collect();
            assert_eq!(keys, ["a", "b", "c"]);
            assert_eq!(called(&sink), ["a", "a", "a", "a", "b", "c"]);
            let attempts_seen: Vec<u32> = sink.calls().iter().map(|c| c.2).collect();
            assert_eq!(attempts_seen, [0, 1, 2, 3, 0, 0]);
            assert_eq!(outbox.depth().await.unwrap(), 0);
        }
    }

    /// Proves: a rejected entry is parked (kept, visible, reported as an
    /// alert) and later entries are still delivered in order.
    #[tokio::test]
    async fn rejected_entry_is_parked_and_does_not_block() {
        for (_dir, store) in every_backend().await {
            let entries = vec![
                entry("a", json!(1)),
                entry("bad", json!(2)),
                entry("c", json!(3)),
            ];
            store.commit_step(step(1, 0, entries)).await.unwrap();
            let outbox = Outbox::new(
                store,
                OutboxPolicy {
                    retain_delivered: 0,
                    ..OutboxPolicy::default()
                },
            );
            let sink = ScriptedSink::with_script([
                Ok(()),
                Err(DeliveryError::Rejected("insufficient subsidy".into())),
            ]);

            let r = outbox.drain_once(&sink, UnixMillis(0)).await.unwrap();
            assert_eq!(r.end, DrainEnd::Empty);
            assert_eq!(r.delivered.len(), 2);
            assert_eq!(r.parked.len(), 1);
            assert_eq!(r.parked[0].entry.key.as_str(), "bad");
            assert_eq!(r.parked[0].reason, "insufficient subsidy");
            assert_eq!(r.pruned, 2, "delivered entries pruned, parked kept");

            let parked = outbox.parked().await.unwrap();
            assert_eq!(parked.len(), 1);
            assert_eq!(parked[0].state, OutboxState::Parked);
            assert_eq!(
                parked[0].last_error.as_deref(),
                Some("insufficient subsidy")
            );
            // Never retried.
            outbox.drain_once(&sink, UnixMillis(S)).await.unwrap();
            assert_eq!(called(&sink), ["a", "bad", "c"]);
        }
    }

    /// Proves: after the operator's retry a parked entry is delivered again
    /// (and leaves the parked list); one refused again parks again.
    #[tokio::test]
    async fn an_operator_retry_sends_parked_entries_again() {
        for (_dir, store) in every_backend().await {
            let entries = vec![entry("bad", json!(1)), entry("worse", json!(2))];
            store.commit_step(step(1, 0, entries)).await.unwrap();
            let outbox = Outbox::new(store, OutboxPolicy::default());
            let refuse = || Err(DeliveryError::Rejected("exit before entry".into()));
            let sink = ScriptedSink::with_script([refuse(), refuse(), Ok(()), refuse()]);
            outbox.drain_once(&sink, UnixMillis(0)).await.unwrap();
            assert_eq!(outbox.parked().await.unwrap().len(), 2);
            assert_eq!(outbox.depth().await.unwrap(), 0);

            assert_eq!(outbox.retry_parked(UnixMillis(S)).await.unwrap(), 2);
            assert_eq!(outbox.depth().await.unwrap(), 2);
            let r = outbox.drain_once(&sink, UnixMillis(S)).await.unwrap();
            assert_eq!(r.delivered.len(), 1);
            let parked = outbox.parked().await.unwrap();
            assert_eq!(parked.len(), 1);
            assert_eq!(parked[0].key.as_str(), "worse");
            assert_eq!(called(&sink), ["bad", "worse", "bad", "worse"]);
        }
    }

    /// Proves: only delivered entries beyond the retention count are pruned,
    /// the newest ones are kept, and pending entries are untouched.
    #[tokio::test]
    async fn pruning_keeps_newest_delivered_only() {
        for (_dir, store) in every_backend().await {
            let entries = (0..5).map(|i| entry(&format!("k{i}"), json!(i))).collect();
            store.commit_step(step(1, 0, entries)).await.unwrap();
            let policy = OutboxPolicy {
                retain_delivered: 2,
                ..OutboxPolicy::default()
            };
            let outbox = Outbox::new(store.clone(), policy);
            let sink = ScriptedSink::with_script([Ok(()), Ok(()), Ok(()), retry("down")]);
            let r = outbox.drain_once(&sink, UnixMillis(0)).await.unwrap();
            assert_eq!((r.delivered.len(), r.pruned), (3, 1));
            let delivered = store.entries_in(OutboxState::Delivered).await.unwrap();
            let keys: Vec<_> = delivered.iter().map(|e| e.key.to_string()).collect();
            assert_eq!(keys, ["k1", "k2"]);
            assert_eq!(outbox.depth().await.unwrap(), 2);
        }
    }

    /// Proves: the status helpers report depth, age of the oldest pending
    /// write and the ordered pending view.
    #[tokio::test]
    async fn status_helpers() {
        for (_dir, store) in every_backend().await {
            let outbox = Outbox::new(store.clone(), OutboxPolicy::default());
            assert_eq!(outbox.depth().await.unwrap(), 0);
            assert_eq!(
                outbox.oldest_pending_age(UnixMillis(0)).await.unwrap(),
                None
            );
            store
                .commit_step(step(1, 10 * S, vec![entry("a", json!(1))]))
                .await
                .unwrap();
            store
                .commit_step(step(2, 20 * S, vec![entry("b", json!(2))]))
                .await
                .unwrap();
            assert_eq!(outbox.depth().await.unwrap(), 2);
            assert_eq!(
                outbox.oldest_pending_age(UnixMillis(25 * S)).await.unwrap(),
                Some(Duration::from_secs(15))
            );
            let seqs: Vec<_> = outbox
                .pending_entries()
                .await
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect();
            assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        }
    }

    /// Proves: a drain stops after `max_per_drain` deliveries and says so;
    /// the next drain continues where it stopped.
    #[tokio::test]
    async fn batch_limit_bounds_one_drain() {
        for (_dir, store) in every_backend().await {
            let entries = (0..3).map(|i| entry(&format!("k{i}"), json!(i))).collect();
            store.commit_step(step(1, 0, entries)).await.unwrap();
            let policy = OutboxPolicy {
                max_per_drain: 2,
                ..OutboxPolicy::default()
            };
            let outbox = Outbox::new(store, policy);
            let sink = ScriptedSink::default();
            let r = outbox.drain_once(&sink, UnixMillis(0)).await.unwrap();
            assert_eq!((r.delivered.len(), r.end), (2, DrainEnd::BatchLimit));
            let r = outbox.drain_once(&sink, UnixMillis(0)).await.unwrap();
            assert_eq!((r.delivered.len(), r.end), (1, DrainEnd::Empty));
            assert_eq!(called(&sink), ["k0", "k1", "k2"]);
        }
    }

    /// Proves: a zero batch limit is raised to one, so `flush` terminates.
    #[tokio::test]
    async fn zero_batch_limit_still_progresses() {
        for (_dir, store) in every_backend().await {
            let entries = (0..3).map(|i| entry(&format!("k{i}"), json!(i))).collect();
            store.commit_step(step(1, 0, entries)).await.unwrap();
            let policy = OutboxPolicy {
                max_per_drain: 0,
                ..OutboxPolicy::default()
            };
            let outbox = Outbox::new(store, policy);
            let r = outbox
                .flush(&ScriptedSink::default(), UnixMillis(0))
                .await
                .unwrap();
            assert_eq!((r.delivered.len(), r.end), (3, DrainEnd::Empty));
        }
    }

    /// Proves: `flush` goes past the batch limit and stops at a blocked
    /// head.
    #[tokio::test]
    async fn flush_drains_past_batch_limit() {
        for (_dir, store) in every_backend().await {
            let entries = (0..7).map(|i| entry(&format!("k{i}"), json!(i))).collect();
            store.commit_step(step(1, 0, entries)).await.unwrap();
            let policy = OutboxPolicy {
                max_per_drain: 2,
                ..OutboxPolicy::default()
            };
            let outbox = Outbox::new(store, policy);
            let mut script = vec![Ok(()); 5];
            script.push(retry("down"));
            let sink = ScriptedSink::with_script(script);
            let r = outbox.flush(&sink, UnixMillis(0)).await.unwrap();
            assert_eq!(r.delivered.len(), 5);
            assert!(matches!(r.end, DrainEnd::Failed { .. }));
            assert_eq!(outbox.depth().await.unwrap(), 2);
        }
    }

    /// Proves: a retry time beyond the back-off cap (a clock that jumped
    /// back) does not stall the outbox.
    #[tokio::test]
    async fn clock_jumping_back_does_not_stall() {
        for (_dir, store) in every_backend().await {
            store
                .commit_step(step(1, 0, vec![entry("a", json!(1))]))
                .await
                .unwrap();
            let outbox = Outbox::new(store, OutboxPolicy::default());
            let sink = ScriptedSink::with_script([retry("down")]);
            let t = 3_600 * S;
            outbox.drain_once(&sink, UnixMillis(t)).await.unwrap();
            // The clock is corrected back by an hour.
            let r = outbox.drain_once(&sink, UnixMillis(0)).await.unwrap();
            assert_eq!((r.delivered.len(), r.end), (1, DrainEnd::Empty));
        }
    }

    /// Proves: a drain can run as a spawned task on a multi-threaded
    /// runtime (its future is `Send`).
    #[tokio::test(flavor = "multi_thread")]
    async fn drain_can_be_spawned() {
        for (_dir, store) in every_backend().await {
            store
                .commit_step(step(1, 0, vec![entry("a", json!(1))]))
                .await
                .unwrap();
            let outbox = Outbox::new(store, OutboxPolicy::default());
            let sink = std::sync::Arc::new(ScriptedSink::default());
            let task_sink = sink.clone();
            let r =
                tokio::spawn(async move { outbox.drain_once(&*task_sink, UnixMillis(0)).await })
                    .await
                    .unwrap()
                    .unwrap();
            assert_eq!(r.delivered.len(), 1);
            assert_eq!(called(&sink), ["a"]);
        }
    }
}
