//! The SQLite dialect of the shared row mapping ([`crate::store::sql`]):
//! decimals are TEXT (exact, never REAL), times unix microseconds.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{Row, Sqlite, sqlite::SqliteRow};

use crate::domain::SubsidyTotals;
use crate::store::{StoreError, StoreResult, sql::Cells};

pub(super) use crate::store::sql::{
    EVENT_KEY_SQL, FOLDABLE, LOCK_SLOT_TAIL, OPEN_KEY_SQL, POSITION_COLUMNS, event_key_from_row,
    journal_from_row, newest_subsidy, open_key_from_row, opt_totals, position_from_row, slot_head,
    totals,
};

pub(super) const JOURNAL_COLUMNS: &str =
    "journal_id, position_id, bot_id, slot_id, at, event_type, details, event_key";

fn parse_dec(col: &str, text: &str) -> StoreResult<Decimal> {
    Decimal::from_str_exact(text)
        .map_err(|e| StoreError::corrupt("sqlite", format!("{col}: {text:?}: {e}")))
}

impl Cells for SqliteRow {
    const BACKEND: &'static str = "sqlite";

    fn text(&self, col: &str) -> StoreResult<String> {
        get(self, col)
    }

    fn int(&self, col: &str) -> StoreResult<i64> {
        get(self, col)
    }

    fn dec(&self, col: &str) -> StoreResult<Decimal> {
        let text: String = self.try_get(col).map_err(StoreError::db("read decimal"))?;
        parse_dec(col, &text)
    }

    fn opt_dec(&self, col: &str) -> StoreResult<Option<Decimal>> {
        let text: Option<String> = self.try_get(col).map_err(StoreError::db("read decimal"))?;
        text.map(|t| parse_dec(col, &t)).transpose()
    }

    fn time(&self, col: &str) -> StoreResult<DateTime<Utc>> {
        let v: i64 = get(self, col)?;
        DateTime::from_timestamp_micros(v)
            .ok_or_else(|| StoreError::corrupt("sqlite", format!("{col}: time {v} out of range")))
    }
}

pub(super) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(super) fn get<'r, T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>>(
    row: &'r SqliteRow,
    col: &str,
) -> StoreResult<T> {
    row.try_get(col).map_err(StoreError::db("read column"))
}

/// Sums the `delta_*` columns of rows in Rust: SQLite's SUM would go
/// through floating point.
pub(super) fn sum_deltas(rows: &[SqliteRow]) -> StoreResult<SubsidyTotals> {
    rows.iter().try_fold(SubsidyTotals::default(), |acc, row| {
        Ok(match opt_totals(row, "delta_")? {
            Some(d) => acc.plus(&d),
            None => acc,
        })
    })
}
