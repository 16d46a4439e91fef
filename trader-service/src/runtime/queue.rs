//! The outbox table's reads and state transitions, as [`TraderStore`]
//! methods. Transitions are guarded by `state = 'pending'`, so an entry only
//! ever moves forward (pending -> delivered | parked), whatever the caller.

use std::time::Duration;

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::runtime::entry::{IdempotencyKey, LedgerWrite, OutboxEntry, OutboxState, Seq};
use crate::runtime::store::{StoreError, TraderStore, parse_json, sql};
use crate::runtime::time::UnixMillis;

impl TraderStore {
    /// Pending entries with `seq > after`, in delivery order, at most `limit`.
    pub(crate) async fn pending_page(
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
        .fetch_all(self.pool())
        .await
        .map_err(sql("read pending"))?;
        rows.iter().map(decode).collect()
    }

    /// Every entry in `state`, in `seq` order.
    pub(crate) async fn entries_in(
        &self,
        state: OutboxState,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, idempotency_key, kind, payload, created_at, attempts,
                    next_attempt_at, last_error, state
             FROM outbox WHERE state = ?1 ORDER BY seq",
        )
        .bind(state.as_str())
        .fetch_all(self.pool())
        .await
        .map_err(sql("read entries"))?;
        rows.iter().map(decode).collect()
    }

    /// Number of pending entries.
    pub(crate) async fn pending_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE state = 'pending'")
            .fetch_one(self.pool())
            .await
            .map_err(sql("count pending"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Age of the oldest pending entry at `now`.
    pub(crate) async fn oldest_pending_age(
        &self,
        now: UnixMillis,
    ) -> Result<Option<Duration>, StoreError> {
        let created: Option<i64> =
            sqlx::query_scalar("SELECT min(created_at) FROM outbox WHERE state = 'pending'")
                .fetch_one(self.pool())
                .await
                .map_err(sql("oldest pending"))?;
        Ok(created.map(|c| now.since(UnixMillis(c))))
    }

    /// Records a successful delivery (the ledger's ack).
    pub(crate) async fn mark_delivered(&self, seq: Seq) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, last_error = NULL
             WHERE seq = ?1 AND state = 'pending'",
        )
        .bind(seq.0)
        .execute(self.pool())
        .await
        .map_err(sql("mark delivered"))?;
        Ok(())
    }

    /// Records a retryable failure and when to try again.
    pub(crate) async fn record_failure(
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
        .execute(self.pool())
        .await
        .map_err(sql("record failure"))?;
        Ok(())
    }

    /// Parks an entry the ledger rejected for good.
    pub(crate) async fn park(&self, seq: Seq, error: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET state = 'parked', attempts = attempts + 1, last_error = ?2
             WHERE seq = ?1 AND state = 'pending'",
        )
        .bind(seq.0)
        .bind(error)
        .execute(self.pool())
        .await
        .map_err(sql("park entry"))?;
        Ok(())
    }

    /// Deletes delivered entries beyond the newest `keep`; pending and parked
    /// entries are never touched. Returns how many were deleted.
    pub(crate) async fn prune_delivered(&self, keep: u32) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM outbox WHERE state = 'delivered' AND seq NOT IN
                (SELECT seq FROM outbox WHERE state = 'delivered' ORDER BY seq DESC LIMIT ?1)",
        )
        .bind(i64::from(keep))
        .execute(self.pool())
        .await
        .map_err(sql("prune delivered"))?;
        Ok(done.rows_affected())
    }
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
