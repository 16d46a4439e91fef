//! The `bot_journal` table of the in-memory backend: rows by id, with the
//! per-bot order and the `UNIQUE (bot_id, event_key)` index.

use std::{
    collections::{BTreeSet, HashMap},
    ops::Bound,
};

use crate::domain::{BotJournalCommand, BotJournalEntry};
use crate::store::{StoreError, StoreResult, StoredBotJournal};

use super::state::stored_time;

/// Bot-journal rows and their indexes.
#[derive(Debug)]
pub(super) struct BotJournalTable {
    rows: HashMap<u64, StoredBotJournal>,
    by_bot: HashMap<String, BTreeSet<u64>>,
    keys: HashMap<(String, String), u64>,
    /// Id of the next row (never reused once committed).
    next_id: u64,
}

impl Default for BotJournalTable {
    fn default() -> Self {
        Self {
            rows: HashMap::new(),
            by_bot: HashMap::new(),
            keys: HashMap::new(),
            next_id: 1,
        }
    }
}

impl BotJournalTable {
    /// Appends a row with the next id; [`StoreError::Duplicate`] when the
    /// bot already used the key.
    pub(super) fn insert(
        &mut self,
        cmd: &BotJournalCommand,
        request_hash: &str,
    ) -> StoreResult<u64> {
        let key = (cmd.bot_id.clone(), cmd.event_key.clone());
        if self.keys.contains_key(&key) {
            return Err(StoreError::Duplicate {
                op: "append bot journal row",
            });
        }
        let id = self.next_id;
        self.next_id = id.saturating_add(1);
        let mut entry = cmd.to_entry(id);
        entry.at = stored_time(entry.at);
        self.keys.insert(key, id);
        self.by_bot
            .entry(cmd.bot_id.clone())
            .or_default()
            .insert(id);
        self.rows.insert(
            id,
            StoredBotJournal {
                entry,
                request_hash: request_hash.to_owned(),
            },
        );
        Ok(id)
    }

    /// Removes a row appended by a rolled-back transaction and gives its
    /// id back.
    pub(super) fn undo_insert(&mut self, id: u64) {
        if let Some(row) = self.rows.remove(&id) {
            let e = row.entry;
            self.keys.remove(&(e.bot_id.clone(), e.event_key));
            if let Some(ids) = self.by_bot.get_mut(&e.bot_id) {
                ids.remove(&id);
            }
        }
        self.next_id = id;
    }

    /// Rows of a bot after a cursor, oldest first.
    pub(super) fn page(&self, bot_id: &str, after: u64, limit: u32) -> Vec<BotJournalEntry> {
        let Some(ids) = self.by_bot.get(bot_id) else {
            return Vec::new();
        };
        ids.range((Bound::Excluded(after), Bound::Unbounded))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .filter_map(|id| self.rows.get(id).map(|r| r.entry.clone()))
            .collect()
    }

    /// The row a bot wrote under a key.
    pub(super) fn by_key(&self, bot_id: &str, event_key: &str) -> Option<StoredBotJournal> {
        let id = self.keys.get(&(bot_id.to_owned(), event_key.to_owned()))?;
        self.rows.get(id).cloned()
    }
}
