//! The SQLite backend of [`super::TraderStore`]: the production store, a
//! WAL file with `synchronous=FULL`, so a committed step survives a crash
//! or power loss.
//!
//! Outbox transitions are guarded by `state = 'pending'`, so an entry only
//! ever moves forward (pending -> delivered | parked), whatever the caller.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection};

use super::{CommitReport, Snapshot, StepCommit, StoreError, parse_json, sql};
use crate::runtime::entry::{
    IdempotencyKey, LedgerWrite, NewOutboxEntry, OutboxEntry, OutboxState, Seq,
};
use crate::runtime::time::UnixMillis;

/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQLite tables behind a store.
///
/// A single connection serialises every statement: the trader is the only
/// writer, and one connection rules out `SQLITE_BUSY` between our own
/// readers and writers.
#[derive(Debug, Clone)]
pub(super) struct SqliteTables {
    pool: SqlitePool,
}

impl SqliteTables {
    /// Opens (creating if missing) and migrates the store file at `path`.
    pub(super) async fn open(path: &Path) -> Result<Self, StoreError> {
        let label = path.display().to_string();
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                location: label.clone(),
                source,
            })?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        tracing::info!(location = %label, backend = "sqlite", "trader store open");
        Ok(Self { pool })
    }

    /// Opens the existing store file at `path` read only, as it is: no
    /// creation, no migration.
    pub(super) async fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                location: path.display().to_string(),
                source,
            })?;
        Ok(Self { pool })
    }

    /// Closes the pool (SQLite checkpoints the WAL on the last close).
    pub(super) async fn close(self) {
        self.pool.close().await;
    }

    /// The pool, for tests that inspect the file's settings.
    #[cfg(test)]
    pub(super) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The last committed snapshot, or `None` on a fresh store.
    pub(super) async fn load_state(&self) -> Result<Option<Snapshot>, StoreError> {
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
    pub(super) async fn commit_step(
        &self,
        commit: &StepCommit,
    ) -> Result<CommitReport, StoreError> {
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
        Ok(report)
    }

    /// Stores one metadata value, replacing any previous one.
    pub(super) async fn put_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(sql("acquire"))?;
        upsert_meta(&mut conn, key, value).await
    }

    /// Reads one metadata value.
    pub(super) async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT value FROM runtime_meta WHERE key = ?1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql("get meta"))
    }

    /// Removes one metadata value (e.g. an `order_key -> txid` mapping whose
    /// order is gone); absent keys are fine.
    pub(super) async fn delete_meta(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM runtime_meta WHERE key = ?1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(sql("delete meta"))?;
        Ok(())
    }

    /// Every metadata pair whose key starts with `prefix`, ordered by key, so
    /// a namespaced map (`txid:<order_key>`) can be reloaded on start.
    pub(super) async fn list_meta(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query_as(
            "SELECT key, value FROM runtime_meta
             WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key",
        )
        .bind(prefix)
        .fetch_all(&self.pool)
        .await
        .map_err(sql("list meta"))
    }

    /// Pending entries with `seq > after`, in delivery order, at most `limit`.
    pub(super) async fn pending_page(
        &self,
        after: Seq,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, idempotency_key, kind, payload, created_at, attempts,
                    next_attempt_at, last_error, state
             FROM outbox WHERE state = 'pending' AND seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .bind(after.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(sql("read pending"))?;
        rows.iter().map(decode).collect()
    }

    /// Every entry in `state`, in `seq` order.
    pub(super) async fn entries_in(
        &self,
        state: OutboxState,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, idempotency_key, kind, payload, created_at, attempts,
                    next_attempt_at, last_error, state
             FROM outbox WHERE state = ?1 ORDER BY seq",
        )
        .bind(state.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(sql("read entries"))?;
        rows.iter().map(decode).collect()
    }

    /// Number of pending entries.
    pub(super) async fn pending_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE state = 'pending'")
            .fetch_one(&self.pool)
            .await
            .map_err(sql("count pending"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Age of the oldest pending entry at `now`.
    pub(super) async fn oldest_pending_age(
        &self,
        now: UnixMillis,
    ) -> Result<Option<Duration>, StoreError> {
        let created: Option<i64> =
            sqlx::query_scalar("SELECT min(created_at) FROM outbox WHERE state = 'pending'")
                .fetch_one(&self.pool)
                .await
                .map_err(sql("oldest pending"))?;
        Ok(created.map(|c| now.since(UnixMillis(c))))
    }

    /// Records a successful delivery (the ledger's ack).
    pub(super) async fn mark_delivered(&self, seq: Seq) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, last_error = NULL
             WHERE seq = ?1 AND state = 'pending'",
        )
        .bind(seq.0)
        .execute(&self.pool)
        .await
        .map_err(sql("mark delivered"))?;
        Ok(())
    }

    /// Records a retryable failure and when to try again.
    pub(super) async fn record_failure(
        &self,
        seq: Seq,
        error: &str,
        next_attempt_at: UnixMillis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3
             WHERE seq = ?1 AND state = 'pending'",
        )
        .bind(seq.0)
        .bind(error)
        .bind(next_attempt_at.0)
        .execute(&self.pool)
        .await
        .map_err(sql("record failure"))?;
        Ok(())
    }

    /// Parks an entry the ledger rejected for good.
    pub(super) async fn park(&self, seq: Seq, error: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET state = 'parked', attempts = attempts + 1, last_error = ?2
             WHERE seq = ?1 AND state = 'pending'",
        )
        .bind(seq.0)
        .bind(error)
        .execute(&self.pool)
        .await
        .map_err(sql("park entry"))?;
        Ok(())
    }

    /// Moves every parked entry back to pending, due at `now`.
    pub(super) async fn requeue_parked(&self, now: UnixMillis) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET state = 'pending', next_attempt_at = ?1 WHERE state = 'parked'",
        )
        .bind(now.0)
        .execute(&self.pool)
        .await
        .map_err(sql("requeue parked entries"))?;
        Ok(done.rows_affected())
    }

    /// Deletes delivered entries beyond the newest `keep`; pending and parked
    /// entries are never touched. Returns how many were deleted.
    pub(super) async fn prune_delivered(&self, keep: u32) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM outbox WHERE state = 'delivered' AND seq NOT IN
                (SELECT seq FROM outbox WHERE state = 'delivered' ORDER BY seq DESC LIMIT ?1)",
        )
        .bind(i64::from(keep))
        .execute(&self.pool)
        .await
        .map_err(sql("prune delivered"))?;
        Ok(done.rows_affected())
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

fn decode(row: &SqliteRow) -> Result<OutboxEntry, StoreError> {
    let seq: i64 = row.try_get("seq").map_err(sql("decode entry"))?;
    let key: String = row
        .try_get("idempotency_key")
        .map_err(sql("decode entry"))?;
    let kind: String = row.try_get("kind").map_err(sql("decode entry"))?;
    let payload: String = row.try_get("payload").map_err(sql("decode entry"))?;
    let created_at: i64 = row.try_get("created_at").map_err(sql("decode entry"))?;
    let attempts: i64 = row.try_get("attempts").map_err(sql("decode entry"))?;
    let next_attempt_at: i64 = row
        .try_get("next_attempt_at")
        .map_err(sql("decode entry"))?;
    let last_error: Option<String> = row.try_get("last_error").map_err(sql("decode entry"))?;
    let state: String = row.try_get("state").map_err(sql("decode entry"))?;
    let corrupt = |what, detail: String| StoreError::Corrupt { what, detail };
    Ok(OutboxEntry {
        seq: Seq(seq),
        key: IdempotencyKey::new(key)
            .map_err(|e| corrupt("outbox.idempotency_key", e.to_string()))?,
        kind: LedgerWrite::parse(&kind)
            .ok_or_else(|| corrupt("outbox.kind", format!("unknown kind {kind:?}")))?,
        payload: parse_json("outbox.payload", &payload)?,
        created_at: UnixMillis(created_at),
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        next_attempt_at: UnixMillis(next_attempt_at),
        last_error,
        state: OutboxState::parse(&state)
            .ok_or_else(|| corrupt("outbox.state", format!("unknown state {state:?}")))?,
    })
}
