//! Write transactions of the in-memory backend: the whole state locked,
//! writes applied in place and undone on drop unless committed.

use std::fmt;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tokio::sync::OwnedMutexGuard;

use crate::domain::{
    BotJournalCommand, Outcome, Position, PositionStatus, SubsidyTotals, position::OpenCommand,
    subsidy::CumulativeAt,
};
use crate::store::{
    EventKeyRecord, FoldSums, NewJournalRow, OpenKeyRecord, SlotHead, StoreError, StoreResult,
    StoreTx, to_i64, to_u64,
};

use super::state::{SlotRow, State, StoredRow, Undo, micros, stored_time};

/// A write transaction of [`super::MemoryStore`]: holds the store's one
/// mutex until committed or dropped, which serializes all writers (the
/// equivalent of SQLite's single writer lock, and so of every slot lock).
/// Dropped without [`StoreTx::commit`], it rolls back every write.
///
/// Reading through the store on the task that holds a transaction waits for
/// that same transaction, forever: finish or drop it first (the ledger
/// always does).
pub struct MemoryTx {
    state: OwnedMutexGuard<State>,
    undo: Vec<Undo>,
}

impl fmt::Debug for MemoryTx {
    // The locked state can be large; show only the pending writes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTx")
            .field("pending_writes", &self.undo.len())
            .finish_non_exhaustive()
    }
}

impl MemoryTx {
    /// A transaction over the locked state, with nothing written yet.
    pub(super) fn new(state: OwnedMutexGuard<State>) -> Self {
        Self {
            state,
            undo: Vec::new(),
        }
    }

    /// Whether compaction with `cutoff` (unix µs) folds the rows of
    /// `position_id`: it is closed, exited before `cutoff` and, when `slot`
    /// is given, belongs to that (bot, slot).
    fn folds(&self, position_id: u64, slot: Option<(&str, u32)>, cutoff: i64) -> bool {
        self.state.positions.get(&position_id).is_some_and(|p| {
            let p = &p.position;
            let in_slot =
                slot.is_none_or(|(bot_id, slot_id)| p.bot_id == bot_id && p.slot_id == slot_id);
            in_slot
                && p.status == PositionStatus::Closed
                && p.outcome
                    .as_ref()
                    .is_some_and(|o| micros(o.exit_time) < cutoff)
        })
    }
}

impl Drop for MemoryTx {
    /// Rolls back: undoes every write not committed, newest first.
    fn drop(&mut self) {
        while let Some(undo) = self.undo.pop() {
            self.state.undo(undo);
        }
    }
}

/// Bumps (or creates) a slot's lock row, as SQLite's upsert does.
fn lock(
    state: &mut State,
    undo: &mut Vec<Undo>,
    bot_id: &str,
    slot_id: u32,
) -> StoreResult<SlotHead> {
    let row = match state.slot(bot_id, slot_id).and_then(|s| s.row) {
        None => SlotRow {
            last_seq: 1,
            ..SlotRow::default()
        },
        Some(row) => SlotRow {
            last_seq: row.last_seq.checked_add(1).ok_or_else(|| {
                StoreError::corrupt(
                    "ledger_slots",
                    format!("sequence of slot {slot_id} overflowed"),
                )
            })?,
            ..row
        },
    };
    undo.push(state.set_slot_row(bot_id, slot_id, row));
    Ok(SlotHead {
        seq: row.last_seq,
        watermark: row.watermark,
        snapshot: row.snapshot,
    })
}

impl StoreTx for MemoryTx {
    async fn lock_slot(&mut self, bot_id: &str, slot_id: u32) -> StoreResult<SlotHead> {
        lock(&mut self.state, &mut self.undo, bot_id, slot_id)
    }

    async fn lock_position_slot(
        &mut self,
        position_id: u64,
    ) -> StoreResult<Option<(String, u32, SlotHead)>> {
        let Some((bot_id, slot_id)) = self
            .state
            .positions
            .get(&position_id)
            .map(|p| (p.position.bot_id.clone(), p.position.slot_id))
        else {
            return Ok(None);
        };
        let head = lock(&mut self.state, &mut self.undo, &bot_id, slot_id)?;
        Ok(Some((bot_id, slot_id, head)))
    }

    async fn event_key(
        &mut self,
        bot_id: &str,
        event_key: &str,
    ) -> StoreResult<Option<EventKeyRecord>> {
        Ok(self.state.read_event_key(bot_id, event_key))
    }

    async fn open_key(
        &mut self,
        bot_id: &str,
        open_key: &str,
    ) -> StoreResult<Option<OpenKeyRecord>> {
        self.state.read_open_key(bot_id, open_key)
    }

    async fn position(&mut self, position_id: u64) -> StoreResult<Option<Position>> {
        Ok(self.state.read_position(position_id))
    }

    async fn newest_cumulative(
        &mut self,
        bot_id: &str,
        slot_id: u32,
    ) -> StoreResult<Option<CumulativeAt>> {
        self.state.newest_cumulative(bot_id, slot_id)
    }

    async fn insert_position(&mut self, cmd: &OpenCommand, request_hash: &str) -> StoreResult<u64> {
        let taken = self
            .state
            .bot(&cmd.bot_id)
            .is_some_and(|b| b.open_keys.contains_key(&cmd.open_key));
        if taken {
            return Err(StoreError::Duplicate {
                op: "insert position",
            });
        }
        let id = self.state.next_position_id;
        let mut position = cmd.to_position(id);
        // SQLite stores the cycle as a saturated i64 and times in whole µs;
        // read them back the same.
        position.cycle = to_u64("position_ledger", to_i64(cmd.cycle))?;
        position.entry.time = stored_time(position.entry.time);
        let undo = self
            .state
            .insert_position(position, request_hash.to_owned());
        self.undo.push(undo);
        Ok(id)
    }

    async fn insert_journal(&mut self, row: NewJournalRow<'_>) -> StoreResult<u64> {
        // The foreign key of `position_journal.position_id`.
        if !self.state.positions.contains_key(&row.position_id) {
            return Err(StoreError::corrupt(
                "position_journal",
                format!(
                    "insert journal row: position {} does not exist",
                    row.position_id
                ),
            ));
        }
        let seq_taken = self
            .state
            .slot(row.bot_id, row.slot_id)
            .is_some_and(|s| s.seqs.contains(&row.slot_seq));
        if seq_taken {
            return Err(StoreError::Duplicate {
                op: "insert journal row",
            });
        }
        let id = self.state.next_journal_id;
        let stored = StoredRow {
            entry: crate::domain::JournalEntry {
                journal_id: id,
                position_id: row.position_id,
                bot_id: row.bot_id.to_owned(),
                slot_id: row.slot_id,
                at: stored_time(row.at),
                details: row.details.clone(),
                event_key: row.event_key.to_owned(),
            },
            slot_seq: row.slot_seq,
            subsidy: row.subsidy,
        };
        let undo = self.state.insert_journal(stored);
        self.undo.push(undo);
        Ok(id)
    }

    async fn insert_event_key(
        &mut self,
        bot_id: &str,
        event_key: &str,
        record: &EventKeyRecord,
    ) -> StoreResult<()> {
        if self.state.read_event_key(bot_id, event_key).is_some() {
            return Err(StoreError::Duplicate {
                op: "insert event key",
            });
        }
        let undo = self
            .state
            .insert_event_key(bot_id, event_key, record.clone());
        self.undo.push(undo);
        Ok(())
    }

    async fn insert_bot_journal(
        &mut self,
        cmd: &BotJournalCommand,
        request_hash: &str,
    ) -> StoreResult<u64> {
        let id = self.state.bot_journal.insert(cmd, request_hash)?;
        self.undo.push(Undo::BotJournalInserted(id));
        Ok(id)
    }

    async fn update_exit_intent(
        &mut self,
        position_id: u64,
        current_exit_price: Decimal,
        exit_txid: &str,
        times_repriced: u32,
    ) -> StoreResult<()> {
        // `WHERE status = 'open'`: a missing or closed position is untouched.
        let Some(mut position) = self
            .state
            .read_position(position_id)
            .filter(|p| p.status == PositionStatus::Open)
        else {
            return Ok(());
        };
        position.current_exit_price = current_exit_price;
        exit_txid.clone_into(&mut position.exit_txid);
        position.times_repriced = times_repriced;
        self.undo.extend(self.state.replace_position(position));
        Ok(())
    }

    async fn close_position(&mut self, position_id: u64, outcome: &Outcome) -> StoreResult<()> {
        let Some(mut position) = self
            .state
            .read_position(position_id)
            .filter(|p| p.status == PositionStatus::Open)
        else {
            return Err(StoreError::corrupt(
                "position_ledger",
                format!("position {position_id} was not open when closing under the slot lock"),
            ));
        };
        position.status = PositionStatus::Closed;
        position.outcome = Some(Outcome {
            exit_time: stored_time(outcome.exit_time),
            ..outcome.clone()
        });
        self.undo.extend(self.state.replace_position(position));
        Ok(())
    }

    async fn compactable_slots(
        &mut self,
        bot_id: &str,
        cutoff: DateTime<Utc>,
    ) -> StoreResult<Vec<u32>> {
        let Some(bot) = self.state.bot(bot_id) else {
            return Ok(Vec::new());
        };
        let mut slots = std::collections::BTreeSet::new();
        for (_, position_id) in bot.closed_with_rows.range(..(micros(cutoff), 0)) {
            let Some(stored) = self.state.positions.get(position_id) else {
                continue;
            };
            for id in &stored.journal {
                if let Some(row) = self.state.journal.get(id) {
                    slots.insert(row.entry.slot_id);
                }
            }
        }
        Ok(slots.into_iter().collect())
    }

    async fn fold_sums(
        &mut self,
        bot_id: &str,
        slot_id: u32,
        cutoff: DateTime<Utc>,
    ) -> StoreResult<FoldSums> {
        let mut sums = FoldSums::default();
        let Some(slot) = self.state.slot(bot_id, slot_id) else {
            return Ok(sums);
        };
        let cutoff = micros(cutoff);
        for (position_id, ids) in &slot.by_position {
            if !self.folds(*position_id, None, cutoff) {
                continue;
            }
            sums.positions += 1;
            for id in ids {
                sums.rows += 1;
                if let Some((delta, _)) = self.state.journal.get(id).and_then(|r| r.subsidy) {
                    sums.totals = sums.totals.plus(&delta);
                }
            }
        }
        Ok(sums)
    }

    async fn delete_folded(
        &mut self,
        bot_id: &str,
        slot_id: u32,
        cutoff: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let Some(slot) = self.state.slot(bot_id, slot_id) else {
            return Ok(0);
        };
        let cutoff = micros(cutoff);
        let doomed: Vec<u64> = slot
            .by_position
            .iter()
            .filter(|(position_id, _)| self.folds(**position_id, Some((bot_id, slot_id)), cutoff))
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect();
        for id in &doomed {
            let undo = self.state.delete_journal(*id);
            self.undo.extend(undo);
        }
        Ok(doomed.len() as u64)
    }

    async fn set_watermark(
        &mut self,
        bot_id: &str,
        slot_id: u32,
        watermark: &SubsidyTotals,
        snapshot: &CumulativeAt,
    ) -> StoreResult<()> {
        // An UPDATE: a slot without a lock row is untouched.
        let Some(row) = self.state.slot(bot_id, slot_id).and_then(|s| s.row) else {
            return Ok(());
        };
        let row = SlotRow {
            watermark: *watermark,
            snapshot: *snapshot,
            ..row
        };
        let undo = self.state.set_slot_row(bot_id, slot_id, row);
        self.undo.push(undo);
        Ok(())
    }

    async fn commit(mut self) -> StoreResult<()> {
        // Keep every write; dropping `self` then only releases the lock.
        self.undo.clear();
        Ok(())
    }
}
