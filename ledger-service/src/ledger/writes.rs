//! The four write operations.
//!
//! An open runs in its own transaction: lock the slot, check the open key,
//! insert the position and its `created` row. The keyed journal writes
//! (events, reprices, closes) are validated here and then applied in group
//! commits by [`super::batch`], where their rules live; a retried key is
//! answered here from the row it wrote the first time.
//!
//! A unique violation on an idempotency key means a concurrent writer (on
//! another slot, so not serialized by our lock) used the same key first; the
//! write is rolled back and the request is answered as a replay.

use tracing::{debug, info};

use super::{
    Ledger,
    batch::{Answer, Applied, Write},
};
use crate::{
    domain::{
        EventDetails, JournalEntry, LedgerError, Position, SlotSubsidy, idempotency,
        journal::{CreatedDetails, EventCommand, RepriceCommand},
        position::{CloseCommand, OpenCommand},
    },
    store::{EventKeyRecord, NewJournalRow, Store, StoreError, StoreTx},
};

/// Result of [`Ledger::open_position`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOutcome {
    /// The position (its current state on a replay).
    pub position: Position,
    /// The `created` journal row; 0 if a replay finds it compacted.
    pub journal_id: u64,
    /// True when the open key had already been applied.
    pub replayed: bool,
}

/// Result of [`Ledger::journal_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventOutcome {
    /// The appended (or originally appended) row.
    pub entry: JournalEntry,
    /// The slot's subsidy after the write (current on a replay).
    pub subsidy: SlotSubsidy,
    /// True when the event key had already been applied.
    pub replayed: bool,
}

/// Result of [`Ledger::close_position`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseOutcome {
    /// The closed position.
    pub position: Position,
    /// The close event.
    pub entry: JournalEntry,
    /// True when the event key had already been applied.
    pub replayed: bool,
}

/// Result of [`Ledger::reprice_position`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepriceOutcome {
    /// The position after the move (current state on a replay).
    pub position: Position,
    /// The `repriced` row.
    pub entry: JournalEntry,
    /// The slot's subsidy after the move (current on a replay).
    pub subsidy: SlotSubsidy,
    /// True when the event key had already been applied.
    pub replayed: bool,
}

/// What a keyed write came to: its fresh outcome, or the journal entry its
/// key wrote the first time (a retry with the same content).
enum Keyed<T> {
    Fresh(T),
    Replayed(JournalEntry),
}

fn is_duplicate(e: &LedgerError) -> bool {
    matches!(e, LedgerError::Store(StoreError::Duplicate { .. }))
}

impl<S: Store> Ledger<S> {
    /// Records a filled entry as an open position and journals `created`.
    pub async fn open_position(&self, cmd: OpenCommand) -> Result<OpenOutcome, LedgerError> {
        let cmd = cmd.validated(self.now())?;
        let hash = idempotency::open_hash(&cmd);
        match self.try_open(&cmd, &hash).await {
            Err(e) if is_duplicate(&e) => self.replay_open(&cmd, &hash).await,
            other => other,
        }
    }

    async fn try_open(&self, cmd: &OpenCommand, hash: &str) -> Result<OpenOutcome, LedgerError> {
        let mut tx = self.store.begin().await?;
        let head = tx.lock_slot(&cmd.bot_id, cmd.slot_id).await?;
        if tx.open_key(&cmd.bot_id, &cmd.open_key).await?.is_some() {
            drop(tx);
            return self.replay_open(cmd, hash).await;
        }
        let position_id = tx.insert_position(cmd, hash).await?;
        let details = EventDetails::Created(CreatedDetails {
            entry_price: cmd.entry.price,
            exit_price: cmd.original_exit_price,
            regime: cmd.entry.regime,
            slot_mode: cmd.slot_mode,
            migration: cmd.migration,
        });
        let journal_id = tx
            .insert_journal(NewJournalRow {
                position_id,
                bot_id: &cmd.bot_id,
                slot_id: cmd.slot_id,
                slot_seq: head.seq,
                at: cmd.entry.time,
                details: &details,
                event_key: &cmd.open_key,
                subsidy: None,
            })
            .await?;
        tx.commit().await?;
        self.batcher
            .remember_slot(position_id, &cmd.bot_id, cmd.slot_id);
        info!(position_id, bot_id = %cmd.bot_id, slot_id = cmd.slot_id, open_key = %cmd.open_key, "position opened");
        Ok(OpenOutcome {
            position: cmd.to_position(position_id),
            journal_id,
            replayed: false,
        })
    }

    async fn replay_open(&self, cmd: &OpenCommand, hash: &str) -> Result<OpenOutcome, LedgerError> {
        let record = self
            .store
            .open_key(&cmd.bot_id, &cmd.open_key)
            .await?
            .ok_or_else(|| {
                StoreError::corrupt(
                    "position_ledger",
                    "open key vanished after a unique violation",
                )
            })?;
        if record.request_hash != hash {
            return Err(LedgerError::KeyConflict {
                field: "open_key",
                key: cmd.open_key.clone(),
            });
        }
        let position = self.position(record.position_id).await?;
        let journal_id = self
            .store
            .created_journal_id(record.position_id)
            .await?
            .unwrap_or(0);
        debug!(position_id = position.position_id, open_key = %cmd.open_key, "open replayed");
        Ok(OpenOutcome {
            position,
            journal_id,
            replayed: true,
        })
    }

    /// Appends a credit, operator note, hold or hand-over to a position.
    pub async fn journal_event(&self, cmd: EventCommand) -> Result<EventOutcome, LedgerError> {
        let cmd = cmd.validated(self.now())?;
        let hash = idempotency::event_hash(&cmd);
        let (position_id, key) = (cmd.position_id, cmd.event_key.clone());
        let entry = match self
            .keyed_write(position_id, &key, Write::Event(cmd), hash)
            .await?
        {
            Keyed::Fresh(Answer::Event(outcome)) => return Ok(outcome),
            Keyed::Fresh(_) => return Err(StoreError::BatchLost.into()),
            Keyed::Replayed(entry) => entry,
        };
        let subsidy = self.subsidy_balance(&entry.bot_id, entry.slot_id).await?;
        Ok(EventOutcome {
            entry,
            subsidy,
            replayed: true,
        })
    }

    /// Moves a position's exit, journals `repriced` and debits subsidy, all
    /// or nothing. A debit beyond the balance is refused.
    pub async fn reprice_position(
        &self,
        cmd: RepriceCommand,
    ) -> Result<RepriceOutcome, LedgerError> {
        let cmd = cmd.validated(self.now())?;
        let hash = idempotency::reprice_hash(&cmd);
        let (position_id, key) = (cmd.position_id, cmd.event_key.clone());
        let entry = match self
            .keyed_write(position_id, &key, Write::Reprice(cmd), hash)
            .await?
        {
            Keyed::Fresh(Answer::Reprice(outcome)) => return Ok(outcome),
            Keyed::Fresh(_) => return Err(StoreError::BatchLost.into()),
            Keyed::Replayed(entry) => entry,
        };
        let position = self.position(position_id).await?;
        let subsidy = self
            .subsidy_balance(&position.bot_id, position.slot_id)
            .await?;
        Ok(RepriceOutcome {
            position,
            entry,
            subsidy,
            replayed: true,
        })
    }

    /// Writes the outcome once and journals the matching close event.
    pub async fn close_position(&self, cmd: CloseCommand) -> Result<CloseOutcome, LedgerError> {
        let cmd = cmd.validated(self.now())?;
        let hash = idempotency::close_hash(&cmd);
        let (position_id, key) = (cmd.position_id, cmd.event_key.clone());
        let entry = match self
            .keyed_write(position_id, &key, Write::Close(cmd), hash)
            .await?
        {
            Keyed::Fresh(Answer::Close(outcome)) => return Ok(outcome),
            Keyed::Fresh(_) => return Err(StoreError::BatchLost.into()),
            Keyed::Replayed(entry) => entry,
        };
        let position = self.position(position_id).await?;
        Ok(CloseOutcome {
            position,
            entry,
            replayed: true,
        })
    }

    /// Runs one keyed write through the group commit. A key already
    /// recorded, found under the lock or by losing a race on the key's
    /// unique index, becomes the entry it first wrote, after checking the
    /// retry carries the same content (`hash`).
    async fn keyed_write(
        &self,
        position_id: u64,
        event_key: &str,
        write: Write,
        hash: String,
    ) -> Result<Keyed<Answer>, LedgerError> {
        let record = match self.submit(write, hash.clone()).await {
            Ok(Applied::Fresh(answer)) => return Ok(Keyed::Fresh(*answer)),
            Ok(Applied::Replay(record)) => record,
            Err(e) if is_duplicate(&e) => self.recorded_key(position_id, event_key).await?,
            Err(e) => return Err(e),
        };
        let entry = self.replayed_entry(&record, &hash, event_key).await?;
        Ok(Keyed::Replayed(entry))
    }

    async fn recorded_key(
        &self,
        position_id: u64,
        event_key: &str,
    ) -> Result<EventKeyRecord, LedgerError> {
        let bot_id = self.position(position_id).await?.bot_id;
        Ok(self
            .store
            .event_key(&bot_id, event_key)
            .await?
            .ok_or_else(|| {
                StoreError::corrupt(
                    "ledger_event_keys",
                    "event key vanished after a unique violation",
                )
            })?)
    }

    /// The original row of a retried key, or why it cannot be replayed.
    async fn replayed_entry(
        &self,
        record: &EventKeyRecord,
        hash: &str,
        event_key: &str,
    ) -> Result<JournalEntry, LedgerError> {
        if record.request_hash != hash {
            return Err(LedgerError::KeyConflict {
                field: "event_key",
                key: event_key.to_owned(),
            });
        }
        debug!(journal_id = record.journal_id, event_key, "write replayed");
        self.store
            .journal_entry(record.journal_id)
            .await?
            .ok_or_else(|| LedgerError::KeyCompacted {
                key: event_key.to_owned(),
                journal_id: record.journal_id,
            })
    }
}
