//! Row decoding and shared SQL of the PostgreSQL backend.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{Postgres, Row, postgres::PgRow};

use crate::domain::{
    JournalEntry, Outcome, Position, PositionStatus, SubsidyTotals,
    journal::EventDetails,
    position::{CloseReason, Entry, Regime, SlotMode, TradeId},
    subsidy::CumulativeAt,
};
use crate::store::{
    EventKeyRecord, NewJournalRow, OpenKeyRecord, SlotHead, StoreError, StoreResult, to_i64,
    to_u32, to_u64,
};

pub(super) const POSITION_COLUMNS: &str = "position_id, bot_id, slot_id, trade_id, slot_mode, cycle, \
    open_key, entry_price, entry_cost, entry_fee, entry_volume, entry_time, entry_regime, \
    entry_volatility, original_exit_price, target_profit_pct, current_exit_price, exit_txid, \
    times_repriced, status, exit_price, exit_cost, exit_fee, exit_time, exit_regime, \
    net_profit, close_reason";

pub(super) const JOURNAL_COLUMNS: &str =
    "journal_id, position_id, bot_id, slot_id, at, event_type, details::text AS details, event_key";

/// Pool size when none is configured. PostgreSQL's throughput peaks with
/// few active connections per database core: on a 2-core server, the
/// ledger's JournalEvent rate at 32 concurrent callers was higher with 8
/// connections than with 16 or 32 (each extra backend adds context
/// switches and snapshot work to every statement), and its p99 latency
/// lower. Callers beyond the pool wait in the pool's queue, in order.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 8;

pub(super) fn dec(row: &PgRow, col: &str) -> StoreResult<Decimal> {
    row.try_get(col).map_err(StoreError::db("read decimal"))
}

pub(super) fn opt_dec(row: &PgRow, col: &str) -> StoreResult<Option<Decimal>> {
    row.try_get(col).map_err(StoreError::db("read decimal"))
}

pub(super) fn text_enum<T>(col: &str, text: &str, parse: fn(&str) -> Option<T>) -> StoreResult<T> {
    parse(text).ok_or_else(|| StoreError::corrupt("postgres", format!("{col}: unknown {text:?}")))
}

pub(super) fn get<'r, T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>>(
    row: &'r PgRow,
    col: &str,
) -> StoreResult<T> {
    row.try_get(col).map_err(StoreError::db("read column"))
}

pub(super) fn position_from_row(row: &PgRow) -> StoreResult<Position> {
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

pub(super) fn journal_from_row(row: &PgRow) -> StoreResult<JournalEntry> {
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

pub(super) fn totals(row: &PgRow, prefix: &str) -> StoreResult<SubsidyTotals> {
    Ok(SubsidyTotals {
        churner_profit: dec(row, &format!("{prefix}churner_profit"))?,
        over_performance: dec(row, &format!("{prefix}over_performance"))?,
        subsidy: dec(row, &format!("{prefix}subsidy"))?,
        operator: dec(row, &format!("{prefix}operator"))?,
    })
}

pub(super) fn opt_totals(row: &PgRow, prefix: &str) -> StoreResult<Option<SubsidyTotals>> {
    let probe: Option<Decimal> = get(row, &format!("{prefix}churner_profit"))?;
    match probe {
        None => Ok(None),
        Some(_) => totals(row, prefix).map(Some),
    }
}

pub(super) fn event_key_from_row(row: &PgRow) -> StoreResult<EventKeyRecord> {
    Ok(EventKeyRecord {
        request_hash: get(row, "request_hash")?,
        position_id: to_u64("ledger_event_keys", get(row, "position_id")?)?,
        journal_id: to_u64("ledger_event_keys", get(row, "journal_id")?)?,
    })
}

pub(super) fn open_key_from_row(row: &PgRow) -> StoreResult<OpenKeyRecord> {
    Ok(OpenKeyRecord {
        request_hash: get(row, "open_hash")?,
        position_id: to_u64("position_ledger", get(row, "position_id")?)?,
    })
}

/// Upsert tail shared by the slot locks: bump the sequence (which takes the
/// row lock until commit) and return the slot's state.
pub(super) const LOCK_SLOT_TAIL: &str = "ON CONFLICT (bot_id, slot_id) DO UPDATE \
    SET last_seq = ledger_slots.last_seq + 1 \
    RETURNING bot_id, slot_id, last_seq, watermark_churner_profit, watermark_over_performance, \
      watermark_subsidy, watermark_operator, snapshot_seq, snapshot_churner_profit, \
      snapshot_over_performance, snapshot_subsidy, snapshot_operator";

pub(super) fn slot_head(row: &PgRow) -> StoreResult<SlotHead> {
    Ok(SlotHead {
        seq: get(row, "last_seq")?,
        watermark: totals(row, "watermark_")?,
        snapshot: CumulativeAt {
            slot_seq: get(row, "snapshot_seq")?,
            totals: totals(row, "snapshot_")?,
        },
    })
}

pub(super) const INSERT_JOURNAL: &str = "INSERT INTO position_journal (position_id, bot_id, slot_id, \
    slot_seq, at, event_type, details, event_key, affects_subsidy, delta_churner_profit, \
    delta_over_performance, delta_subsidy, delta_operator, cum_churner_profit, \
    cum_over_performance, cum_subsidy, cum_operator) \
    VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)";

/// Binds `$1..$17` of [`INSERT_JOURNAL`].
pub(super) fn bind_journal_row<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    row: &NewJournalRow<'q>,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    let (delta, cum) = row.subsidy.unzip();
    query
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
}

pub(super) const EVENT_KEY_SQL: &str = "SELECT request_hash, position_id, journal_id \
    FROM ledger_event_keys WHERE bot_id = $1 AND event_key = $2";
pub(super) const OPEN_KEY_SQL: &str =
    "SELECT open_hash, position_id FROM position_ledger WHERE bot_id = $1 AND open_key = $2";
pub(super) const FOLDABLE: &str = "FROM position_journal j JOIN position_ledger p ON p.position_id = j.position_id \
    WHERE j.bot_id = $1 AND j.slot_id = $2 AND p.status = 'closed' AND p.exit_time < $3";
