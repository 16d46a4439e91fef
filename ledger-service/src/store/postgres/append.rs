//! The one-round-trip journal append of the PostgreSQL backend.
//!
//! `ledger_append_event` (migration 0002) takes the slot lock, checks the
//! key, the position and the subsidy balance, and appends, all inside one
//! autocommitted statement. Its refusals arrive as custom SQLSTATEs with a
//! JSON DETAIL; [`refusal`] is the one place that turns them into
//! [`Refusal`]s, so the ledger reports them exactly as it reports the same
//! rules checked in Rust on the SQLite path.

use rust_decimal::Decimal;
use serde::Deserialize;
use sqlx::{PgPool, postgres::PgDatabaseError};

use crate::domain::SubsidyTotals;
use crate::store::{
    Appended, AppendedRow, AtomicAppend, EventKeyRecord, Refusal, StoreError, StoreResult, to_i64,
    to_u64,
};

use super::rows::{get, position_from_row, totals};

const APPEND_SQL: &str = "SELECT * FROM ledger_append_event($1, $2, $3, $4::jsonb, $5, $6, $7, \
    $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)";

/// Position not found (DETAIL `{"position_id"}`).
const POSITION_NOT_FOUND: &str = "HL001";
/// Event key reused with other content (DETAIL `{"event_key"}`).
const KEY_CONFLICT: &str = "HL002";
/// Position closed (DETAIL `{"position_id"}`).
const POSITION_CLOSED: &str = "HL003";
/// Debit beyond the balance (DETAIL: bot, slot and the current totals).
const INSUFFICIENT_SUBSIDY: &str = "HL004";

/// DETAIL of [`INSUFFICIENT_SUBSIDY`]: the slot's totals before the debit.
#[derive(Debug, Deserialize)]
struct SubsidyDetail {
    bot_id: String,
    slot_id: u32,
    churner_profit: Decimal,
    over_performance: Decimal,
    subsidy: Decimal,
    operator: Decimal,
}

/// Runs the append in one round trip on a pooled connection.
pub(super) async fn append_event(pool: &PgPool, req: &AtomicAppend<'_>) -> StoreResult<Appended> {
    let delta = req.details.subsidy_delta();
    let delta = (!delta.is_zero()).then_some(delta);
    let (new_price, new_txid) = req.move_exit.unzip();
    let row = sqlx::query(APPEND_SQL)
        .bind(to_i64(req.position_id))
        .bind(req.at)
        .bind(req.details.event_type().as_str())
        .bind(req.details.to_json())
        .bind(req.event_key)
        .bind(req.request_hash)
        .bind(req.require_open.is_some())
        .bind(delta.map(|d| d.churner_profit))
        .bind(delta.map(|d| d.over_performance))
        .bind(delta.map(|d| d.subsidy))
        .bind(delta.map(|d| d.operator))
        .bind(new_price)
        .bind(new_txid)
        .bind(req.close.map(|o| o.close_reason.as_str()))
        .bind(req.close.and_then(|o| o.exit_price))
        .bind(req.close.and_then(|o| o.exit_cost))
        .bind(req.close.and_then(|o| o.exit_fee))
        .bind(req.close.map(|o| o.exit_time))
        .bind(req.close.map(|o| o.exit_regime.as_str()))
        .bind(req.close.and_then(|o| o.net_profit))
        .fetch_one(pool)
        .await
        .map_err(|e| match refusal(&e, req) {
            Some(Ok(r)) => StoreError::Refused(r),
            Some(Err(corrupt)) => corrupt,
            None => StoreError::db("append journal event")(e),
        })?;
    let journal_id = to_u64("position_journal", get(&row, "journal_id")?)?;
    if get(&row, "replayed")? {
        return Ok(Appended::Replayed(EventKeyRecord {
            request_hash: req.request_hash.to_owned(),
            position_id: to_u64("ledger_event_keys", get(&row, "key_position_id")?)?,
            journal_id,
        }));
    }
    Ok(Appended::Fresh(Box::new(AppendedRow {
        journal_id,
        position: position_from_row(&row)?,
        totals: totals(&row, "cum_")?,
        old_exit: (get(&row, "old_exit_price")?, get(&row, "old_exit_txid")?),
    })))
}

/// The refusal a failed append carries, if it is one of ours; an error if
/// its DETAIL cannot be read.
fn refusal(e: &sqlx::Error, req: &AtomicAppend<'_>) -> Option<StoreResult<Refusal>> {
    let sqlx::Error::Database(db) = e else {
        return None;
    };
    let pg = db.try_downcast_ref::<PgDatabaseError>()?;
    let detail = pg.detail().unwrap_or_default();
    let refusal = match pg.code() {
        POSITION_NOT_FOUND => Refusal::PositionNotFound {
            position_id: req.position_id,
        },
        POSITION_CLOSED => Refusal::PositionClosed {
            position_id: req.position_id,
            action: req.require_open.unwrap_or("write"),
        },
        KEY_CONFLICT => Refusal::KeyConflict {
            key: req.event_key.to_owned(),
        },
        INSUFFICIENT_SUBSIDY => {
            let d: SubsidyDetail = match serde_json::from_str(detail) {
                Ok(d) => d,
                Err(err) => {
                    return Some(Err(StoreError::corrupt(
                        "ledger_append_event",
                        format!("unreadable refusal detail {detail:?}: {err}"),
                    )));
                }
            };
            let current = SubsidyTotals {
                churner_profit: d.churner_profit,
                over_performance: d.over_performance,
                subsidy: d.subsidy,
                operator: d.operator,
            };
            Refusal::InsufficientSubsidy {
                bot_id: d.bot_id,
                slot_id: d.slot_id,
                balance: current.balance(),
                requested: req.details.subsidy_delta().consumed(),
            }
        }
        _ => return None,
    };
    Some(Ok(refusal))
}
