//! [`TraderStore`]: the trader's own SQLite file holding the engine snapshot,
//! the outbox of ledger writes and runtime metadata.
//!
//! The one invariant that matters: a step's new state and the ledger writes
//! it implies are committed in **one** transaction
//! ([`TraderStore::commit_step`]). A crash keeps both or neither, so after a
//! restart the trader never holds a state whose ledger writes were lost, nor
//! ledger writes for a state it forgot.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection};
use thiserror::Error;
use tokio::sync::Mutex;

use crate::runtime::entry::{IdempotencyKey, NewOutboxEntry, OutboxState};
use crate::runtime::time::UnixMillis;

/// Default store file name, relative to the working directory.
pub const DEFAULT_STORE_FILE: &str = "healgrid-trader.db";

/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A durable SQLite file (WAL, `synchronous=FULL`): the production mode.
    File(PathBuf),
    /// A private in-memory database for tests and backtests; gone on drop.
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

/// The trader's durable local store. Cheap to clone; clones share one
/// connection.
///
/// A single connection serialises every statement: the trader is the only
/// writer, and one connection rules out `SQLITE_BUSY` between our own
/// readers and writers and keeps an in-memory database alive.
#[derive(Debug, Clone)]
pub struct TraderStore {
    pool: SqlitePool,
    /// Held for a whole outbox drain so two drains (from any clone) can never
    /// interleave and deliver out of order.
    drain_lock: Arc<Mutex<()>>,
}

impl TraderStore {
    /// Opens (creating if missing) and migrates the store.
    ///
    /// # Errors
    /// [`StoreError::Open`] if the database cannot be opened,
    /// [`StoreError::Migrate`] if the schema cannot be brought up to date.
    pub async fn open(location: &StoreLocation) -> Result<Self, StoreError> {
        let (options, label) = match location {
            StoreLocation::File(path) => (
                SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(BUSY_TIMEOUT),
                path.display().to_string(),
            ),
            StoreLocation::Memory => (
                SqliteConnectOptions::from_str("sqlite::memory:").map_err(|source| {
                    StoreError::Open {
                        location: "memory".into(),
                        source,
                    }
                })?,
                "memory".to_owned(),
            ),
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // An in-memory database dies with its connection: never recycle it.
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                location: label.clone(),
                source,
            })?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        tracing::info!(location = %label, "trader store open");
        Ok(Self {
            pool,
            drain_lock: Arc::new(Mutex::new(())),
        })
    }

    /// Closes the database for this store and every clone (SQLite
    /// checkpoints the WAL when its last connection closes). Call on
    /// graceful shutdown, after the final outbox flush.
    pub async fn close(self) {
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub(crate) fn drain_lock(&self) -> &Mutex<()> {
        &self.drain_lock
    }

    /// The last committed snapshot, or `None` on a fresh store.
    ///
    /// # Errors
    /// [`StoreError::Sql`] or [`StoreError::Corrupt`].
    pub async fn load_state(&self) -> Result<Option<Snapshot>, StoreError> {
        let row = sqlx::query("SELECT step, state, updated_at FROM engine_snapshot WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(sql("load snapshot"))?;
        let Some(row) = row else { return Ok(None) };
        let step: i64 = row.try_get("step").map_err(sql("decode snapshot"))?;
        let state: String = row.try_get("state").map_err(sql("decode snapshot"))?;
        let updated_at: i64 = row.try_get("updated_at").map_err(sql("decode snapshot"))?;
        Ok(Some(Snapshot {
            step: u64::try_from(step).map_err(|_| StoreError::Corrupt {
                what: "engine_snapshot.step",
                detail: format!("negative step {step}"),
            })?,
            state: parse_json("engine_snapshot.state", &state)?,
            updated_at: UnixMillis(updated_at),
        }))
    }

    /// Writes the step's snapshot, queues its ledger writes and upserts its
    /// metadata in one transaction: all of it is durable, or none of it.
    ///
    /// # Errors
    /// [`StoreError::StepNotAdvanced`] if `commit.step` is not newer than the
    /// stored step; [`StoreError::KeyConflict`] if an entry reuses a queued
    /// key with different content; [`StoreError::Sql`] on I/O failure. In
    /// every error case nothing of the step is stored.
    pub async fn commit_step(&self, commit: StepCommit) -> Result<CommitReport, StoreError> {
        let step =
            i64::try_from(commit.step).map_err(|_| StoreError::StepOutOfRange(commit.step))?;
        // IMMEDIATE takes the write lock up front, so the read-then-write
        // below can never fail half-way on a lock upgrade.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(sql("begin step"))?;

        let last: Option<i64> = sqlx::query_scalar("SELECT step FROM engine_snapshot WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(sql("read step"))?;
        if let Some(last) = last.filter(|last| *last >= step) {
            return Err(StoreError::StepNotAdvanced {
                last: u64::try_from(last).unwrap_or(0),
                attempted: commit.step,
            });
        }

        sqlx::query(
            "INSERT INTO engine_snapshot (id, step, state, updated_at) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET
                 step = excluded.step, state = excluded.state, updated_at = excluded.updated_at",
        )
        .bind(step)
        .bind(commit.state.as_str())
        .bind(commit.at.0)
        .execute(&mut *tx)
        .await
        .map_err(sql("write snapshot"))?;

        let mut report = CommitReport::default();
        for entry in &commit.entries {
            if enqueue(&mut tx, entry, commit.at).await? {
                report.queued += 1;
            } else {
                report.duplicates += 1;
            }
        }
        for (key, value) in &commit.meta {
            upsert_meta(&mut tx, key, value).await?;
        }

        tx.commit().await.map_err(sql("commit step"))?;
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
        let mut conn = self.pool.acquire().await.map_err(sql("acquire"))?;
        upsert_meta(&mut conn, key, value).await
    }

    /// Reads one metadata value.
    ///
    /// # Errors
    /// [`StoreError::Sql`].
    pub async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT value FROM runtime_meta WHERE key = ?1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql("get meta"))
    }

    /// Removes one metadata value (e.g. an `order_key -> txid` mapping whose
    /// order is gone); absent keys are fine.
    ///
    /// # Errors
    /// [`StoreError::Sql`].
    pub async fn delete_meta(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM runtime_meta WHERE key = ?1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(sql("delete meta"))?;
        Ok(())
    }

    /// Every metadata pair whose key starts with `prefix`, ordered by key, so
    /// a namespaced map (`txid:<order_key>`) can be reloaded on start.
    ///
    /// # Errors
    /// [`StoreError::Sql`].
    pub async fn list_meta(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query_as(
            "SELECT key, value FROM runtime_meta
             WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key",
        )
        .bind(prefix)
        .fetch_all(&self.pool)
        .await
        .map_err(sql("list meta"))
    }
}

/// Queues one entry inside the caller's transaction. Returns `true` if it was
/// new, `false` if the identical entry was already queued.
async fn enqueue(
    conn: &mut SqliteConnection,
    entry: &NewOutboxEntry,
    at: UnixMillis,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO outbox (idempotency_key, kind, payload, created_at, next_attempt_at, state)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5)
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(entry.key.as_str())
    .bind(entry.kind.as_str())
    .bind(entry.payload.to_string())
    .bind(at.0)
    .bind(OutboxState::Pending.as_str())
    .execute(&mut *conn)
    .await
    .map_err(sql("queue entry"))?
    .rows_affected();
    if inserted == 1 {
        return Ok(true);
    }

    let (kind, payload): (String, String) =
        sqlx::query_as("SELECT kind, payload FROM outbox WHERE idempotency_key = ?1")
            .bind(entry.key.as_str())
            .fetch_one(&mut *conn)
            .await
            .map_err(sql("read queued entry"))?;
    // Compare parsed values, not text: key order in the stored text must not
    // turn an identical retry into a conflict.
    if kind == entry.kind.as_str() && parse_json("outbox.payload", &payload)? == entry.payload {
        tracing::debug!(key = %entry.key, "identical entry already queued");
        Ok(false)
    } else {
        tracing::warn!(key = %entry.key, kind = %kind, "idempotency key reused with different content");
        Err(StoreError::KeyConflict {
            key: entry.key.clone(),
        })
    }
}

async fn upsert_meta(
    conn: &mut SqliteConnection,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO runtime_meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(conn)
    .await
    .map_err(sql("put meta"))?;
    Ok(())
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
    use crate::runtime::test_support::{entry, step, temp_store};

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
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(store.pool())
            .await
            .unwrap();
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(store.pool())
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

    /// Proves: steps only move forward, and a refused step stores nothing.
    #[tokio::test]
    async fn stale_steps_are_refused() {
        let (_dir, _loc, store) = temp_store().await;
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

    /// Proves: re-queueing an identical write (even with JSON keys in another
    /// order, even within one step) is a no-op; a different payload or kind
    /// under the same key is a typed error.
    #[tokio::test]
    async fn duplicate_keys_are_noops_and_conflicts_are_errors() {
        let (_dir, _loc, store) = temp_store().await;
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

    /// Proves: metadata is a plain upserting map with prefix listing.
    #[tokio::test]
    async fn meta_put_get_list_delete() {
        let (_dir, _loc, store) = temp_store().await;
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
