//! PostgreSQL backend, also for Supabase's database (`sslmode=require`).
//!
//! Decimals are NUMERIC, times TIMESTAMPTZ. Every write transaction starts
//! by upserting the slot's row in `ledger_slots`, which takes a row lock
//! held until commit: writes to one slot are serialized across connections
//! and across ledger processes sharing the database, while different slots
//! proceed in parallel. Under READ COMMITTED each later statement of the
//! transaction sees everything the previous lock holder committed.

use std::{str::FromStr, time::Duration};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{
    PgPool, Postgres, Row, Transaction,
    postgres::{PgConnectOptions, PgPoolOptions, PgRow},
};

use super::{
    EventKeyRecord, FoldSums, NewJournalRow, OpenKeyRecord, SlotHead, SlotSubsidyState, Store,
    StoreError, StoreResult, StoreTx, to_i64, to_u32, to_u64,
};
use crate::domain::{
    JournalEntry, Outcome, Position, PositionStatus, SubsidyTotals,
    journal::EventDetails,
    position::{CloseReason, Entry, OpenCommand, Regime, SlotMode, TradeId},
    subsidy::CumulativeAt,
};

const POSITION_COLUMNS: &str = "position_id, bot_id, slot_id, trade_id, slot_mode, cycle, \
    open_key, entry_price, entry_cost, entry_fee, entry_volume, entry_time, entry_regime, \
    entry_volatility, original_exit_price, target_profit_pct, current_exit_price, exit_txid, \
    times_repriced, status, exit_price, exit_cost, exit_fee, exit_time, exit_regime, \
    net_profit, close_reason";

const JOURNAL_COLUMNS: &str =
    "journal_id, position_id, bot_id, slot_id, at, event_type, details::text AS details, event_key";

/// Pool size when none is configured.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// The PostgreSQL-backed store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

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
    tx: Transaction<'static, Postgres>,
}

fn dec(row: &PgRow, col: &str) -> StoreResult<Decimal> {
    row.try_get(col).map_err(StoreError::db("read decimal"))
}

fn opt_dec(row: &PgRow, col: &str) -> StoreResult<Option<Decimal>> {
    row.try_get(col).map_err(StoreError::db("read decimal"))
}

fn text_enum<T>(col: &str, text: &str, parse: fn(&str) -> Option<T>) -> StoreResult<T> {
    parse(text).ok_or_else(|| StoreError::corrupt("postgres", format!("{col}: unknown {text:?}")))
}

fn get<'r, T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>>(
    row: &'r PgRow,
    col: &str,
) -> StoreResult<T> {
    row.try_get(col).map_err(StoreError::db("read column"))
}

fn position_from_row(row: &PgRow) -> StoreResult<Position> {
    let status = text_enum(
        "status",
        &get::<String>(row, "status")?,
        PositionStatus::parse,
    )?;
    let outcome = match status {
        PositionStatus::Open => None,
        PositionStatus::Closed => Some(Outcome {
            close_reason: text_enum(
                "close_reason",
                &get::<String>(row, "close_reason")?,
                CloseReason::parse,
            )?,
            exit_price: opt_dec(row, "exit_price")?,
            exit_cost: opt_dec(row, "exit_cost")?,
            exit_fee: opt_dec(row, "exit_fee")?,
            exit_time: get::<DateTime<Utc>>(row, "exit_time")?,
            exit_regime: text_enum(
                "exit_regime",
                &get::<String>(row, "exit_regime")?,
                Regime::parse,
            )?,
            net_profit: opt_dec(row, "net_profit")?,
        }),
    };
    Ok(Position {
        position_id: to_u64("position_ledger", get(row, "position_id")?)?,
        bot_id: get(row, "bot_id")?,
        slot_id: to_u32("position_ledger", get(row, "slot_id")?)?,
        trade_id: text_enum("trade_id", &get::<String>(row, "trade_id")?, TradeId::parse)?,
        slot_mode: text_enum(
            "slot_mode",
            &get::<String>(row, "slot_mode")?,
            SlotMode::parse,
        )?,
        cycle: to_u64("position_ledger", get(row, "cycle")?)?,
        open_key: get(row, "open_key")?,
        entry: Entry {
            price: dec(row, "entry_price")?,
            cost: dec(row, "entry_cost")?,
            fee: dec(row, "entry_fee")?,
            volume: dec(row, "entry_volume")?,
            time: get::<DateTime<Utc>>(row, "entry_time")?,
            regime: text_enum(
                "entry_regime",
                &get::<String>(row, "entry_regime")?,
                Regime::parse,
            )?,
            volatility: dec(row, "entry_volatility")?,
        },
        original_exit_price: dec(row, "original_exit_price")?,
        target_profit_pct: dec(row, "target_profit_pct")?,
        current_exit_price: dec(row, "current_exit_price")?,
        exit_txid: get(row, "exit_txid")?,
        times_repriced: u32::try_from(get::<i32>(row, "times_repriced")?)
            .map_err(|_| StoreError::corrupt("position_ledger", "times_repriced out of range"))?,
        status,
        outcome,
    })
}

fn journal_from_row(row: &PgRow) -> StoreResult<JournalEntry> {
    let json: String = get(row, "details")?;
    let details = EventDetails::from_json(&json)
        .map_err(|e| StoreError::corrupt("position_journal", format!("details: {e}")))?;
    let event_type: String = get(row, "event_type")?;
    if details.event_type().as_str() != event_type {
        return Err(StoreError::corrupt(
            "position_journal",
            format!("event_type {event_type} does not match its details"),
        ));
    }
    Ok(JournalEntry {
        journal_id: to_u64("position_journal", get(row, "journal_id")?)?,
        position_id: to_u64("position_journal", get(row, "position_id")?)?,
        bot_id: get(row, "bot_id")?,
        slot_id: to_u32("position_journal", get(row, "slot_id")?)?,
        at: get::<DateTime<Utc>>(row, "at")?,
        details,
        event_key: get(row, "event_key")?,
    })
}

fn totals(row: &PgRow, prefix: &str) -> StoreResult<SubsidyTotals> {
    Ok(SubsidyTotals {
        churner_profit: dec(row, &format!("{prefix}churner_profit"))?,
        over_performance: dec(row, &format!("{prefix}over_performance"))?,
        subsidy: dec(row, &format!("{prefix}subsidy"))?,
        operator: dec(row, &format!("{prefix}operator"))?,
    })
}

fn opt_totals(row: &PgRow, prefix: &str) -> StoreResult<Option<SubsidyTotals>> {
    let probe: Option<Decimal> = get(row, &format!("{prefix}churner_profit"))?;
    match probe {
        None => Ok(None),
        Some(_) => totals(row, prefix).map(Some),
    }
}

fn event_key_from_row(row: &PgRow) -> StoreResult<EventKeyRecord> {
    Ok(EventKeyRecord {
        request_hash: get(row, "request_hash")?,
        position_id: to_u64("ledger_event_keys", get(row, "position_id")?)?,
        journal_id: to_u64("ledger_event_keys", get(row, "journal_id")?)?,
    })
}

fn open_key_from_row(row: &PgRow) -> StoreResult<OpenKeyRecord> {
    Ok(OpenKeyRecord {
        request_hash: get(row, "open_hash")?,
        position_id: to_u64("position_ledger", get(row, "position_id")?)?,
    })
}

/// Upsert tail shared by the slot locks: bump the sequence (which takes the
/// row lock until commit) and return the slot's state.
const LOCK_SLOT_TAIL: &str = "ON CONFLICT (bot_id, slot_id) DO UPDATE \
    SET last_seq = ledger_slots.last_seq + 1 \
    RETURNING bot_id, slot_id, last_seq, watermark_churner_profit, watermark_over_performance, \
      watermark_subsidy, watermark_operator, snapshot_seq, snapshot_churner_profit, \
      snapshot_over_performance, snapshot_subsidy, snapshot_operator";

fn slot_head(row: &PgRow) -> StoreResult<SlotHead> {
    Ok(SlotHead {
        seq: get(row, "last_seq")?,
        watermark: totals(row, "watermark_")?,
        snapshot: CumulativeAt {
            slot_seq: get(row, "snapshot_seq")?,
            totals: totals(row, "snapshot_")?,
        },
    })
}

const EVENT_KEY_SQL: &str = "SELECT request_hash, position_id, journal_id \
    FROM ledger_event_keys WHERE bot_id = $1 AND event_key = $2";
const OPEN_KEY_SQL: &str =
    "SELECT open_hash, position_id FROM position_ledger WHERE bot_id = $1 AND open_key = $2";
const FOLDABLE: &str = "FROM position_journal j JOIN position_ledger p ON p.position_id = j.position_id \
    WHERE j.bot_id = $1 AND j.slot_id = $2 AND p.status = 'closed' AND p.exit_time < $3";

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
                let newest = match opt_totals(row, "cum_")? {
                    Some(totals) => Some(CumulativeAt {
                        slot_seq: get(row, "newest_seq")?,
                        totals,
                    }),
                    None => None,
                };
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

impl StoreTx for PgTx {
    async fn lock_slot(&mut self, bot_id: &str, slot_id: u32) -> StoreResult<SlotHead> {
        let sql = format!(
            "INSERT INTO ledger_slots (bot_id, slot_id, last_seq) VALUES ($1, $2, 1) {LOCK_SLOT_TAIL}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(bot_id)
            .bind(i64::from(slot_id))
            .fetch_one(&mut *self.tx)
            .await
            .map_err(StoreError::db("lock slot"))?;
        slot_head(&row)
    }

    async fn lock_position_slot(
        &mut self,
        position_id: u64,
    ) -> StoreResult<Option<(String, u32, SlotHead)>> {
        let sql = format!(
            "INSERT INTO ledger_slots (bot_id, slot_id, last_seq) \
             SELECT bot_id, slot_id, 1 FROM position_ledger WHERE position_id = $1 {LOCK_SLOT_TAIL}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to_i64(position_id))
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(StoreError::db("lock slot of position"))?;
        row.map(|row| {
            Ok((
                get(&row, "bot_id")?,
                to_u32("ledger_slots", get(&row, "slot_id")?)?,
                slot_head(&row)?,
            ))
        })
        .transpose()
    }

    async fn event_key(
        &mut self,
        bot_id: &str,
        event_key: &str,
    ) -> StoreResult<Option<EventKeyRecord>> {
        sqlx::query(EVENT_KEY_SQL)
            .bind(bot_id)
            .bind(event_key)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(StoreError::db("read event key"))?
            .as_ref()
            .map(event_key_from_row)
            .transpose()
    }

    async fn open_key(
        &mut self,
        bot_id: &str,
        open_key: &str,
    ) -> StoreResult<Option<OpenKeyRecord>> {
        sqlx::query(OPEN_KEY_SQL)
            .bind(bot_id)
            .bind(open_key)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(StoreError::db("read open key"))?
            .as_ref()
            .map(open_key_from_row)
            .transpose()
    }

    async fn position(&mut self, position_id: u64) -> StoreResult<Option<Position>> {
        let sql = format!("SELECT {POSITION_COLUMNS} FROM position_ledger WHERE position_id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to_i64(position_id))
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(StoreError::db("read position"))?
            .as_ref()
            .map(position_from_row)
            .transpose()
    }

    async fn newest_cumulative(
        &mut self,
        bot_id: &str,
        slot_id: u32,
    ) -> StoreResult<Option<CumulativeAt>> {
        let row = sqlx::query(
            "SELECT slot_seq, cum_churner_profit, cum_over_performance, cum_subsidy, cum_operator \
             FROM position_journal WHERE bot_id = $1 AND slot_id = $2 AND affects_subsidy \
             ORDER BY slot_seq DESC LIMIT 1",
        )
        .bind(bot_id)
        .bind(i64::from(slot_id))
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(StoreError::db("read newest cumulative"))?;
        row.as_ref()
            .map(|row| {
                Ok(CumulativeAt {
                    slot_seq: get(row, "slot_seq")?,
                    totals: totals(row, "cum_")?,
                })
            })
            .transpose()
    }

    async fn insert_position(&mut self, cmd: &OpenCommand, request_hash: &str) -> StoreResult<u64> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO position_ledger (bot_id, slot_id, trade_id, slot_mode, cycle, open_key, \
               open_hash, entry_price, entry_cost, entry_fee, entry_volume, entry_time, \
               entry_regime, entry_volatility, original_exit_price, target_profit_pct, \
               current_exit_price, exit_txid, times_repriced, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $15, \
               $17, 0, 'open') RETURNING position_id",
        )
        .bind(&cmd.bot_id)
        .bind(i64::from(cmd.slot_id))
        .bind(cmd.trade_id.as_str())
        .bind(cmd.slot_mode.as_str())
        .bind(to_i64(cmd.cycle))
        .bind(&cmd.open_key)
        .bind(request_hash)
        .bind(cmd.entry.price)
        .bind(cmd.entry.cost)
        .bind(cmd.entry.fee)
        .bind(cmd.entry.volume)
        .bind(cmd.entry.time)
        .bind(cmd.entry.regime.as_str())
        .bind(cmd.entry.volatility)
        .bind(cmd.original_exit_price)
        .bind(cmd.target_profit_pct)
        .bind(&cmd.exit_txid)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(StoreError::db("insert position"))?;
        to_u64("position_ledger", id)
    }

    async fn insert_journal(&mut self, row: NewJournalRow<'_>) -> StoreResult<u64> {
        let (delta, cum) = row.subsidy.unzip();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO position_journal (position_id, bot_id, slot_id, slot_seq, at, event_type, \
               details, event_key, affects_subsidy, delta_churner_profit, delta_over_performance, \
               delta_subsidy, delta_operator, cum_churner_profit, cum_over_performance, \
               cum_subsidy, cum_operator) \
             VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             RETURNING journal_id",
        )
        .bind(to_i64(row.position_id))
        .bind(row.bot_id)
        .bind(i64::from(row.slot_id))
        .bind(row.slot_seq)
        .bind(row.at)
        .bind(row.details.event_type().as_str())
        .bind(row.details.to_json())
        .bind(row.event_key)
        .bind(row.subsidy.is_some())
        .bind(delta.map(|d| d.churner_profit))
        .bind(delta.map(|d| d.over_performance))
        .bind(delta.map(|d| d.subsidy))
        .bind(delta.map(|d| d.operator))
        .bind(cum.map(|c| c.churner_profit))
        .bind(cum.map(|c| c.over_performance))
        .bind(cum.map(|c| c.subsidy))
        .bind(cum.map(|c| c.operator))
        .fetch_one(&mut *self.tx)
        .await
        .map_err(StoreError::db("insert journal row"))?;
        to_u64("position_journal", id)
    }

    async fn insert_event_key(
        &mut self,
        bot_id: &str,
        event_key: &str,
        record: &EventKeyRecord,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO ledger_event_keys (bot_id, event_key, request_hash, position_id, journal_id) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(bot_id)
        .bind(event_key)
        .bind(&record.request_hash)
        .bind(to_i64(record.position_id))
        .bind(to_i64(record.journal_id))
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::db("insert event key"))?;
        Ok(())
    }

    async fn update_exit_intent(
        &mut self,
        position_id: u64,
        current_exit_price: Decimal,
        exit_txid: &str,
        times_repriced: u32,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE position_ledger SET current_exit_price = $2, exit_txid = $3, times_repriced = $4 \
             WHERE position_id = $1 AND status = 'open'",
        )
        .bind(to_i64(position_id))
        .bind(current_exit_price)
        .bind(exit_txid)
        .bind(i32::try_from(times_repriced).unwrap_or(i32::MAX))
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::db("update exit intent"))?;
        Ok(())
    }

    async fn close_position(&mut self, position_id: u64, o: &Outcome) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE position_ledger SET status = 'closed', close_reason = $2, exit_price = $3, \
               exit_cost = $4, exit_fee = $5, exit_time = $6, exit_regime = $7, net_profit = $8 \
             WHERE position_id = $1 AND status = 'open'",
        )
        .bind(to_i64(position_id))
        .bind(o.close_reason.as_str())
        .bind(o.exit_price)
        .bind(o.exit_cost)
        .bind(o.exit_fee)
        .bind(o.exit_time)
        .bind(o.exit_regime.as_str())
        .bind(o.net_profit)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::db("close position"))?;
        if done.rows_affected() != 1 {
            return Err(StoreError::corrupt(
                "position_ledger",
                format!("position {position_id} was not open when closing under the slot lock"),
            ));
        }
        Ok(())
    }

    async fn compactable_slots(
        &mut self,
        bot_id: &str,
        cutoff: DateTime<Utc>,
    ) -> StoreResult<Vec<u32>> {
        let slots: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT j.slot_id FROM position_journal j \
             JOIN position_ledger p ON p.position_id = j.position_id \
             WHERE p.bot_id = $1 AND p.status = 'closed' AND p.exit_time < $2 ORDER BY j.slot_id",
        )
        .bind(bot_id)
        .bind(cutoff)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(StoreError::db("find compactable slots"))?;
        slots
            .into_iter()
            .map(|s| to_u32("position_journal", s))
            .collect()
    }

    async fn fold_sums(
        &mut self,
        bot_id: &str,
        slot_id: u32,
        cutoff: DateTime<Utc>,
    ) -> StoreResult<FoldSums> {
        let sql = format!(
            "SELECT COALESCE(SUM(j.delta_churner_profit), 0) AS sum_churner_profit, \
               COALESCE(SUM(j.delta_over_performance), 0) AS sum_over_performance, \
               COALESCE(SUM(j.delta_subsidy), 0) AS sum_subsidy, \
               COALESCE(SUM(j.delta_operator), 0) AS sum_operator, \
               COUNT(*) AS row_count, COUNT(DISTINCT j.position_id) AS position_count {FOLDABLE}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(bot_id)
            .bind(i64::from(slot_id))
            .bind(cutoff)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(StoreError::db("sum foldable rows"))?;
        Ok(FoldSums {
            totals: totals(&row, "sum_")?,
            rows: to_u64("position_journal", get(&row, "row_count")?)?,
            positions: to_u64("position_journal", get(&row, "position_count")?)?,
        })
    }

    async fn delete_folded(
        &mut self,
        bot_id: &str,
        slot_id: u32,
        cutoff: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM position_journal WHERE bot_id = $1 AND slot_id = $2 AND position_id IN ( \
               SELECT position_id FROM position_ledger WHERE bot_id = $1 AND slot_id = $2 \
               AND status = 'closed' AND exit_time < $3)",
        )
        .bind(bot_id)
        .bind(i64::from(slot_id))
        .bind(cutoff)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::db("delete folded rows"))?;
        Ok(done.rows_affected())
    }

    async fn set_watermark(
        &mut self,
        bot_id: &str,
        slot_id: u32,
        w: &SubsidyTotals,
        snapshot: &CumulativeAt,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE ledger_slots SET watermark_churner_profit = $3, watermark_over_performance = $4, \
               watermark_subsidy = $5, watermark_operator = $6, snapshot_seq = $7, \
               snapshot_churner_profit = $8, snapshot_over_performance = $9, \
               snapshot_subsidy = $10, snapshot_operator = $11 \
             WHERE bot_id = $1 AND slot_id = $2",
        )
        .bind(bot_id)
        .bind(i64::from(slot_id))
        .bind(w.churner_profit)
        .bind(w.over_performance)
        .bind(w.subsidy)
        .bind(w.operator)
        .bind(snapshot.slot_seq)
        .bind(snapshot.totals.churner_profit)
        .bind(snapshot.totals.over_performance)
        .bind(snapshot.totals.subsidy)
        .bind(snapshot.totals.operator)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::db("set watermark"))?;
        Ok(())
    }

    async fn commit(self) -> StoreResult<()> {
        self.tx.commit().await.map_err(StoreError::db("commit"))
    }
}
