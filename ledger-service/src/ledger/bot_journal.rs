//! Appends to and reads of the bot journal.
//!
//! An append is its own transaction of one row. It takes no slot lock (it
//! touches no slot): the unique index on (`bot_id`, `event_key`) decides a
//! race, and the loser answers from the winner's row like any retry.

use tracing::{debug, info};

use super::{DEFAULT_JOURNAL_LIMIT, Ledger};
use crate::{
    domain::{BotJournalCommand, BotJournalEntry, LedgerError, idempotency, validate},
    store::{Store, StoreError, StoreTx, StoredBotJournal},
};

/// Result of [`Ledger::append_bot_journal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotJournalOutcome {
    /// The appended (or originally appended) row.
    pub entry: BotJournalEntry,
    /// True when the key had already been applied.
    pub replayed: bool,
}

/// One page of a bot's journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotJournalPage {
    /// Rows in append order.
    pub entries: Vec<BotJournalEntry>,
    /// Cursor for the next page; `None` when this page was the last.
    pub next_after_bot_journal_id: Option<u64>,
}

impl<S: Store> Ledger<S> {
    /// Journals an operator action on a bot as a whole. A retry with the
    /// same key and content returns the first row and writes nothing; the
    /// same key with other content is [`LedgerError::KeyConflict`].
    pub async fn append_bot_journal(
        &self,
        cmd: BotJournalCommand,
    ) -> Result<BotJournalOutcome, LedgerError> {
        let cmd = cmd.validated(self.now())?;
        let hash = idempotency::bot_journal_hash(&cmd);
        if let Some(stored) = self
            .store
            .bot_journal_key(&cmd.bot_id, &cmd.event_key)
            .await?
        {
            return replayed(stored, &hash, &cmd.event_key);
        }
        match self.try_append_bot_journal(&cmd, &hash).await {
            Err(StoreError::Duplicate { .. }) => {
                let stored = self
                    .store
                    .bot_journal_key(&cmd.bot_id, &cmd.event_key)
                    .await?
                    .ok_or_else(|| {
                        StoreError::corrupt(
                            "bot_journal",
                            "bot journal key vanished after a unique violation",
                        )
                    })?;
                replayed(stored, &hash, &cmd.event_key)
            }
            Err(e) => Err(e.into()),
            Ok(entry) => {
                info!(bot_id = %entry.bot_id, bot_journal_id = entry.bot_journal_id,
                    action = %entry.action, event_key = %entry.event_key, "bot journal appended");
                Ok(BotJournalOutcome {
                    entry,
                    replayed: false,
                })
            }
        }
    }

    async fn try_append_bot_journal(
        &self,
        cmd: &BotJournalCommand,
        hash: &str,
    ) -> Result<BotJournalEntry, StoreError> {
        let mut tx = self.store.begin().await?;
        let id = tx.insert_bot_journal(cmd, hash).await?;
        tx.commit().await?;
        Ok(cmd.to_entry(id))
    }

    /// A page of a bot's journal after `after_bot_journal_id`, oldest
    /// first; `limit` 0 means the default.
    pub async fn bot_journal(
        &self,
        bot_id: &str,
        after_bot_journal_id: u64,
        limit: u32,
    ) -> Result<BotJournalPage, LedgerError> {
        validate::id("bot_id", bot_id)?;
        let limit = validate::page_limit("limit", limit, DEFAULT_JOURNAL_LIMIT)?;
        let entries = self
            .store
            .bot_journal(bot_id, after_bot_journal_id, limit)
            .await?;
        let full = entries.len() == limit as usize;
        let next_after_bot_journal_id = entries.last().filter(|_| full).map(|e| e.bot_journal_id);
        Ok(BotJournalPage {
            entries,
            next_after_bot_journal_id,
        })
    }
}

/// The first row of a retried key, if the retry carries the same content.
fn replayed(
    stored: StoredBotJournal,
    hash: &str,
    event_key: &str,
) -> Result<BotJournalOutcome, LedgerError> {
    if stored.request_hash != hash {
        return Err(LedgerError::KeyConflict {
            field: "event_key",
            key: event_key.to_owned(),
        });
    }
    debug!(
        bot_journal_id = stored.entry.bot_journal_id,
        event_key, "bot journal append replayed"
    );
    Ok(BotJournalOutcome {
        entry: stored.entry,
        replayed: true,
    })
}
