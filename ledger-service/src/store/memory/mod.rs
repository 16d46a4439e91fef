//! In-memory backend: the SQLite backend's semantics without SQLite.
//!
//! Backtests replay thousands of ledger writes; on `sqlite::memory:` every
//! statement crosses to sqlx's worker thread (~50 µs each), which dominates
//! the run. This backend keeps the same tables in plain maps, with indexes
//! so every primitive is O(log n) or O(rows returned), and runs the
//! ledger's rules unchanged through the [`StoreTx`](crate::store::StoreTx)
//! primitives (it offers no [`Store::append_event`], so no rule is
//! duplicated here).
//!
//! A write transaction holds one mutex over the whole state from `begin`
//! until commit or drop, so writers are serialized (as SQLite's
//! `BEGIN IMMEDIATE` serializes them). Writes apply in place and are
//! recorded in an undo log; dropping a transaction without committing
//! replays the log backwards, leaving exactly the state before it,
//! including the id counters: as with SQLite's transactional
//! `AUTOINCREMENT` counter, the ids a rolled-back transaction took are
//! handed out again. Reads outside a transaction take the same mutex
//! briefly, so they only ever see committed state.
//!
//! Nothing is durable: the state lives as long as the last clone of the
//! store.

use std::{fmt, ops::Bound, sync::Arc};

use tokio::sync::Mutex;

use crate::domain::{BotJournalEntry, JournalEntry, Position, SubsidyTotals, journal::EventType};
use crate::store::{
    EventKeyRecord, OpenKeyRecord, SlotSubsidyState, Store, StoreError, StoreResult,
    StoredBotJournal,
};

mod bot_journal;
mod state;
mod tx;

use state::State;
pub use tx::MemoryTx;

/// The in-memory store. Clones share one state.
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for MemoryStore {
    // The state can be large and is behind an async mutex; show neither.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store, needing no migration; ids start at 1.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Rows `after` a cursor in an ordered id set, at most `limit` of them.
fn page(
    ids: &std::collections::BTreeSet<u64>,
    after: u64,
    limit: u32,
) -> impl Iterator<Item = &u64> {
    ids.range((Bound::Excluded(after), Bound::Unbounded))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
}

impl State {
    /// A stored position, cloned for the caller.
    pub(super) fn read_position(&self, position_id: u64) -> Option<Position> {
        self.positions.get(&position_id).map(|p| p.position.clone())
    }

    /// Positions by id, in the given order; a dangling id is corruption.
    fn read_positions<'a>(&self, ids: impl Iterator<Item = &'a u64>) -> StoreResult<Vec<Position>> {
        ids.map(|id| {
            self.read_position(*id).ok_or_else(|| {
                StoreError::corrupt(
                    "position_ledger",
                    format!("index names missing position {id}"),
                )
            })
        })
        .collect()
    }

    /// Journal rows by id, in the given order; a dangling id is corruption.
    fn read_entries<'a>(
        &self,
        ids: impl Iterator<Item = &'a u64>,
    ) -> StoreResult<Vec<JournalEntry>> {
        ids.map(|id| {
            self.journal
                .get(id)
                .map(|row| row.entry.clone())
                .ok_or_else(|| {
                    StoreError::corrupt("position_journal", format!("index names missing row {id}"))
                })
        })
        .collect()
    }

    /// The recorded journal-write key.
    pub(super) fn read_event_key(&self, bot_id: &str, event_key: &str) -> Option<EventKeyRecord> {
        self.bot(bot_id)?.event_keys.get(event_key).cloned()
    }

    /// The recorded open key, with the hash stored on its position.
    pub(super) fn read_open_key(
        &self,
        bot_id: &str,
        open_key: &str,
    ) -> StoreResult<Option<OpenKeyRecord>> {
        let Some(position_id) = self
            .bot(bot_id)
            .and_then(|b| b.open_keys.get(open_key))
            .copied()
        else {
            return Ok(None);
        };
        let stored = self.positions.get(&position_id).ok_or_else(|| {
            StoreError::corrupt(
                "position_ledger",
                format!("open key names missing position {position_id}"),
            )
        })?;
        Ok(Some(OpenKeyRecord {
            request_hash: stored.open_hash.clone(),
            position_id,
        }))
    }

    /// Cumulative totals of the slot's newest subsidy row.
    pub(super) fn newest_cumulative(
        &self,
        bot_id: &str,
        slot_id: u32,
    ) -> StoreResult<Option<crate::domain::subsidy::CumulativeAt>> {
        let Some((seq, id)) = self
            .slot(bot_id, slot_id)
            .and_then(|s| s.subsidy.last_key_value())
        else {
            return Ok(None);
        };
        match self.journal.get(id).and_then(|row| row.subsidy) {
            Some((_, totals)) => Ok(Some(crate::domain::subsidy::CumulativeAt {
                slot_seq: *seq,
                totals,
            })),
            None => Err(StoreError::corrupt(
                "position_journal",
                format!("subsidy index names row {id} without subsidy"),
            )),
        }
    }
}

impl Store for MemoryStore {
    type Tx = MemoryTx;

    async fn begin(&self) -> StoreResult<MemoryTx> {
        Ok(MemoryTx::new(Arc::clone(&self.state).lock_owned().await))
    }

    async fn position(&self, position_id: u64) -> StoreResult<Option<Position>> {
        Ok(self.state.lock().await.read_position(position_id))
    }

    async fn open_positions(
        &self,
        bot_id: &str,
        slot_id: Option<u32>,
    ) -> StoreResult<Vec<Position>> {
        let state = self.state.lock().await;
        let Some(bot) = state.bot(bot_id) else {
            return Ok(Vec::new());
        };
        match slot_id {
            None => state.read_positions(bot.open.iter()),
            Some(slot_id) => match bot.slots.get(&slot_id) {
                Some(slot) => state.read_positions(slot.open.iter()),
                None => Ok(Vec::new()),
            },
        }
    }

    async fn position_history(
        &self,
        bot_id: &str,
        slot_id: Option<u32>,
        limit: u32,
    ) -> StoreResult<Vec<Position>> {
        let state = self.state.lock().await;
        let Some(bot) = state.bot(bot_id) else {
            return Ok(Vec::new());
        };
        let closed = match slot_id {
            None => &bot.closed,
            Some(slot_id) => match bot.slots.get(&slot_id) {
                Some(slot) => &slot.closed,
                None => return Ok(Vec::new()),
            },
        };
        let take = usize::try_from(limit).unwrap_or(usize::MAX);
        state.read_positions(closed.iter().rev().take(take).map(|(_, id)| id))
    }

    async fn journal_of_position(
        &self,
        position_id: u64,
        after_journal_id: u64,
        limit: u32,
    ) -> StoreResult<Vec<JournalEntry>> {
        let state = self.state.lock().await;
        match state.positions.get(&position_id) {
            Some(p) => state.read_entries(page(&p.journal, after_journal_id, limit)),
            None => Ok(Vec::new()),
        }
    }

    async fn journal_of_slot(
        &self,
        bot_id: &str,
        slot_id: u32,
        after_journal_id: u64,
        limit: u32,
    ) -> StoreResult<Vec<JournalEntry>> {
        let state = self.state.lock().await;
        match state.slot(bot_id, slot_id) {
            Some(slot) => state.read_entries(page(&slot.journal, after_journal_id, limit)),
            None => Ok(Vec::new()),
        }
    }

    async fn journal_entry(&self, journal_id: u64) -> StoreResult<Option<JournalEntry>> {
        let state = self.state.lock().await;
        Ok(state.journal.get(&journal_id).map(|row| row.entry.clone()))
    }

    async fn created_journal_id(&self, position_id: u64) -> StoreResult<Option<u64>> {
        let state = self.state.lock().await;
        let Some(p) = state.positions.get(&position_id) else {
            return Ok(None);
        };
        // The `created` row is the first in practice, so this stops at once.
        Ok(p.journal.iter().copied().find(|id| {
            state
                .journal
                .get(id)
                .is_some_and(|row| row.entry.details.event_type() == EventType::Created)
        }))
    }

    async fn subsidy_states(
        &self,
        bot_id: &str,
        slot_id: Option<u32>,
    ) -> StoreResult<Vec<SlotSubsidyState>> {
        let state = self.state.lock().await;
        let Some(bot) = state.bot(bot_id) else {
            return Ok(Vec::new());
        };
        let slots: Box<dyn Iterator<Item = (&u32, &state::SlotIndex)>> = match slot_id {
            None => Box::new(bot.slots.iter()),
            Some(id) => Box::new(bot.slots.get_key_value(&id).into_iter()),
        };
        let mut states = Vec::new();
        for (id, slot) in slots {
            // Only slots with a lock row exist in `ledger_slots`.
            let Some(row) = slot.row else { continue };
            states.push(SlotSubsidyState {
                slot_id: *id,
                snapshot: row.snapshot,
                newest: state.newest_cumulative(bot_id, *id)?,
            });
        }
        Ok(states)
    }

    async fn bot_journal(
        &self,
        bot_id: &str,
        after_bot_journal_id: u64,
        limit: u32,
    ) -> StoreResult<Vec<BotJournalEntry>> {
        let state = self.state.lock().await;
        Ok(state.bot_journal.page(bot_id, after_bot_journal_id, limit))
    }

    async fn bot_journal_key(
        &self,
        bot_id: &str,
        event_key: &str,
    ) -> StoreResult<Option<StoredBotJournal>> {
        Ok(self
            .state
            .lock()
            .await
            .bot_journal
            .by_key(bot_id, event_key))
    }

    async fn event_key(
        &self,
        bot_id: &str,
        event_key: &str,
    ) -> StoreResult<Option<EventKeyRecord>> {
        Ok(self.state.lock().await.read_event_key(bot_id, event_key))
    }

    async fn open_key(&self, bot_id: &str, open_key: &str) -> StoreResult<Option<OpenKeyRecord>> {
        self.state.lock().await.read_open_key(bot_id, open_key)
    }

    async fn subsidy_audit(
        &self,
        bot_id: &str,
        slot_id: u32,
    ) -> StoreResult<(SubsidyTotals, SubsidyTotals)> {
        let state = self.state.lock().await;
        let Some(slot) = state.slot(bot_id, slot_id) else {
            return Ok(Default::default());
        };
        let watermark = slot.row.map(|r| r.watermark).unwrap_or_default();
        let mut remaining = SubsidyTotals::default();
        for id in slot.subsidy.values() {
            if let Some((delta, _)) = state.journal.get(id).and_then(|row| row.subsidy) {
                remaining = remaining.plus(&delta);
            }
        }
        Ok((watermark, remaining))
    }
}
