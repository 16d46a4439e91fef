//! Write-transaction primitives of the PostgreSQL backend.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::domain::{
    Outcome, Position, SubsidyTotals, position::OpenCommand, subsidy::CumulativeAt,
};
use crate::store::{
    ContextQuery, EventKeyRecord, FoldSums, KeyedRow, NewJournalRow, OpenKeyRecord, SlotClaim,
    SlotHead, StoreError, StoreResult, StoreTx, WriteContext, to_i64, to_u32, to_u64,
};

use crate::store::sql::bot_journal_insert;

use super::{PgTx, rows::*};

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
        let sql = format!("{INSERT_JOURNAL} RETURNING journal_id");
        let done = bind_journal_row(sqlx::query(sqlx::AssertSqlSafe(sql)), &row)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(StoreError::db("insert journal row"))?;
        to_u64("position_journal", get(&done, "journal_id")?)
    }

    async fn append_keyed(
        &mut self,
        row: NewJournalRow<'_>,
        request_hash: &str,
    ) -> StoreResult<u64> {
        // One round trip: the key insert reads the new row's id from the CTE.
        let sql = format!(
            "WITH j AS ({INSERT_JOURNAL} RETURNING journal_id), \
             k AS (INSERT INTO ledger_event_keys (bot_id, event_key, request_hash, position_id, \
               journal_id) SELECT $2, $8, $18, $1, journal_id FROM j) \
             SELECT journal_id FROM j"
        );
        let done = bind_journal_row(sqlx::query(sqlx::AssertSqlSafe(sql)), &row)
            .bind(request_hash)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(StoreError::db("append journal row"))?;
        to_u64("position_journal", get(&done, "journal_id")?)
    }

    async fn write_context(
        &mut self,
        bot_id: &str,
        slot_id: u32,
        event_key: &str,
        position_id: u64,
    ) -> StoreResult<WriteContext> {
        // The batch read of one write: one SQL text and row mapping for both.
        let query = ContextQuery {
            bot_id,
            slot_id,
            event_key,
            position_id,
        };
        self.contexts(std::slice::from_ref(&query))
            .await?
            .pop()
            .ok_or_else(|| StoreError::corrupt("position_journal", "no write context read"))
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

    bot_journal_insert!(std::convert::identity);

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

    async fn lock_slots(&mut self, claims: &[SlotClaim]) -> StoreResult<Vec<SlotHead>> {
        self.lock_claims(claims).await
    }

    async fn write_contexts(
        &mut self,
        queries: &[ContextQuery<'_>],
    ) -> StoreResult<Vec<WriteContext>> {
        self.contexts(queries).await
    }

    async fn lock_and_read(
        &mut self,
        claims: &[SlotClaim],
        queries: &[ContextQuery<'_>],
    ) -> StoreResult<(Vec<SlotHead>, Vec<WriteContext>)> {
        PgTx::lock_and_read(self, claims, queries).await
    }

    async fn append_rows(&mut self, rows: &[KeyedRow<'_>]) -> StoreResult<Vec<u64>> {
        self.append_all(rows).await
    }

    async fn commit(self) -> StoreResult<()> {
        self.tx.commit().await.map_err(StoreError::db("commit"))
    }
}
