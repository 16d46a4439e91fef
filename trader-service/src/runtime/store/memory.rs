//! The memory backend of [`super::TraderStore`]: the same contract as the
//! SQLite file (steps only move forward, a step is all-or-nothing, keys are
//! idempotent, outbox entries only move forward, `seq` is never reused),
//! with nothing durable and nothing to wait for.
//!
//! It exists for backtests: every call of the SQLite backend is a round
//! trip to sqlx's worker thread (tens of microseconds), and a backtest
//! commits and drains hundreds of times per simulated day while needing
//! none of it to survive a crash.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::{CommitReport, Snapshot, StepCommit, StoreError, parse_json};
use crate::runtime::entry::{IdempotencyKey, OutboxEntry, OutboxState, Seq};
use crate::runtime::time::UnixMillis;

/// The tables, shared by every clone of the store.
#[derive(Debug, Clone, Default)]
pub(super) struct MemoryTables {
    inner: Arc<Mutex<Tables>>,
}

#[derive(Debug, Default)]
struct Tables {
    /// `(step, state text, updated_at)` of the last commit.
    snapshot: Option<(u64, String, UnixMillis)>,
    /// Every stored entry by `seq`.
    outbox: BTreeMap<i64, OutboxEntry>,
    /// Idempotency key -> `seq` of every stored entry (pruned ones free
    /// their key, as the SQLite table's UNIQUE column does).
    keys: HashMap<IdempotencyKey, i64>,
    /// `seq`s of pending entries, so a drain never walks delivered ones.
    pending: BTreeSet<i64>,
    /// `seq`s of delivered entries, for pruning.
    delivered: BTreeSet<i64>,
    /// The last `seq` handed out (never reused, even after pruning).
    last_seq: i64,
    meta: BTreeMap<String, String>,
}

/// Whether a staged entry is new or an identical re-queue.
enum Staged<'a> {
    New(&'a super::NewOutboxEntry),
    Duplicate,
}

impl MemoryTables {
    /// The tables; a panic elsewhere while holding the lock cannot leave
    /// them half-written (every mutation below validates first, then
    /// applies without failing), so a poisoned lock is still consistent.
    fn tables(&self) -> MutexGuard<'_, Tables> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn load_state(&self) -> Result<Option<Snapshot>, StoreError> {
        let t = self.tables();
        t.snapshot
            .as_ref()
            .map(|(step, state, at)| {
                Ok(Snapshot {
                    step: *step,
                    state: parse_json("engine_snapshot.state", state)?,
                    updated_at: *at,
                })
            })
            .transpose()
    }

    pub(super) fn commit_step(&self, commit: &StepCommit) -> Result<CommitReport, StoreError> {
        let mut t = self.tables();
        if let Some((last, _, _)) = t
            .snapshot
            .as_ref()
            .filter(|(last, _, _)| *last >= commit.step)
        {
            return Err(StoreError::StepNotAdvanced {
                last: *last,
                attempted: commit.step,
            });
        }
        // Validate every entry (against stored ones and earlier ones of the
        // same step) before changing anything: all or nothing.
        let mut staged: Vec<Staged<'_>> = Vec::with_capacity(commit.entries.len());
        let mut report = CommitReport::default();
        for entry in &commit.entries {
            let earlier = staged.iter().find_map(|s| match s {
                Staged::New(e) if e.key == entry.key => Some((e.kind, &e.payload)),
                _ => None,
            });
            let existing = earlier.or_else(|| {
                t.keys
                    .get(&entry.key)
                    .and_then(|seq| t.outbox.get(seq))
                    .map(|e| (e.kind, &e.payload))
            });
            match existing {
                None => {
                    report.queued += 1;
                    staged.push(Staged::New(entry));
                }
                Some((kind, payload)) if kind == entry.kind && *payload == entry.payload => {
                    report.duplicates += 1;
                    staged.push(Staged::Duplicate);
                }
                Some((kind, _)) => {
                    tracing::warn!(key = %entry.key, kind = %kind.as_str(),
                        "idempotency key reused with different content");
                    return Err(StoreError::KeyConflict {
                        key: entry.key.clone(),
                    });
                }
            }
        }
        let step_state = commit.state.as_str().to_owned();
        t.snapshot = Some((commit.step, step_state, commit.at));
        for s in staged {
            let Staged::New(entry) = s else { continue };
            t.last_seq += 1;
            let seq = t.last_seq;
            t.keys.insert(entry.key.clone(), seq);
            t.pending.insert(seq);
            t.outbox.insert(
                seq,
                OutboxEntry {
                    seq: Seq(seq),
                    key: entry.key.clone(),
                    kind: entry.kind,
                    payload: entry.payload.clone(),
                    created_at: commit.at,
                    attempts: 0,
                    next_attempt_at: commit.at,
                    last_error: None,
                    state: OutboxState::Pending,
                },
            );
        }
        for (key, value) in &commit.meta {
            t.meta.insert(key.clone(), value.clone());
        }
        Ok(report)
    }

    pub(super) fn put_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.tables().meta.insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    pub(super) fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.tables().meta.get(key).cloned())
    }

    pub(super) fn delete_meta(&self, key: &str) -> Result<(), StoreError> {
        self.tables().meta.remove(key);
        Ok(())
    }

    pub(super) fn list_meta(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self
            .tables()
            .meta
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    pub(super) fn pending_page(
        &self,
        after: Seq,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let t = self.tables();
        Ok(t.pending
            .range(after.0.saturating_add(1)..)
            .take(limit as usize)
            .filter_map(|seq| t.outbox.get(seq).cloned())
            .collect())
    }

    pub(super) fn entries_in(&self, state: OutboxState) -> Result<Vec<OutboxEntry>, StoreError> {
        Ok(self
            .tables()
            .outbox
            .values()
            .filter(|e| e.state == state)
            .cloned()
            .collect())
    }

    pub(super) fn pending_count(&self) -> Result<u64, StoreError> {
        Ok(self.tables().pending.len() as u64)
    }

    pub(super) fn oldest_pending_age(
        &self,
        now: UnixMillis,
    ) -> Result<Option<Duration>, StoreError> {
        let t = self.tables();
        Ok(t.pending
            .iter()
            .filter_map(|seq| t.outbox.get(seq).map(|e| e.created_at))
            .min()
            .map(|created| now.since(created)))
    }

    /// Applies `change` to a pending entry, then files it under its new
    /// state; entries in any other state are left alone.
    fn transition(&self, seq: Seq, change: impl FnOnce(&mut OutboxEntry)) {
        let mut t = self.tables();
        let t = &mut *t;
        let Some(entry) = t.outbox.get_mut(&seq.0) else {
            return;
        };
        if entry.state != OutboxState::Pending {
            return;
        }
        change(entry);
        entry.attempts = entry.attempts.saturating_add(1);
        if entry.state != OutboxState::Pending {
            t.pending.remove(&seq.0);
        }
        if entry.state == OutboxState::Delivered {
            t.delivered.insert(seq.0);
        }
    }

    pub(super) fn mark_delivered(&self, seq: Seq) -> Result<(), StoreError> {
        self.transition(seq, |e| {
            e.state = OutboxState::Delivered;
            e.last_error = None;
        });
        Ok(())
    }

    pub(super) fn record_failure(
        &self,
        seq: Seq,
        error: &str,
        next_attempt_at: UnixMillis,
    ) -> Result<(), StoreError> {
        self.transition(seq, |e| {
            e.last_error = Some(error.to_owned());
            e.next_attempt_at = next_attempt_at;
        });
        Ok(())
    }

    pub(super) fn park(&self, seq: Seq, error: &str) -> Result<(), StoreError> {
        self.transition(seq, |e| {
            e.state = OutboxState::Parked;
            e.last_error = Some(error.to_owned());
        });
        Ok(())
    }

    pub(super) fn requeue_parked(&self, now: UnixMillis) -> Result<u64, StoreError> {
        let mut t = self.tables();
        let t = &mut *t;
        let mut n = 0;
        for (seq, e) in t.outbox.iter_mut() {
            if e.state == OutboxState::Parked {
                e.state = OutboxState::Pending;
                e.next_attempt_at = now;
                t.pending.insert(*seq);
                n += 1;
            }
        }
        Ok(n)
    }

    pub(super) fn prune_delivered(&self, keep: u32) -> Result<u64, StoreError> {
        let mut t = self.tables();
        let t = &mut *t;
        let excess = t.delivered.len().saturating_sub(keep as usize);
        let doomed: Vec<i64> = t.delivered.iter().take(excess).copied().collect();
        for seq in &doomed {
            t.delivered.remove(seq);
            if let Some(e) = t.outbox.remove(seq) {
                t.keys.remove(&e.key);
            }
        }
        Ok(doomed.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::runtime::test_support::{entry, step};

    /// Proves: pruning frees a delivered entry's key (as the SQLite UNIQUE
    /// column does once the row is gone) but never reuses its `seq`.
    #[test]
    fn pruned_keys_can_return_with_a_new_seq() {
        let m = MemoryTables::default();
        m.commit_step(&step(1, 0, vec![entry("a", json!(1))]))
            .unwrap();
        m.mark_delivered(Seq(1)).unwrap();
        assert_eq!(m.prune_delivered(0).unwrap(), 1);
        m.commit_step(&step(2, 0, vec![entry("a", json!(1))]))
            .unwrap();
        let pending = m.pending_page(Seq(0), 10).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].seq, Seq(2));
    }

    /// Proves: only pending entries change state; a delivered entry cannot
    /// be parked or failed afterwards.
    #[test]
    fn transitions_only_move_forward() {
        let m = MemoryTables::default();
        m.commit_step(&step(1, 0, vec![entry("a", json!(1))]))
            .unwrap();
        m.mark_delivered(Seq(1)).unwrap();
        m.park(Seq(1), "late").unwrap();
        m.record_failure(Seq(1), "late", UnixMillis(5)).unwrap();
        let delivered = m.entries_in(OutboxState::Delivered).unwrap();
        assert_eq!(delivered.len(), 1);
        assert_eq!(delivered[0].attempts, 1);
        assert_eq!(delivered[0].last_error, None);
        assert_eq!(m.pending_count().unwrap(), 0);
    }
}
