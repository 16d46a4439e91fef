//! SQLite backend: the embedded default.
//!
//! Decimals are stored as TEXT and parsed back exactly; times as INTEGER
//! unix microseconds. Write transactions start with `BEGIN IMMEDIATE`, which
//! takes SQLite's single writer lock up front, so every write transaction
//! is serialized (a stronger guarantee than the per-slot lock it stands for)
//! and no transaction ever has to upgrade a read lock and deadlock.

use std::{str::FromStr, time::Duration};

use sqlx::{
    Sqlite, SqlitePool, Transaction,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use crate::domain::{JournalEntry, Position, SubsidyTotals, subsidy::CumulativeAt};
use crate::store::{
    EventKeyRecord, OpenKeyRecord, SlotSubsidyState, Store, StoreError, StoreResult, to_i64,
    to_u32, to_u64,
};

mod rows;
mod tx;

use crate::store::sql::bot_journal_reads;
use rows::*;

/// The SQLite-backed store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` and runs the
    /// embedded migrations. `sqlite::memory:` gives a private in-memory
    /// database on a single connection, for tests and backtests.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut options = SqliteConnectOptions::from_str(url)
            .map_err(StoreError::db("parse sqlite url"))?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        if !in_memory {
            options = options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal);
        }
        let pool_options = if in_memory {
            // Every connection to `:memory:` is a separate database, so keep
            // exactly one, forever.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(8)
        };
        let pool = pool_options
            .connect_with(options)
            .await
            .map_err(StoreError::db("connect sqlite"))?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    /// The connection pool, for tools that need raw access.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// A write transaction holding SQLite's writer lock.
#[derive(Debug)]
pub struct SqliteTx {
    pub(super) tx: Transaction<'static, Sqlite>,
}

impl Store for SqliteStore {
    type Tx = SqliteTx;

    async fn begin(&self) -> StoreResult<SqliteTx> {
        let tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::db("begin"))?;
        Ok(SqliteTx { tx })
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
               WHERE p.bot_id = s.bot_id AND p.slot_id = s.slot_id AND p.affects_subsidy = 1 \
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

    async fn subsidy_audit(
        &self,
        bot_id: &str,
        slot_id: u32,
    ) -> StoreResult<(SubsidyTotals, SubsidyTotals)> {
        let mut conn = self
            .pool
            .begin()
            .await
            .map_err(StoreError::db("begin audit"))?;
        let watermark = sqlx::query(
            "SELECT watermark_churner_profit, watermark_over_performance, watermark_subsidy, \
             watermark_operator FROM ledger_slots WHERE bot_id = $1 AND slot_id = $2",
        )
        .bind(bot_id)
        .bind(i64::from(slot_id))
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::db("read watermark"))?
        .as_ref()
        .map(|row| totals(row, "watermark_"))
        .transpose()?
        .unwrap_or_default();
        let rows = sqlx::query(
            "SELECT delta_churner_profit, delta_over_performance, delta_subsidy, delta_operator \
             FROM position_journal WHERE bot_id = $1 AND slot_id = $2 AND affects_subsidy = 1",
        )
        .bind(bot_id)
        .bind(i64::from(slot_id))
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::db("sum journal"))?;
        Ok((watermark, sum_deltas(&rows)?))
    }
}
