//! [`TraderStore`]: the trader's own store holding the engine snapshot, the
//! outbox of ledger writes and runtime metadata, on one of two backends:
//! a SQLite file ([`StoreLocation::File`], production: durable) or plain
//! memory ([`StoreLocation::Memory`], tests and backtests: nothing to wait
//! for, gone on drop). Both keep the same contract, tested side by side.
//!
//! The one invariant that matters: a step's new state and the ledger writes
//! it implies are committed in **one** transaction
//! ([`TraderStore::commit_step`]). A crash keeps both or neither, so after a
//! restart the trader never holds a state whose ledger writes were lost, nor
//! ledger writes for a state it forgot.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use thiserror::Error;
use tokio::sync::Mutex;

use crate::runtime::entry::{IdempotencyKey, NewOutboxEntry, OutboxEntry, OutboxState, Seq};
use crate::runtime::time::UnixMillis;

mod memory;
mod sqlite;

use memory::MemoryTables;
use sqlite::SqliteTables;

/// Default store file name, relative to the working directory.
pub const DEFAULT_STORE_FILE: &str = "healgrid-trader.db";

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A durable SQLite file (WAL, `synchronous=FULL`): the production mode.
    File(PathBuf),
    /// Plain memory for tests and backtests: no durability, no I/O, gone on
    /// drop. A backtest commits hundreds of steps per simulated day and
    /// needs none of them to survive a crash.
    Memory,
}

impl StoreLocation {
    /// Reads a configuration value: `sqlite::memory:` or `:memory:` means
    /// [`StoreLocation::Memory`]; `sqlite://path`, `sqlite:path` or a bare
    /// path means a file.
    #[must_use]
    pub fn parse(value: &str) -> Self {
        let value = value.trim();
        if value == "sqlite::memory:" || value == ":memory:" {
            return Self::Memory;
        }
        let path = value
            .strip_prefix("sqlite://")
            .or_else(|| value.strip_prefix("sqlite:"))
            .unwrap_or(value);
        Self::File(PathBuf::from(path))
    }
}

impl Default for StoreLocation {
    fn default() -> Self {
        Self::File(PathBuf::from(DEFAULT_STORE_FILE))
    }
}

/// Everything that can go wrong in the store, with enough context to act on.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database could not be opened or configured.
    #[error("cannot open trader store {location}: {source}")]
    Open {
        /// The file path or `memory`.
        location: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A schema migration failed; the store refuses to run on a half-known
    /// schema.
    #[error("cannot migrate trader store: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A statement failed.
    #[error("trader store {op} failed: {source}")]
    Sql {
        /// What the store was doing.
        op: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A step must be newer than the stored one; committing an older or equal
    /// step would roll the engine back.
    #[error("step {attempted} does not advance the stored step {last}")]
    StepNotAdvanced {
        /// The stored step.
        last: u64,
        /// The step that was offered.
        attempted: u64,
    },
    /// A step number too large for SQLite's signed 64-bit integers.
    #[error("step {0} exceeds the store's range")]
    StepOutOfRange(u64),
    /// The same idempotency key was queued again with a different kind or
    /// payload: two different writes would share one ledger identity, so the
    /// whole step is refused.
    #[error("idempotency key {key} is already queued with different content")]
    KeyConflict {
        /// The reused key.
        key: IdempotencyKey,
    },
    /// A stored row cannot be decoded (unknown enum spelling, bad JSON, ...).
    #[error("corrupt trader store row ({what}): {detail}")]
    Corrupt {
        /// Which column or row.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
}

/// Maps a driver error to [`StoreError::Sql`] with what the store was doing.
pub(crate) fn sql(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Sql { op, source }
}

/// The engine state as of the last committed step.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The step number, strictly increasing across commits.
    pub step: u64,
    /// The engine state, opaque to the store.
    pub state: Value,
    /// When that step was committed.
    pub updated_at: UnixMillis,
}

/// An engine state encoded once, straight to JSON text, ready to store.
///
/// Encoding directly from the state (rather than through a
/// `serde_json::Value` and then to text) is what keeps a commit cheap: the
/// snapshot is written on every step that changed anything, and in a
/// backtest that encoding dominated the cost of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateJson(String);

impl StateJson {
    /// Encodes any serializable state.
    ///
    /// # Errors
    /// Whatever `serde_json` reports (e.g. a map with non-string keys).
    pub fn encode<T: serde::Serialize + ?Sized>(state: &T) -> Result<Self, serde_json::Error> {
        serde_json::to_string(state).map(Self)
    }

    /// The JSON text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Value> for StateJson {
    fn from(value: Value) -> Self {
        Self(value.to_string())
    }
}

/// One engine step's durable effects, committed atomically.
#[derive(Debug, Clone, PartialEq)]
pub struct StepCommit {
    /// Must be greater than the stored step.
    pub step: u64,
    /// The engine state after the step.
    pub state: StateJson,
    /// The step's instant (`updated_at`, and `created_at` of its entries).
    pub at: UnixMillis,
    /// Ledger writes the step implies, in the order they must reach the
    /// ledger.
    pub entries: Vec<NewOutboxEntry>,
    /// Runtime metadata to upsert with the step (e.g. `order_key -> txid`),
    /// so it can never disagree with the state.
    pub meta: Vec<(String, String)>,
}

/// What a commit did with its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommitReport {
    /// Entries newly queued.
    pub queued: usize,
    /// Entries whose key was already queued with identical content (no-op).
    pub duplicates: usize,
}

/// The trader's local store. Cheap to clone; clones share one backend.
#[derive(Debug, Clone)]
pub struct TraderStore {
    backend: Backend,
    /// Held for a whole outbox drain so two drains (from any clone) can never
    /// interleave and deliver out of order.
    drain_lock: Arc<Mutex<()>>,
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqliteTables),
    Memory(MemoryTables),
}

/// Runs the same call on whichever backend the store has. The SQLite
/// backend is async; the memory backend answers at once.
macro_rules! dispatch {
    ($self:ident, $t:ident => $call:expr) => {
        match &$self.backend {
            Backend::Sqlite($t) => $call.await,
            Backend::Memory($t) => $call,
        }
    };
}

impl TraderStore {
    /// Opens (creating and migrating a file if needed) the store.
    ///
    /// # Errors
    /// [`StoreError::Open`] if the database cannot be opened,
    /// [`StoreError::Migrate`] if the schema cannot be brought up to date.
    pub async fn open(location: &StoreLocation) -> Result<Self, StoreError> {
        let backend = match location {
            StoreLocation::File(path) => Backend::Sqlite(SqliteTables::open(path).await?),
            StoreLocation::Memory => {
                tracing::info!(backend = "memory", "trader store open (not durable)");
                Backend::Memory(MemoryTables::default())
            }
        };
        Ok(Self {
            backend,
            drain_lock: Arc::new(Mutex::new(())),
        })
    }

    /// Opens an existing store file read only, without migrating it: an
    /// audit while the trader runs (SQLite's WAL lets a reader see the
    /// last commit) or after it stopped, never changing a byte.
    ///
    /// # Errors
    /// [`StoreError::Open`] if the file cannot be opened.
    pub async fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            backend: Backend::Sqlite(SqliteTables::open_read_only(path).await?),
            drain_lock: Arc::new(Mutex::new(())),
        })
    }

    /// Closes the store for this handle and every clone (SQLite checkpoints
    /// the WAL when its last connection closes). Call on graceful shutdown,
    /// after the final outbox flush.
    pub async fn close(self) {
        if let Backend::Sqlite(t) = self.backend {
            t.close().await;
        }
    }

    pub(crate) fn drain_lock(&self) -> &Mutex<()> {
        &self.drain_lock
    }

    /// The last committed snapshot, or `None` on a fresh store.
    ///
    /// # Errors
    /// [`StoreError::Sql`] or [`StoreError::Corrupt`].
    pub async fn load_state(&self) -> Result<Option<Snapshot>, StoreError> {
        dispatch!(self, t => t.load_state())
    }

    /// Writes the step's snapshot, queues its ledger writes and upserts its
    /// metadata in one transaction: all of it is stored, or none of it.
    ///
    /// # Errors
    /// [`StoreError::StepNotAdvanced`] if `commit.step` is not newer than the
    /// stored step; [`StoreError::KeyConflict`] if an entry reuses a queued
    /// key with different content; [`StoreError::Sql`] on I/O failure. In
    /// every error case nothing of the step is stored.
    pub async fn commit_step(&self, commit: StepCommit) -> Result<CommitReport, StoreError> {
        if i64::try_from(commit.step).is_err() {
            return Err(StoreError::StepOutOfRange(commit.step));
        }
        let report = dispatch!(self, t => t.commit_step(&commit))?;
        tracing::debug!(
            step = commit.step,
            queued = report.queued,
            duplicates = report.duplicates,
            "step committed"
        );
        Ok(report)
    }

    /// Stores one metadata value, replacing any previous one.
    ///
    /// # Errors
    /// [`StoreError::Sql`].
    pub async fn put_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        dispatch!(self, t => t.put_meta(key, value))
    }

    /// Reads one metadata value.
    ///
    /// # Errors
    /// [`StoreError::Sql`].
    pub async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        dispatch!(self, t => t.get_meta(key))
    }

    /// Removes one metadata value (e.g. an `order_key -> txid` mapping whose
    /// order is gone); absent keys are fine.
    ///
    /// # Errors
    /// [`StoreError::Sql`].
    pub async fn delete_meta(&self, key: &str) -> Result<(), StoreError> {
        dispatch!(self, t => t.delete_meta(key))
    }

    /// Every metadata pair whose key starts with `prefix`, ordered by key, so
    /// a namespaced map (`txid:<order_key>`) can be reloaded on start.
    ///
    /// # Errors
    /// [`StoreError::Sql`].
    pub async fn list_meta(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        dispatch!(self, t => t.list_meta(prefix))
    }

    /// Pending entries with `seq > after`, in delivery order, at most `limit`.
    pub(crate) async fn pending_page(
        &self,
        after: Seq,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        dispatch!(self, t => t.pending_page(after, limit))
    }

    /// Every entry in `state`, in `seq` order.
    pub(crate) async fn entries_in(
        &self,
        state: OutboxState,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        dispatch!(self, t => t.entries_in(state))
    }

    /// Number of pending entries.
    pub(crate) async fn pending_count(&self) -> Result<u64, StoreError> {
        dispatch!(self, t => t.pending_count())
    }

    /// Age of the oldest pending entry at `now`.
    pub(crate) async fn oldest_pending_age(
        &self,
        now: UnixMillis,
    ) -> Result<Option<Duration>, StoreError> {
        dispatch!(self, t => t.oldest_pending_age(now))
    }

    /// Records a successful delivery (the ledger's ack). Only a pending
    /// entry moves: entries go pending -> delivered | parked, never back.
    pub(crate) async fn mark_delivered(&self, seq: Seq) -> Result<(), StoreError> {
        dispatch!(self, t => t.mark_delivered(seq))
    }

    /// Records a retryable failure of a pending entry and when to try again.
    pub(crate) async fn record_failure(
        &self,
        seq: Seq,
        error: &str,
        next_attempt_at: UnixMillis,
    ) -> Result<(), StoreError> {
        dispatch!(self, t => t.record_failure(seq, error, next_attempt_at))
    }

    /// Parks a pending entry the ledger rejected for good.
    pub(crate) async fn park(&self, seq: Seq, error: &str) -> Result<(), StoreError> {
        dispatch!(self, t => t.park(seq, error))
    }

    /// Moves every parked entry back to pending, due at once: the operator
    /// fixed what made the ledger refuse them and asks for a retry. The one
    /// transition out of `parked`, and only on an operator's request. Returns
    /// how many moved.
    pub(crate) async fn requeue_parked(&self, now: UnixMillis) -> Result<u64, StoreError> {
        dispatch!(self, t => t.requeue_parked(now))
    }

    /// Deletes delivered entries beyond the newest `keep`; pending and parked
    /// entries are never touched. Returns how many were deleted.
    pub(crate) async fn prune_delivered(&self, keep: u32) -> Result<u64, StoreError> {
        dispatch!(self, t => t.prune_delivered(keep))
    }

    /// The SQLite pool, for tests that inspect the file's settings.
    #[cfg(test)]
    pub(crate) fn sqlite_pool(&self) -> Option<&sqlx::SqlitePool> {
        match &self.backend {
            Backend::Sqlite(t) => Some(t.pool()),
            Backend::Memory(_) => None,
        }
    }
}

/// Parses a stored JSON column.
pub(crate) fn parse_json(what: &'static str, text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::runtime::entry::LedgerWrite;
    use crate::runtime::outbox::{Outbox, OutboxPolicy};
    use crate::runtime::test_support::{entry, every_backend, step, temp_store};

    fn keys(entries: &[crate::runtime::entry::OutboxEntry]) -> Vec<String> {
        entries.iter().map(|e| e.key.to_string()).collect()
    }

    #[test]
    fn locations_parse_from_configuration() {
        assert_eq!(
            StoreLocation::parse("sqlite::memory:"),
            StoreLocation::Memory
        );
        assert_eq!(StoreLocation::parse(":memory:"), StoreLocation::Memory);
        let file = |p: &str| StoreLocation::File(PathBuf::from(p));
        assert_eq!(
            StoreLocation::parse("sqlite://data/t.db"),
            file("data/t.db")
        );
        assert_eq!(StoreLocation::parse("sqlite:t.db"), file("t.db"));
        assert_eq!(StoreLocation::parse("/var/t.db"), file("/var/t.db"));
        assert_eq!(StoreLocation::default(), file(DEFAULT_STORE_FILE));
    }

    #[tokio::test]
    async fn files_use_wal_and_full_sync() {
        let (_dir, _loc, store) = temp_store().await;
        let pool = store.sqlite_pool().expect("a file is SQLite");
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .unwrap();
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous=FULL");
    }

    #[tokio::test]
    async fn memory_store_works_and_starts_empty() {
        let store = TraderStore::open(&StoreLocation::Memory).await.unwrap();
        assert_eq!(store.load_state().await.unwrap(), None);
        store
            .commit_step(step(1, 10, vec![entry("a", json!(1))]))
            .await
            .unwrap();
        assert_eq!(store.load_state().await.unwrap().unwrap().step, 1);
        // A second memory store is a different database.
        let other = TraderStore::open(&StoreLocation::Memory).await.unwrap();
        assert_eq!(other.load_state().await.unwrap(), None);
    }

    /// Proves: snapshot, outbox and metadata survive dropping the store and
    /// reopening the file.
    #[tokio::test]
    async fn everything_survives_reopen() {
        let (_dir, location, store) = temp_store().await;
        let mut commit = step(
            7,
            1_000,
            vec![entry("a", json!({"x": 1})), entry("b", json!([2]))],
        );
        commit.state = json!({"slots": [1, 2, 3]}).into();
        commit.meta = vec![("txid:A1".into(), "OABC".into())];
        store.commit_step(commit).await.unwrap();
        store.put_meta("last_trade", "123").await.unwrap();
        store.close().await;

        let store = TraderStore::open(&location).await.unwrap();
        let snap = store.load_state().await.unwrap().unwrap();
        assert_eq!(snap.step, 7);
        assert_eq!(snap.state, json!({"slots": [1, 2, 3]}));
        assert_eq!(snap.updated_at, UnixMillis(1_000));
        let pending = Outbox::new(store.clone(), OutboxPolicy::default())
            .pending_entries()
            .await
            .unwrap();
        assert_eq!(keys(&pending), ["a", "b"]);
        assert_eq!(pending[0].payload, json!({"x": 1}));
        assert_eq!(pending[0].created_at, UnixMillis(1_000));
        assert_eq!(pending[0].attempts, 0);
        assert_eq!(pending[0].state, OutboxState::Pending);
        assert_eq!(
            store.get_meta("txid:A1").await.unwrap().as_deref(),
            Some("OABC")
        );
        assert_eq!(
            store.get_meta("last_trade").await.unwrap().as_deref(),
            Some("123")
        );
    }

    /// Proves: a step that fails midway (its second entry conflicts with a
    /// queued key) stores neither its snapshot, nor its first entry, nor its
    /// metadata.
    #[tokio::test]
    async fn failed_commit_leaves_nothing_behind() {
        let (_dir, location, store) = temp_store().await;
        store
            .commit_step(step(1, 10, vec![entry("a", json!(1))]))
            .await
            .unwrap();

        let mut bad = step(
            2,
            20,
            vec![entry("c", json!(3)), entry("a", json!("other"))],
        );
        bad.meta = vec![("k".into(), "v".into())];
        let err = store.commit_step(bad).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::KeyConflict { key } if key.as_str() == "a"),
            "{err}"
        );
        store.close().await;

        let store = TraderStore::open(&location).await.unwrap();
        assert_eq!(store.load_state().await.unwrap().unwrap().step, 1);
        let outbox = Outbox::new(store.clone(), OutboxPolicy::default());
        assert_eq!(keys(&outbox.pending_entries().await.unwrap()), ["a"]);
        assert_eq!(store.get_meta("k").await.unwrap(), None);
    }

    /// Proves: on both backends, a step refused midway changes nothing in
    /// place: not the snapshot, not the outbox, not the metadata.
    #[tokio::test]
    async fn failed_commit_changes_nothing_in_place() {
        for (_dir, store) in every_backend().await {
            store
                .commit_step(step(1, 10, vec![entry("a", json!(1))]))
                .await
                .unwrap();
            let mut bad = step(2, 20, vec![entry("c", json!(3)), entry("a", json!(2))]);
            bad.meta = vec![("k".into(), "v".into())];
            assert!(matches!(
                store.commit_step(bad).await,
                Err(StoreError::KeyConflict { .. })
            ));
            let snap = store.load_state().await.unwrap().unwrap();
            assert_eq!((snap.step, snap.updated_at), (1, UnixMillis(10)));
            let outbox = Outbox::new(store.clone(), OutboxPolicy::default());
            assert_eq!(keys(&outbox.pending_entries().await.unwrap()), ["a"]);
            assert_eq!(store.get_meta("k").await.unwrap(), None);
            // The refused step number is still free.
            store.commit_step(step(2, 20, vec![])).await.unwrap();
        }
    }

    /// Proves: steps only move forward, and a refused step stores nothing.
    #[tokio::test]
    async fn stale_steps_are_refused() {
        for (_dir, store) in every_backend().await {
            store.commit_step(step(5, 10, vec![])).await.unwrap();
            for stale in [5, 4] {
                let err = store
                    .commit_step(step(stale, 20, vec![entry("x", json!(0))]))
                    .await
                    .unwrap_err();
                assert!(
                    matches!(err, StoreError::StepNotAdvanced { last: 5, attempted } if attempted == stale),
                    "{err}"
                );
            }
            let err = store
                .commit_step(step(u64::MAX, 20, vec![]))
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::StepOutOfRange(u64::MAX)));
            assert_eq!(store.load_state().await.unwrap().unwrap().step, 5);
            let outbox = Outbox::new(store, OutboxPolicy::default());
            assert_eq!(outbox.depth().await.unwrap(), 0);
        }
    }

    /// Proves: re-queueing an identical write (even with JSON keys in another
    /// order, even within one step) is a no-op; a different payload or kind
    /// under the same key is a typed error.
    #[tokio::test]
    async fn duplicate_keys_are_noops_and_conflicts_are_errors() {
        for (_dir, store) in every_backend().await {
            let first = entry("k", json!({"a": 1, "b": [1, 2]}));
            let report = store
                .commit_step(step(1, 10, vec![first.clone(), first.clone()]))
                .await
                .unwrap();
            assert_eq!(
                report,
                CommitReport {
                    queued: 1,
                    duplicates: 1
                }
            );

            let reordered: Value = serde_json::from_str(r#"{"b":[1,2],"a":1}"#).unwrap();
            let report = store
                .commit_step(step(2, 20, vec![entry("k", reordered)]))
                .await
                .unwrap();
            assert_eq!(
                report,
                CommitReport {
                    queued: 0,
                    duplicates: 1
                }
            );

            let other_payload = entry("k", json!({"a": 2, "b": [1, 2]}));
            let err = store
                .commit_step(step(3, 30, vec![other_payload]))
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::KeyConflict { .. }));

            let mut other_kind = first;
            other_kind.kind = LedgerWrite::ClosePosition;
            let err = store
                .commit_step(step(3, 30, vec![other_kind]))
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::KeyConflict { .. }));

            let outbox = Outbox::new(store.clone(), OutboxPolicy::default());
            assert_eq!(outbox.depth().await.unwrap(), 1);
            assert_eq!(store.load_state().await.unwrap().unwrap().step, 2);
        }
    }

    /// Proves: metadata is a plain upserting map with prefix listing.
    #[tokio::test]
    async fn meta_put_get_list_delete() {
        for (_dir, store) in every_backend().await {
            store.put_meta("txid:b", "2").await.unwrap();
            store.put_meta("txid:a", "1").await.unwrap();
            store.put_meta("txid:a", "1bis").await.unwrap();
            store.put_meta("nonce", "99").await.unwrap();
            assert_eq!(
                store.get_meta("txid:a").await.unwrap().as_deref(),
                Some("1bis")
            );
            assert_eq!(store.get_meta("absent").await.unwrap(), None);
            assert_eq!(
                store.list_meta("txid:").await.unwrap(),
                [
                    ("txid:a".to_owned(), "1bis".to_owned()),
                    ("txid:b".to_owned(), "2".to_owned())
                ]
            );
            store.delete_meta("txid:a").await.unwrap();
            store.delete_meta("txid:a").await.unwrap();
            assert_eq!(store.list_meta("txid:").await.unwrap().len(), 1);
            assert_eq!(store.list_meta("").await.unwrap().len(), 2);
        }
    }
}
