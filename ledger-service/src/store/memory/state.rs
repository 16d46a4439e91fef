//! The tables and indexes of the in-memory backend, and the primitive
//! mutations that transactions are built from.
//!
//! Every mutation keeps all indexes in step with the tables and returns an
//! [`Undo`] record; [`State::undo`] applies its exact inverse. A transaction
//! replays its records in reverse to roll back, so the indexes never need
//! rebuilding.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::domain::{
    JournalEntry, Position, PositionStatus, SubsidyTotals,
    subsidy::{CumulativeAt, SubsidyDelta},
};
use crate::store::EventKeyRecord;

use super::bot_journal::BotJournalTable;

/// The `ledger_slots` row of a slot: lock sequence, watermark, snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct SlotRow {
    /// Last sequence number handed out by a slot lock.
    pub(super) last_seq: i64,
    /// Sums of all rows folded by compaction.
    pub(super) watermark: SubsidyTotals,
    /// Lifetime totals when the slot was last compacted.
    pub(super) snapshot: CumulativeAt,
}

/// A `position_ledger` row plus the ids of its journal rows.
#[derive(Debug, Clone)]
pub(super) struct StoredPosition {
    /// The position as the other backends read it back.
    pub(super) position: Position,
    /// Hash of the open request, compared on a retried open key.
    pub(super) open_hash: String,
    /// Surviving journal rows of the position, in journal order.
    pub(super) journal: BTreeSet<u64>,
}

/// A `position_journal` row.
#[derive(Debug, Clone)]
pub(super) struct StoredRow {
    /// The row as readers see it.
    pub(super) entry: JournalEntry,
    /// Slot sequence number reserved by the slot lock.
    pub(super) slot_seq: i64,
    /// Contribution and cumulative totals after it, for subsidy rows.
    pub(super) subsidy: Option<(SubsidyDelta, SubsidyTotals)>,
}

/// Everything kept per (bot, slot).
#[derive(Debug, Default)]
pub(super) struct SlotIndex {
    /// The slot's lock row; `None` until a slot lock creates it.
    pub(super) row: Option<SlotRow>,
    /// Journal rows of the slot, in journal order.
    pub(super) journal: BTreeSet<u64>,
    /// Taken sequence numbers (the `UNIQUE (bot_id, slot_id, slot_seq)`).
    pub(super) seqs: HashSet<i64>,
    /// Subsidy rows of the slot by sequence number; the last is the newest.
    pub(super) subsidy: BTreeMap<i64, u64>,
    /// Journal rows of the slot grouped by position, for compaction.
    pub(super) by_position: BTreeMap<u64, BTreeSet<u64>>,
    /// Open positions of the slot.
    pub(super) open: BTreeSet<u64>,
    /// Closed positions of the slot by (exit time in µs, id).
    pub(super) closed: BTreeSet<(i64, u64)>,
}

/// Everything kept per bot.
#[derive(Debug, Default)]
pub(super) struct BotIndex {
    /// Slots by id.
    pub(super) slots: BTreeMap<u32, SlotIndex>,
    /// Open keys (`UNIQUE (bot_id, open_key)`) and their positions.
    pub(super) open_keys: HashMap<String, u64>,
    /// Journal-write keys (`ledger_event_keys`).
    pub(super) event_keys: HashMap<String, EventKeyRecord>,
    /// Open positions of the bot.
    pub(super) open: BTreeSet<u64>,
    /// Closed positions of the bot by (exit time in µs, id).
    pub(super) closed: BTreeSet<(i64, u64)>,
    /// Closed positions that still have journal rows, by (exit time in µs,
    /// id): what compaction may fold.
    pub(super) closed_with_rows: BTreeSet<(i64, u64)>,
}

/// The whole database.
#[derive(Debug)]
pub(super) struct State {
    /// Positions by id.
    pub(super) positions: HashMap<u64, StoredPosition>,
    /// Journal rows by id.
    pub(super) journal: HashMap<u64, StoredRow>,
    /// Per-bot tables and indexes.
    pub(super) bots: HashMap<String, BotIndex>,
    /// Id of the next position (SQLite `AUTOINCREMENT`: never reused once
    /// committed, even after the row is gone).
    pub(super) next_position_id: u64,
    /// Id of the next journal row, likewise.
    pub(super) next_journal_id: u64,
    /// The bot journal.
    pub(super) bot_journal: BotJournalTable,
}

impl Default for State {
    fn default() -> Self {
        Self {
            positions: HashMap::new(),
            journal: HashMap::new(),
            bots: HashMap::new(),
            next_position_id: 1,
            next_journal_id: 1,
            bot_journal: BotJournalTable::default(),
        }
    }
}

/// The inverse of one mutation, recorded by a transaction.
#[derive(Debug)]
pub(super) enum Undo {
    /// Remove the position and give its id back.
    PositionInserted(u64),
    /// Put the position back as it was.
    PositionChanged(Box<Position>),
    /// Remove the journal row and give its id back.
    JournalInserted(u64),
    /// Put the deleted journal row back.
    JournalDeleted(Box<StoredRow>),
    /// Put the slot's lock row back as it was (or remove it).
    SlotChanged {
        bot_id: String,
        slot_id: u32,
        old: Option<SlotRow>,
    },
    /// Forget the journal-write key.
    EventKeyInserted { bot_id: String, event_key: String },
    /// Remove the bot-journal row and give its id back.
    BotJournalInserted(u64),
}

/// Time as the SQLite backend stores and compares it: unix microseconds.
pub(super) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// `t` at the precision SQLite keeps (whole microseconds), so values read
/// back the same whoever wrote them. The ledger already truncates its
/// times; this covers direct users of the primitives.
pub(super) fn stored_time(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros(t)).unwrap_or(t)
}

/// The (exit time, id) key of a closed position; `None` while open.
fn closed_key(p: &Position) -> Option<(i64, u64)> {
    match (p.status, &p.outcome) {
        (PositionStatus::Closed, Some(o)) => Some((micros(o.exit_time), p.position_id)),
        _ => None,
    }
}

impl State {
    /// The indexes of a bot, for reading.
    pub(super) fn bot(&self, bot_id: &str) -> Option<&BotIndex> {
        self.bots.get(bot_id)
    }

    /// The indexes of a slot, for reading.
    pub(super) fn slot(&self, bot_id: &str, slot_id: u32) -> Option<&SlotIndex> {
        self.bot(bot_id)?.slots.get(&slot_id)
    }

    fn bot_mut(&mut self, bot_id: &str) -> &mut BotIndex {
        self.bots.entry(bot_id.to_owned()).or_default()
    }

    fn slot_mut(&mut self, bot_id: &str, slot_id: u32) -> &mut SlotIndex {
        self.bot_mut(bot_id).slots.entry(slot_id).or_default()
    }

    /// Adds a position to the open/closed indexes.
    fn index_position(&mut self, p: &Position, has_rows: bool) {
        let id = p.position_id;
        let key = closed_key(p);
        let bot = self.bot_mut(&p.bot_id);
        match key {
            None => {
                bot.open.insert(id);
            }
            Some(key) => {
                bot.closed.insert(key);
                if has_rows {
                    bot.closed_with_rows.insert(key);
                }
            }
        }
        let slot = bot.slots.entry(p.slot_id).or_default();
        match key {
            None => slot.open.insert(id),
            Some(key) => slot.closed.insert(key),
        };
    }

    /// Removes a position from the open/closed indexes.
    fn unindex_position(&mut self, p: &Position) {
        let id = p.position_id;
        let key = closed_key(p);
        let bot = self.bot_mut(&p.bot_id);
        match key {
            None => {
                bot.open.remove(&id);
            }
            Some(key) => {
                bot.closed.remove(&key);
                bot.closed_with_rows.remove(&key);
            }
        }
        let slot = bot.slots.entry(p.slot_id).or_default();
        match key {
            None => slot.open.remove(&id),
            Some(key) => slot.closed.remove(&key),
        };
    }

    /// Inserts a new position with the next id (the caller took it from
    /// `next_position_id` and checked the open key is free).
    pub(super) fn insert_position(&mut self, position: Position, open_hash: String) -> Undo {
        let id = position.position_id;
        self.next_position_id = id.saturating_add(1);
        self.index_position(&position, false);
        self.bot_mut(&position.bot_id)
            .open_keys
            .insert(position.open_key.clone(), id);
        self.positions.insert(
            id,
            StoredPosition {
                position,
                open_hash,
                journal: BTreeSet::new(),
            },
        );
        Undo::PositionInserted(id)
    }

    /// Replaces a stored position (same id, bot and slot) with `position`;
    /// `None` when there is no such position.
    pub(super) fn replace_position(&mut self, position: Position) -> Option<Undo> {
        let stored = self.positions.get(&position.position_id)?;
        let old = stored.position.clone();
        let has_rows = !stored.journal.is_empty();
        self.unindex_position(&old);
        self.index_position(&position, has_rows);
        if let Some(stored) = self.positions.get_mut(&position.position_id) {
            stored.position = position;
        }
        Some(Undo::PositionChanged(Box::new(old)))
    }

    /// Appends a journal row with the next id (the caller took it from
    /// `next_journal_id` and checked its position exists and its sequence
    /// number is free).
    pub(super) fn insert_journal(&mut self, row: StoredRow) -> Undo {
        let id = row.entry.journal_id;
        self.next_journal_id = id.saturating_add(1);
        self.link_journal(row);
        Undo::JournalInserted(id)
    }

    /// Deletes a journal row; `None` when there is none.
    pub(super) fn delete_journal(&mut self, journal_id: u64) -> Option<Undo> {
        self.unlink_journal(journal_id)
            .map(|row| Undo::JournalDeleted(Box::new(row)))
    }

    /// Stores a journal row and adds it to every index.
    fn link_journal(&mut self, row: StoredRow) {
        let (id, position_id) = (row.entry.journal_id, row.entry.position_id);
        let slot = self.slot_mut(&row.entry.bot_id, row.entry.slot_id);
        slot.journal.insert(id);
        slot.seqs.insert(row.slot_seq);
        if row.subsidy.is_some() {
            slot.subsidy.insert(row.slot_seq, id);
        }
        slot.by_position.entry(position_id).or_default().insert(id);
        let mut newly_foldable = None;
        if let Some(stored) = self.positions.get_mut(&position_id) {
            if stored.journal.is_empty() {
                newly_foldable =
                    closed_key(&stored.position).map(|k| (stored.position.bot_id.clone(), k));
            }
            stored.journal.insert(id);
        }
        if let Some((bot_id, key)) = newly_foldable {
            self.bot_mut(&bot_id).closed_with_rows.insert(key);
        }
        self.journal.insert(id, row);
    }

    /// Removes a journal row from the table and every index.
    fn unlink_journal(&mut self, journal_id: u64) -> Option<StoredRow> {
        let row = self.journal.remove(&journal_id)?;
        let position_id = row.entry.position_id;
        let slot = self.slot_mut(&row.entry.bot_id, row.entry.slot_id);
        slot.journal.remove(&journal_id);
        slot.seqs.remove(&row.slot_seq);
        if row.subsidy.is_some() {
            slot.subsidy.remove(&row.slot_seq);
        }
        if let Some(ids) = slot.by_position.get_mut(&position_id) {
            ids.remove(&journal_id);
            if ids.is_empty() {
                slot.by_position.remove(&position_id);
            }
        }
        let mut no_longer_foldable = None;
        if let Some(stored) = self.positions.get_mut(&position_id) {
            stored.journal.remove(&journal_id);
            if stored.journal.is_empty() {
                no_longer_foldable =
                    closed_key(&stored.position).map(|k| (stored.position.bot_id.clone(), k));
            }
        }
        if let Some((bot_id, key)) = no_longer_foldable {
            self.bot_mut(&bot_id).closed_with_rows.remove(&key);
        }
        Some(row)
    }

    /// Stores the lock row of a slot, creating the slot if needed.
    pub(super) fn set_slot_row(&mut self, bot_id: &str, slot_id: u32, row: SlotRow) -> Undo {
        let old = self.slot_mut(bot_id, slot_id).row.replace(row);
        Undo::SlotChanged {
            bot_id: bot_id.to_owned(),
            slot_id,
            old,
        }
    }

    /// Records a journal-write key (the caller checked it is free).
    pub(super) fn insert_event_key(
        &mut self,
        bot_id: &str,
        event_key: &str,
        record: EventKeyRecord,
    ) -> Undo {
        self.bot_mut(bot_id)
            .event_keys
            .insert(event_key.to_owned(), record);
        Undo::EventKeyInserted {
            bot_id: bot_id.to_owned(),
            event_key: event_key.to_owned(),
        }
    }

    /// Applies the inverse of one mutation.
    pub(super) fn undo(&mut self, undo: Undo) {
        match undo {
            Undo::PositionInserted(id) => {
                if let Some(stored) = self.positions.remove(&id) {
                    self.unindex_position(&stored.position);
                    let bot = self.bot_mut(&stored.position.bot_id);
                    bot.open_keys.remove(&stored.position.open_key);
                }
                self.next_position_id = id;
            }
            Undo::PositionChanged(old) => {
                self.replace_position(*old);
            }
            Undo::JournalInserted(id) => {
                self.unlink_journal(id);
                self.next_journal_id = id;
            }
            Undo::JournalDeleted(row) => self.link_journal(*row),
            Undo::SlotChanged {
                bot_id,
                slot_id,
                old,
            } => self.slot_mut(&bot_id, slot_id).row = old,
            Undo::EventKeyInserted { bot_id, event_key } => {
                self.bot_mut(&bot_id).event_keys.remove(&event_key);
            }
            Undo::BotJournalInserted(id) => self.bot_journal.undo_insert(id),
        }
    }
}
