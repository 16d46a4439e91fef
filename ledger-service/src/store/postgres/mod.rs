//! PostgreSQL backend, also for Supabase's database (`sslmode=require`).
//!
//! Decimals are NUMERIC, times TIMESTAMPTZ. Every write transaction starts
//! by upserting the slot's row in `ledger_slots`, which takes a row lock
//! held until commit: writes to one slot are serialized across connections
//! and across ledger processes sharing the database, while different slots
//! proceed in parallel. Under READ COMMITTED each later statement of the
//! transaction sees everything the previous lock holder committed.
//!
//! A batch of writes takes its locks, reads its context and appends its
//! rows in one statement each (arrays bound with `unnest`), so a batch of
//! any size costs the same few round trips. A batch of appends may instead
//! read without locks and append in one statement that checks its slots
//! did not move ([`Store::read_unlocked`], [`Store::append_if_unchanged`]).

use std::{collections::HashMap, str::FromStr, time::Duration};

use sqlx::{
    PgPool, Postgres, Transaction,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::domain::{JournalEntry, Position, SubsidyTotals, subsidy::CumulativeAt};
use crate::store::{
    ContextQuery, EventKeyRecord, KeyedRow, OpenKeyRecord, SlotClaim, SlotSubsidyState, Store,
    StoreError, StoreResult, UnlockedRead, to_i64, to_u32, to_u64,
};

mod append;
mod batch;
#[cfg(test)]
mod fixture;
mod rows;

pub use rows::DEFAULT_MAX_CONNECTIONS;
mod tx;

use crate::store::sql::bot_journal_reads;
use rows::*;

/// The PostgreSQL-backed store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

/// A pooled connection idle longer than this is pinged before it is lent.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

impl PgStore {
    /// Connects to `url` with the default pool size and runs the embedded
    /// migrations (concurrent starters are serialized by sqlx's migration lock).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(url, DEFAULT_MAX_CONNECTIONS).await
    }

    /// Connects with at most `max_connections` pooled connections.
    pub async fn connect_with(url: &str, max_connections: u32) -> StoreResult<Self> {
        let options =
            PgConnectOptions::from_str(url).map_err(StoreError::db("parse postgres url"))?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            // sqlx pings every connection it lends by default: a round trip
            // per transaction, a fifth of a batch's. Only a connection idle
            // for a while (a database restarted in a quiet spell) is
            // checked; one that died under load fails its batch, whose
            // writes are retried one by one and answered retryably.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > PING_AFTER_IDLE {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await
            .map_err(StoreError::db("connect postgres"))?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    /// The connection pool, for tools that need raw access.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// A write transaction; holds the row locks of the slots it touched.
#[derive(Debug)]
pub struct PgTx {
    pub(super) tx: Transaction<'static, Postgres>,
}

impl Store for PgStore {
    type Tx = PgTx;

    async fn begin(&self) -> StoreResult<PgTx> {
        let tx = self.pool.begin().await.map_err(StoreError::db("begin"))?;
        Ok(PgTx { tx })
    }

    async fn position(&self, position_id: u64) -> StoreResult<Option<Position>> {
        let sql = format!("SELECT {POSITION_COLUMNS} FROM position_ledger WHERE position_id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to_i64(position_id))
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("read position"))?
            .as_ref()
            .map(position_from_row)
            .transpose()
    }

    async fn open_positions(
        &self,
        bot_id: &str,
        slot_id: Option<u32>,
    ) -> StoreResult<Vec<Position>> {
        let sql = format!(
            "SELECT {POSITION_COLUMNS} FROM position_ledger WHERE bot_id = $1 \
             AND ($2 IS NULL OR slot_id = $2) AND status = 'open' ORDER BY position_id"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(bot_id)
            .bind(slot_id.map(i64::from))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("list open positions"))?
            .iter()
            .map(position_from_row)
            .collect()
    }

    async fn position_history(
        &self,
        bot_id: &str,
        slot_id: Option<u32>,
        limit: u32,
    ) -> StoreResult<Vec<Position>> {
        let sql = format!(
            "SELECT {POSITION_COLUMNS} FROM position_ledger WHERE bot_id = $1 \
             AND ($2 IS NULL OR slot_id = $2) AND status = 'closed' \
             ORDER BY exit_time DESC, position_id DESC LIMIT $3"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(bot_id)
            .bind(slot_id.map(i64::from))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("list position history"))?
            .iter()
            .map(position_from_row)
            .collect()
    }

    async fn journal_of_position(
        &self,
        position_id: u64,
        after_journal_id: u64,
        limit: u32,
    ) -> StoreResult<Vec<JournalEntry>> {
        let sql = format!(
            "SELECT {JOURNAL_COLUMNS} FROM position_journal WHERE position_id = $1 \
             AND journal_id > $2 ORDER BY journal_id LIMIT $3"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to_i64(position_id))
            .bind(to_i64(after_journal_id))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("read journal of position"))?
            .iter()
            .map(journal_from_row)
            .collect()
    }

    async fn journal_of_slot(
        &self,
        bot_id: &str,
        slot_id: u32,
        after_journal_id: u64,
        limit: u32,
    ) -> StoreResult<Vec<JournalEntry>> {
        let sql = format!(
            "SELECT {JOURNAL_COLUMNS} FROM position_journal WHERE bot_id = $1 AND slot_id = $2 \
             AND journal_id > $3 ORDER BY journal_id LIMIT $4"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(bot_id)
            .bind(i64::from(slot_id))
            .bind(to_i64(after_journal_id))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("read journal of slot"))?
            .iter()
            .map(journal_from_row)
            .collect()
    }

    async fn journal_entry(&self, journal_id: u64) -> StoreResult<Option<JournalEntry>> {
        let sql = format!("SELECT {JOURNAL_COLUMNS} FROM position_journal WHERE journal_id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to_i64(journal_id))
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("read journal row"))?
            .as_ref()
            .map(journal_from_row)
            .transpose()
    }

    async fn created_journal_id(&self, position_id: u64) -> StoreResult<Option<u64>> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT journal_id FROM position_journal \
             WHERE position_id = $1 AND event_type = 'created'",
        )
        .bind(to_i64(position_id))
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("read created row"))?;
        id.map(|v| to_u64("position_journal", v)).transpose()
    }

    async fn subsidy_states(
        &self,
        bot_id: &str,
        slot_id: Option<u32>,
    ) -> StoreResult<Vec<SlotSubsidyState>> {
        let rows = sqlx::query(
            "SELECT s.slot_id, s.snapshot_seq, s.snapshot_churner_profit, \
               s.snapshot_over_performance, s.snapshot_subsidy, s.snapshot_operator, \
               j.slot_seq AS newest_seq, j.cum_churner_profit, j.cum_over_performance, \
               j.cum_subsidy, j.cum_operator \
             FROM ledger_slots s LEFT JOIN position_journal j ON j.journal_id = ( \
               SELECT p.journal_id FROM position_journal p \
               WHERE p.bot_id = s.bot_id AND p.slot_id = s.slot_id AND p.affects_subsidy \
               ORDER BY p.slot_seq DESC LIMIT 1) \
             WHERE s.bot_id = $1 AND ($2 IS NULL OR s.slot_id = $2) ORDER BY s.slot_id",
        )
        .bind(bot_id)
        .bind(slot_id.map(i64::from))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("read subsidy"))?;
        rows.iter()
            .map(|row| {
                let newest = newest_subsidy(row)?;
                Ok(SlotSubsidyState {
                    slot_id: to_u32("ledger_slots", get(row, "slot_id")?)?,
                    snapshot: CumulativeAt {
                        slot_seq: get(row, "snapshot_seq")?,
                        totals: totals(row, "snapshot_")?,
                    },
                    newest,
                })
            })
            .collect()
    }

    bot_journal_reads!();

    async fn event_key(
        &self,
        bot_id: &str,
        event_key: &str,
    ) -> StoreResult<Option<EventKeyRecord>> {
        sqlx::query(EVENT_KEY_SQL)
            .bind(bot_id)
            .bind(event_key)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("read event key"))?
            .as_ref()
            .map(event_key_from_row)
            .transpose()
    }

    async fn open_key(&self, bot_id: &str, open_key: &str) -> StoreResult<Option<OpenKeyRecord>> {
        sqlx::query(OPEN_KEY_SQL)
            .bind(bot_id)
            .bind(open_key)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("read open key"))?
            .as_ref()
            .map(open_key_from_row)
            .transpose()
    }

    async fn position_slots(
        &self,
        position_ids: &[u64],
    ) -> StoreResult<HashMap<u64, (String, u32)>> {
        batch::position_slots(&self.pool, position_ids).await
    }

    async fn read_unlocked(
        &self,
        claims: &[SlotClaim],
        queries: &[ContextQuery<'_>],
    ) -> StoreResult<Option<UnlockedRead>> {
        batch::read_unlocked(&self.pool, claims, queries).await
    }

    fn unlocked_max_writes(&self) -> usize {
        batch::UNLOCKED_MAX_WRITES
    }

    async fn append_if_unchanged(
        &self,
        claims: &[SlotClaim],
        seen: &[i64],
        rows: &[KeyedRow<'_>],
    ) -> StoreResult<Vec<Option<u64>>> {
        append::append_if_unchanged(&self.pool, claims, seen, rows).await
    }

    async fn subsidy_audit(
        &self,
        bot_id: &str,
        slot_id: u32,
    ) -> StoreResult<(SubsidyTotals, SubsidyTotals)> {
        // One statement, so compaction cannot interleave between the parts.
        let row = sqlx::query(
            "SELECT COALESCE(s.watermark_churner_profit, 0) AS watermark_churner_profit, \
               COALESCE(s.watermark_over_performance, 0) AS watermark_over_performance, \
               COALESCE(s.watermark_subsidy, 0) AS watermark_subsidy, \
               COALESCE(s.watermark_operator, 0) AS watermark_operator, \
               j.sum_churner_profit, j.sum_over_performance, j.sum_subsidy, j.sum_operator \
             FROM (SELECT COALESCE(SUM(delta_churner_profit), 0) AS sum_churner_profit, \
                     COALESCE(SUM(delta_over_performance), 0) AS sum_over_performance, \
                     COALESCE(SUM(delta_subsidy), 0) AS sum_subsidy, \
                     COALESCE(SUM(delta_operator), 0) AS sum_operator \
                   FROM position_journal WHERE bot_id = $1 AND slot_id = $2 AND affects_subsidy) j \
             LEFT JOIN ledger_slots s ON s.bot_id = $1 AND s.slot_id = $2",
        )
        .bind(bot_id)
        .bind(i64::from(slot_id))
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::db("audit subsidy"))?;
        Ok((totals(&row, "watermark_")?, totals(&row, "sum_")?))
    }
}
