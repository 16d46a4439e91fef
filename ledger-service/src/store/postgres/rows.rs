//! The PostgreSQL dialect of the shared row mapping
//! ([`crate::store::sql`]): decimals are NUMERIC, times TIMESTAMPTZ, the
//! journal's details JSONB.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{Postgres, Row, postgres::PgRow};

use crate::store::{NewJournalRow, StoreError, StoreResult, sql::Cells, to_i64};

pub(super) use crate::store::sql::{
    EVENT_KEY_SQL, FOLDABLE, LOCK_SLOT_TAIL, OPEN_KEY_SQL, POSITION_COLUMNS, event_key_from_row,
    journal_from_row, newest_subsidy, open_key_from_row, position_from_row, slot_head, totals,
};

pub(super) const JOURNAL_COLUMNS: &str =
    "journal_id, position_id, bot_id, slot_id, at, event_type, details::text AS details, event_key";

/// Pool size when none is configured. PostgreSQL's throughput peaks with
/// few active connections per database core: on a 2-core server, the
/// ledger's JournalEvent rate at 32 concurrent callers was higher with 8
/// connections than with 16 or 32 (each extra backend adds context
/// switches and snapshot work to every statement), and its p99 latency
/// lower. Callers beyond the pool wait in the pool's queue, in order.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 8;

impl Cells for PgRow {
    const BACKEND: &'static str = "postgres";

    fn text(&self, col: &str) -> StoreResult<String> {
        get(self, col)
    }

    fn int(&self, col: &str) -> StoreResult<i64> {
        // BIGINT ids and counts, INTEGER `times_repriced`.
        self.try_get::<i64, _>(col)
            .or_else(|_| self.try_get::<i32, _>(col).map(i64::from))
            .map_err(StoreError::db("read integer"))
    }

    fn dec(&self, col: &str) -> StoreResult<Decimal> {
        get(self, col)
    }

    fn opt_dec(&self, col: &str) -> StoreResult<Option<Decimal>> {
        get(self, col)
    }

    fn time(&self, col: &str) -> StoreResult<DateTime<Utc>> {
        get(self, col)
    }
}

pub(super) fn get<'r, T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>>(
    row: &'r PgRow,
    col: &str,
) -> StoreResult<T> {
    row.try_get(col).map_err(StoreError::db("read column"))
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
