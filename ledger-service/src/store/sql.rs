//! What the SQL backends share: the SQL text that reads the same in both
//! dialects, and the mapping from rows to ledger types. Each backend
//! supplies only how one cell of its dialect decodes ([`Cells`]: decimals
//! are TEXT in SQLite and NUMERIC in PostgreSQL, times unix microseconds
//! and TIMESTAMPTZ) and the statements whose text differs (upserts, JSON,
//! array binds).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::domain::{
    BotAction, BotJournalEntry, JournalEntry, Outcome, Position, PositionStatus, SubsidyTotals,
    journal::EventDetails,
    position::{CloseReason, Entry, Regime, SlotMode, TradeId},
    subsidy::CumulativeAt,
};
use crate::store::{
    EventKeyRecord, OpenKeyRecord, SlotHead, StoreError, StoreResult, StoredBotJournal, to_u32,
    to_u64,
};

/// The columns [`position_from_row`] reads.
pub(super) const POSITION_COLUMNS: &str = "position_id, bot_id, slot_id, trade_id, slot_mode, cycle, \
    open_key, entry_price, entry_cost, entry_fee, entry_volume, entry_time, entry_regime, \
    entry_volatility, original_exit_price, target_profit_pct, current_exit_price, exit_txid, \
    times_repriced, status, exit_price, exit_cost, exit_fee, exit_time, exit_regime, \
    net_profit, close_reason";

/// Upsert tail shared by the slot locks: bump the sequence (which takes the
/// row lock until commit) and return the slot's state.
pub(super) const LOCK_SLOT_TAIL: &str = "ON CONFLICT (bot_id, slot_id) DO UPDATE \
    SET last_seq = ledger_slots.last_seq + 1 \
    RETURNING bot_id, slot_id, last_seq, watermark_churner_profit, watermark_over_performance, \
      watermark_subsidy, watermark_operator, snapshot_seq, snapshot_churner_profit, \
      snapshot_over_performance, snapshot_subsidy, snapshot_operator";

/// A recorded journal-write key, read by [`event_key_from_row`].
pub(super) const EVENT_KEY_SQL: &str = "SELECT request_hash, position_id, journal_id \
    FROM ledger_event_keys WHERE bot_id = $1 AND event_key = $2";

/// A recorded open key, read by [`open_key_from_row`].
pub(super) const OPEN_KEY_SQL: &str =
    "SELECT open_hash, position_id FROM position_ledger WHERE bot_id = $1 AND open_key = $2";

/// The rows compaction folds: `$1` bot, `$2` slot, `$3` cutoff.
pub(super) const FOLDABLE: &str = "FROM position_journal j JOIN position_ledger p ON p.position_id = j.position_id \
    WHERE j.bot_id = $1 AND j.slot_id = $2 AND p.status = 'closed' AND p.exit_time < $3";

/// A page of a bot's journal: `$1` bot, `$2` cursor, `$3` limit.
pub(super) const BOT_JOURNAL_PAGE_SQL: &str = "SELECT bot_journal_id, bot_id, at, action, detail, \
    reason, operator, event_key, request_hash FROM bot_journal \
    WHERE bot_id = $1 AND bot_journal_id > $2 ORDER BY bot_journal_id LIMIT $3";

/// The bot-journal row of `$1` bot written under key `$2`.
pub(super) const BOT_JOURNAL_KEY_SQL: &str = "SELECT bot_journal_id, bot_id, at, action, detail, \
    reason, operator, event_key, request_hash FROM bot_journal \
    WHERE bot_id = $1 AND event_key = $2";

/// Appends a bot-journal row (`$2` is the time in the backend's encoding).
pub(super) const INSERT_BOT_JOURNAL: &str = "INSERT INTO bot_journal (bot_id, at, action, detail, \
    reason, operator, event_key, request_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
    RETURNING bot_journal_id";

/// [`Store::bot_journal`](crate::store::Store::bot_journal) and
/// [`Store::bot_journal_key`](crate::store::Store::bot_journal_key) over a
/// backend's `self.pool`: the same SQL and row mapping in both dialects.
macro_rules! bot_journal_reads {
    () => {
        async fn bot_journal(
            &self,
            bot_id: &str,
            after_bot_journal_id: u64,
            limit: u32,
        ) -> $crate::store::StoreResult<Vec<$crate::domain::BotJournalEntry>> {
            sqlx::query($crate::store::sql::BOT_JOURNAL_PAGE_SQL)
                .bind(bot_id)
                .bind($crate::store::to_i64(after_bot_journal_id))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err($crate::store::StoreError::db("read bot journal"))?
                .iter()
                .map(|row| $crate::store::sql::bot_journal_from_row(row).map(|s| s.entry))
                .collect()
        }

        async fn bot_journal_key(
            &self,
            bot_id: &str,
            event_key: &str,
        ) -> $crate::store::StoreResult<Option<$crate::store::StoredBotJournal>> {
            sqlx::query($crate::store::sql::BOT_JOURNAL_KEY_SQL)
                .bind(bot_id)
                .bind(event_key)
                .fetch_optional(&self.pool)
                .await
                .map_err($crate::store::StoreError::db("read bot journal key"))?
                .as_ref()
                .map($crate::store::sql::bot_journal_from_row)
                .transpose()
        }
    };
}
pub(super) use bot_journal_reads;

/// [`StoreTx::insert_bot_journal`](crate::store::StoreTx::insert_bot_journal)
/// over a backend's `self.tx`; `$at` encodes the time as the dialect
/// stores it.
macro_rules! bot_journal_insert {
    ($at:path) => {
        async fn insert_bot_journal(
            &mut self,
            cmd: &$crate::domain::BotJournalCommand,
            request_hash: &str,
        ) -> $crate::store::StoreResult<u64> {
            let row = sqlx::query($crate::store::sql::INSERT_BOT_JOURNAL)
                .bind(&cmd.bot_id)
                .bind($at(cmd.at))
                .bind(cmd.action.as_str())
                .bind(&cmd.detail)
                .bind(&cmd.reason)
                .bind(&cmd.operator)
                .bind(&cmd.event_key)
                .bind(request_hash)
                .fetch_one(&mut *self.tx)
                .await
                .map_err($crate::store::StoreError::db("append bot journal row"))?;
            $crate::store::to_u64(
                "bot_journal",
                $crate::store::sql::Cells::int(&row, "bot_journal_id")?,
            )
        }
    };
}
pub(super) use bot_journal_insert;

/// How a backend's row yields one cell of each kind the ledger stores.
pub(super) trait Cells {
    /// Backend name for corruption reports.
    const BACKEND: &'static str;
    /// A text cell.
    fn text(&self, col: &str) -> StoreResult<String>;
    /// An integer cell of any width.
    fn int(&self, col: &str) -> StoreResult<i64>;
    /// A decimal cell.
    fn dec(&self, col: &str) -> StoreResult<Decimal>;
    /// A nullable decimal cell.
    fn opt_dec(&self, col: &str) -> StoreResult<Option<Decimal>>;
    /// A time cell.
    fn time(&self, col: &str) -> StoreResult<DateTime<Utc>>;
}

fn text_enum<R: Cells, T>(row: &R, col: &str, parse: fn(&str) -> Option<T>) -> StoreResult<T> {
    let text = row.text(col)?;
    parse(&text).ok_or_else(|| StoreError::corrupt(R::BACKEND, format!("{col}: unknown {text:?}")))
}

/// A position from [`POSITION_COLUMNS`].
pub(super) fn position_from_row(row: &impl Cells) -> StoreResult<Position> {
    let status = text_enum(row, "status", PositionStatus::parse)?;
    let outcome = match status {
        PositionStatus::Open => None,
        PositionStatus::Closed => Some(Outcome {
            close_reason: text_enum(row, "close_reason", CloseReason::parse)?,
            exit_price: row.opt_dec("exit_price")?,
            exit_cost: row.opt_dec("exit_cost")?,
            exit_fee: row.opt_dec("exit_fee")?,
            exit_time: row.time("exit_time")?,
            exit_regime: text_enum(row, "exit_regime", Regime::parse)?,
            net_profit: row.opt_dec("net_profit")?,
        }),
    };
    Ok(Position {
        position_id: to_u64("position_ledger", row.int("position_id")?)?,
        bot_id: row.text("bot_id")?,
        slot_id: to_u32("position_ledger", row.int("slot_id")?)?,
        trade_id: text_enum(row, "trade_id", TradeId::parse)?,
        slot_mode: text_enum(row, "slot_mode", SlotMode::parse)?,
        cycle: to_u64("position_ledger", row.int("cycle")?)?,
        open_key: row.text("open_key")?,
        entry: Entry {
            price: row.dec("entry_price")?,
            cost: row.dec("entry_cost")?,
            fee: row.dec("entry_fee")?,
            volume: row.dec("entry_volume")?,
            time: row.time("entry_time")?,
            regime: text_enum(row, "entry_regime", Regime::parse)?,
            volatility: row.dec("entry_volatility")?,
        },
        original_exit_price: row.dec("original_exit_price")?,
        target_profit_pct: row.dec("target_profit_pct")?,
        current_exit_price: row.dec("current_exit_price")?,
        exit_txid: row.text("exit_txid")?,
        times_repriced: u32::try_from(row.int("times_repriced")?)
            .map_err(|_| StoreError::corrupt("position_ledger", "times_repriced out of range"))?,
        status,
        outcome,
    })
}

/// A journal row from the backend's journal columns (`details` as JSON
/// text).
pub(super) fn journal_from_row(row: &impl Cells) -> StoreResult<JournalEntry> {
    let json = row.text("details")?;
    let details = EventDetails::from_json(&json)
        .map_err(|e| StoreError::corrupt("position_journal", format!("details: {e}")))?;
    let event_type = row.text("event_type")?;
    if details.event_type().as_str() != event_type {
        return Err(StoreError::corrupt(
            "position_journal",
            format!("event_type {event_type} does not match its details"),
        ));
    }
    Ok(JournalEntry {
        journal_id: to_u64("position_journal", row.int("journal_id")?)?,
        position_id: to_u64("position_journal", row.int("position_id")?)?,
        bot_id: row.text("bot_id")?,
        slot_id: to_u32("position_journal", row.int("slot_id")?)?,
        at: row.time("at")?,
        details,
        event_key: row.text("event_key")?,
    })
}

/// The four subsidy columns named `{prefix}churner_profit` and so on.
pub(super) fn totals(row: &impl Cells, prefix: &str) -> StoreResult<SubsidyTotals> {
    Ok(SubsidyTotals {
        churner_profit: row.dec(&format!("{prefix}churner_profit"))?,
        over_performance: row.dec(&format!("{prefix}over_performance"))?,
        subsidy: row.dec(&format!("{prefix}subsidy"))?,
        operator: row.dec(&format!("{prefix}operator"))?,
    })
}

/// Like [`totals`], `None` when the columns are NULL.
pub(super) fn opt_totals(row: &impl Cells, prefix: &str) -> StoreResult<Option<SubsidyTotals>> {
    match row.opt_dec(&format!("{prefix}churner_profit"))? {
        None => Ok(None),
        Some(_) => totals(row, prefix).map(Some),
    }
}

/// A bot-journal row from [`BOT_JOURNAL_PAGE_SQL`] or
/// [`BOT_JOURNAL_KEY_SQL`].
pub(super) fn bot_journal_from_row(row: &impl Cells) -> StoreResult<StoredBotJournal> {
    Ok(StoredBotJournal {
        entry: BotJournalEntry {
            bot_journal_id: to_u64("bot_journal", row.int("bot_journal_id")?)?,
            bot_id: row.text("bot_id")?,
            at: row.time("at")?,
            action: text_enum(row, "action", BotAction::parse)?,
            detail: row.text("detail")?,
            reason: row.text("reason")?,
            operator: row.text("operator")?,
            event_key: row.text("event_key")?,
        },
        request_hash: row.text("request_hash")?,
    })
}

/// A key from [`EVENT_KEY_SQL`].
pub(super) fn event_key_from_row(row: &impl Cells) -> StoreResult<EventKeyRecord> {
    Ok(EventKeyRecord {
        request_hash: row.text("request_hash")?,
        position_id: to_u64("ledger_event_keys", row.int("position_id")?)?,
        journal_id: to_u64("ledger_event_keys", row.int("journal_id")?)?,
    })
}

/// A key from [`OPEN_KEY_SQL`].
pub(super) fn open_key_from_row(row: &impl Cells) -> StoreResult<OpenKeyRecord> {
    Ok(OpenKeyRecord {
        request_hash: row.text("open_hash")?,
        position_id: to_u64("position_ledger", row.int("position_id")?)?,
    })
}

/// A slot's newest subsidy row as read beside other columns (`newest_seq`
/// and the `cum_` totals; all null when the slot has none).
pub(super) fn newest_subsidy(row: &impl Cells) -> StoreResult<Option<CumulativeAt>> {
    match opt_totals(row, "cum_")? {
        Some(totals) => Ok(Some(CumulativeAt {
            slot_seq: row.int("newest_seq")?,
            totals,
        })),
        None => Ok(None),
    }
}

/// The slot state returned by [`LOCK_SLOT_TAIL`].
pub(super) fn slot_head(row: &impl Cells) -> StoreResult<SlotHead> {
    Ok(SlotHead {
        seq: row.int("last_seq")?,
        watermark: totals(row, "watermark_")?,
        snapshot: CumulativeAt {
            slot_seq: row.int("snapshot_seq")?,
            totals: totals(row, "snapshot_")?,
        },
    })
}
