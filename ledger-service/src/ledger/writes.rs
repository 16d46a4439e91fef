//! The four write operations. Each runs in one transaction that starts by
//! locking the slot, then checks the idempotency key, then the rules, then
//! writes the position change and its journal row together.
//!
//! A backend that offers [`Store::append_event`] runs the lock, key check,
//! rules and append of `JournalEvent` and `RepricePosition` as one atomic
//! call instead; the ledger still validates the request and builds the row.
//!
//! A unique violation on an idempotency key means a concurrent writer (on
//! another slot, so not serialized by our lock) used the same key first; the
//! transaction is rolled back and the request is answered as a replay.

use rust_decimal::Decimal;
use tracing::{debug, info};

use super::Ledger;
use crate::{
    domain::{
        EventDetails, JournalEntry, LedgerError, Position, SlotSubsidy, SubsidyTotals, idempotency,
        journal::{CreatedDetails, EventCommand, RepricedDetails},
        position::{CloseCommand, OpenCommand, PositionStatus, RepriceCommand},
        subsidy::{CumulativeAt, current_totals},
    },
    store::{
        Appended, AppendedRow, AtomicAppend, EventKeyRecord, NewJournalRow, SlotHead, Store,
        StoreError, StoreTx,
    },
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

/// Either the fresh result of a write or the key record to replay.
enum Attempt<T> {
    Done(T),
    Replay(EventKeyRecord),
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
        let written = self.keyed_write(
            cmd.position_id,
            &cmd.event_key,
            &hash,
            self.append_event_atomically(&cmd, &hash),
            self.try_event(&cmd, &hash),
        );
        let entry = match written.await? {
            Keyed::Fresh(outcome) => return Ok(outcome),
            Keyed::Replayed(entry) => entry,
        };
        let subsidy = self.subsidy_balance(&entry.bot_id, entry.slot_id).await?;
        Ok(EventOutcome {
            entry,
            subsidy,
            replayed: true,
        })
    }

    /// [`Ledger::try_event`] as one atomic store call; `None` when the
    /// backend has none.
    async fn append_event_atomically(
        &self,
        cmd: &EventCommand,
        hash: &str,
    ) -> Result<Option<Attempt<EventOutcome>>, LedgerError> {
        let request = AtomicAppend {
            position_id: cmd.position_id,
            at: cmd.at,
            details: &cmd.details,
            event_key: &cmd.event_key,
            request_hash: hash,
            require_open: cmd.open_required(),
            move_exit: None,
            close: None,
        };
        let row = match self.store.append_event(&request).await? {
            None => return Ok(None),
            Some(Appended::Replayed(record)) => return Ok(Some(Attempt::Replay(record))),
            Some(Appended::Fresh(row)) => row,
        };
        let AppendedRow {
            journal_id,
            position,
            totals,
            ..
        } = *row;
        let (bot_id, slot_id) = (position.bot_id, position.slot_id);
        info!(journal_id, position_id = cmd.position_id, bot_id, slot_id, event_type = %cmd.details.event_type(), event_key = %cmd.event_key, balance = %totals.balance(), "event journaled");
        Ok(Some(Attempt::Done(EventOutcome {
            entry: JournalEntry {
                journal_id,
                position_id: cmd.position_id,
                bot_id: bot_id.clone(),
                slot_id,
                at: cmd.at,
                details: cmd.details.clone(),
                event_key: cmd.event_key.clone(),
            },
            subsidy: SlotSubsidy {
                bot_id,
                slot_id,
                totals,
            },
            replayed: false,
        })))
    }

    async fn try_event(
        &self,
        cmd: &EventCommand,
        hash: &str,
    ) -> Result<Attempt<EventOutcome>, LedgerError> {
        let mut tx = self.store.begin().await?;
        let (bot_id, slot_id, head) = lock_position_slot(&mut tx, cmd.position_id).await?;
        let bot_id = bot_id.as_str();
        let ctx = tx
            .write_context(bot_id, slot_id, &cmd.event_key, cmd.position_id)
            .await?;
        if let Some(record) = ctx.key {
            return Ok(Attempt::Replay(record));
        }
        let position = ctx.position.ok_or(LedgerError::PositionNotFound {
            position_id: cmd.position_id,
        })?;
        cmd.check_position(&position)?;
        let (subsidy_row, totals) =
            subsidy_after(&head, ctx.newest, bot_id, slot_id, &cmd.details)?;
        let journal_id = tx
            .append_keyed(
                NewJournalRow {
                    position_id: cmd.position_id,
                    bot_id,
                    slot_id,
                    slot_seq: head.seq,
                    at: cmd.at,
                    details: &cmd.details,
                    event_key: &cmd.event_key,
                    subsidy: subsidy_row,
                },
                hash,
            )
            .await?;
        tx.commit().await?;
        info!(journal_id, position_id = cmd.position_id, bot_id, slot_id, event_type = %cmd.details.event_type(), event_key = %cmd.event_key, balance = %totals.balance(), "event journaled");
        Ok(Attempt::Done(EventOutcome {
            entry: JournalEntry {
                journal_id,
                position_id: cmd.position_id,
                bot_id: bot_id.to_owned(),
                slot_id,
                at: cmd.at,
                details: cmd.details.clone(),
                event_key: cmd.event_key.clone(),
            },
            subsidy: SlotSubsidy {
                bot_id: bot_id.to_owned(),
                slot_id,
                totals,
            },
            replayed: false,
        }))
    }

    /// Moves a position's exit, journals `repriced` and debits subsidy, all
    /// or nothing. A debit beyond the balance is refused.
    pub async fn reprice_position(
        &self,
        cmd: RepriceCommand,
    ) -> Result<RepriceOutcome, LedgerError> {
        let cmd = cmd.validated(self.now())?;
        let hash = idempotency::reprice_hash(&cmd);
        let written = self.keyed_write(
            cmd.position_id,
            &cmd.event_key,
            &hash,
            self.reprice_atomically(&cmd, &hash),
            self.try_reprice(&cmd, &hash),
        );
        let entry = match written.await? {
            Keyed::Fresh(outcome) => return Ok(outcome),
            Keyed::Replayed(entry) => entry,
        };
        let position = self.position(cmd.position_id).await?;
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

    /// [`Ledger::try_reprice`] as one atomic store call; `None` when the
    /// backend has none. The store fills in the old exit it found under the
    /// lock.
    async fn reprice_atomically(
        &self,
        cmd: &RepriceCommand,
        hash: &str,
    ) -> Result<Option<Attempt<RepriceOutcome>>, LedgerError> {
        let mut details = RepricedDetails {
            old_price: Decimal::ZERO,
            new_price: cmd.new_price,
            old_txid: String::new(),
            new_txid: cmd.new_txid.clone(),
            reason: cmd.reason,
            subsidy_consumed: cmd.subsidy_consumed,
        };
        let request_details = EventDetails::Repriced(details.clone());
        let request = AtomicAppend {
            position_id: cmd.position_id,
            at: cmd.at,
            details: &request_details,
            event_key: &cmd.event_key,
            request_hash: hash,
            require_open: Some("reprice"),
            move_exit: Some((cmd.new_price, &cmd.new_txid)),
            close: None,
        };
        let row = match self.store.append_event(&request).await? {
            None => return Ok(None),
            Some(Appended::Replayed(record)) => return Ok(Some(Attempt::Replay(record))),
            Some(Appended::Fresh(row)) => row,
        };
        let AppendedRow {
            journal_id,
            position,
            totals,
            old_exit: (old_price, old_txid),
        } = *row;
        details.old_price = old_price;
        details.old_txid = old_txid;
        let (bot_id, slot_id) = (position.bot_id.clone(), position.slot_id);
        info!(journal_id, position_id = cmd.position_id, bot_id, slot_id, reason = %cmd.reason, subsidy_consumed = %cmd.subsidy_consumed, balance = %totals.balance(), "position repriced");
        Ok(Some(Attempt::Done(RepriceOutcome {
            position,
            entry: JournalEntry {
                journal_id,
                position_id: cmd.position_id,
                bot_id: bot_id.clone(),
                slot_id,
                at: cmd.at,
                details: EventDetails::Repriced(details),
                event_key: cmd.event_key.clone(),
            },
            subsidy: SlotSubsidy {
                bot_id,
                slot_id,
                totals,
            },
            replayed: false,
        })))
    }

    async fn try_reprice(
        &self,
        cmd: &RepriceCommand,
        hash: &str,
    ) -> Result<Attempt<RepriceOutcome>, LedgerError> {
        let mut tx = self.store.begin().await?;
        let (bot_id, slot_id, head) = lock_position_slot(&mut tx, cmd.position_id).await?;
        let bot_id = bot_id.as_str();
        let ctx = tx
            .write_context(bot_id, slot_id, &cmd.event_key, cmd.position_id)
            .await?;
        if let Some(record) = ctx.key {
            return Ok(Attempt::Replay(record));
        }
        let mut position = ctx.position.ok_or(LedgerError::PositionNotFound {
            position_id: cmd.position_id,
        })?;
        position.ensure_open("reprice")?;
        let details = EventDetails::Repriced(RepricedDetails {
            old_price: position.current_exit_price,
            new_price: cmd.new_price,
            old_txid: position.exit_txid.clone(),
            new_txid: cmd.new_txid.clone(),
            reason: cmd.reason,
            subsidy_consumed: cmd.subsidy_consumed,
        });
        let (subsidy_row, totals) = subsidy_after(&head, ctx.newest, bot_id, slot_id, &details)?;
        let journal_id = tx
            .append_keyed(
                NewJournalRow {
                    position_id: cmd.position_id,
                    bot_id,
                    slot_id,
                    slot_seq: head.seq,
                    at: cmd.at,
                    details: &details,
                    event_key: &cmd.event_key,
                    subsidy: subsidy_row,
                },
                hash,
            )
            .await?;
        position.current_exit_price = cmd.new_price;
        position.exit_txid.clone_from(&cmd.new_txid);
        position.times_repriced = position.times_repriced.saturating_add(1);
        tx.update_exit_intent(
            position.position_id,
            position.current_exit_price,
            &position.exit_txid,
            position.times_repriced,
        )
        .await?;
        tx.commit().await?;
        info!(journal_id, position_id = cmd.position_id, bot_id, slot_id, reason = %cmd.reason, subsidy_consumed = %cmd.subsidy_consumed, balance = %totals.balance(), "position repriced");
        Ok(Attempt::Done(RepriceOutcome {
            position,
            entry: JournalEntry {
                journal_id,
                position_id: cmd.position_id,
                bot_id: bot_id.to_owned(),
                slot_id,
                at: cmd.at,
                details,
                event_key: cmd.event_key.clone(),
            },
            subsidy: SlotSubsidy {
                bot_id: bot_id.to_owned(),
                slot_id,
                totals,
            },
            replayed: false,
        }))
    }

    /// Writes the outcome once and journals the matching close event.
    pub async fn close_position(&self, cmd: CloseCommand) -> Result<CloseOutcome, LedgerError> {
        let cmd = cmd.validated(self.now())?;
        let hash = idempotency::close_hash(&cmd);
        let written = self.keyed_write(
            cmd.position_id,
            &cmd.event_key,
            &hash,
            self.close_atomically(&cmd, &hash),
            self.try_close(&cmd, &hash),
        );
        let entry = match written.await? {
            Keyed::Fresh(outcome) => return Ok(outcome),
            Keyed::Replayed(entry) => entry,
        };
        let position = self.position(cmd.position_id).await?;
        Ok(CloseOutcome {
            position,
            entry,
            replayed: true,
        })
    }

    /// [`Ledger::try_close`] as one atomic store call after one unlocked
    /// read; `None` when the backend has no such call, or when the read
    /// finds anything but an open position the close applies to, which the
    /// locked path then answers exactly (replay, closed, invalid time).
    ///
    /// The close details depend only on write-once entry fields, so the
    /// unlocked read is enough to build them; the store re-checks under the
    /// lock that the position is still open.
    async fn close_atomically(
        &self,
        cmd: &CloseCommand,
        hash: &str,
    ) -> Result<Option<Attempt<CloseOutcome>>, LedgerError> {
        if !S::ATOMIC_APPEND {
            return Ok(None);
        }
        let Some(read) = self.store.position(cmd.position_id).await? else {
            return Ok(None);
        };
        let Ok(details) = cmd.close_details(&read) else {
            return Ok(None);
        };
        let request = AtomicAppend {
            position_id: cmd.position_id,
            at: cmd.outcome.exit_time,
            details: &details,
            event_key: &cmd.event_key,
            request_hash: hash,
            require_open: Some("close"),
            move_exit: None,
            close: Some(&cmd.outcome),
        };
        let row = match self.store.append_event(&request).await? {
            None => return Ok(None),
            Some(Appended::Replayed(record)) => return Ok(Some(Attempt::Replay(record))),
            Some(Appended::Fresh(row)) => row,
        };
        let AppendedRow {
            journal_id,
            position,
            ..
        } = *row;
        let (bot_id, slot_id) = (position.bot_id.clone(), position.slot_id);
        info!(journal_id, position_id = cmd.position_id, bot_id, slot_id, close_reason = %cmd.outcome.close_reason, "position closed");
        Ok(Some(Attempt::Done(CloseOutcome {
            position,
            entry: JournalEntry {
                journal_id,
                position_id: cmd.position_id,
                bot_id,
                slot_id,
                at: cmd.outcome.exit_time,
                details,
                event_key: cmd.event_key.clone(),
            },
            replayed: false,
        })))
    }

    async fn try_close(
        &self,
        cmd: &CloseCommand,
        hash: &str,
    ) -> Result<Attempt<CloseOutcome>, LedgerError> {
        let mut tx = self.store.begin().await?;
        let (bot_id, slot_id, head) = lock_position_slot(&mut tx, cmd.position_id).await?;
        let bot_id = bot_id.as_str();
        let ctx = tx
            .write_context(bot_id, slot_id, &cmd.event_key, cmd.position_id)
            .await?;
        if let Some(record) = ctx.key {
            return Ok(Attempt::Replay(record));
        }
        let mut position = ctx.position.ok_or(LedgerError::PositionNotFound {
            position_id: cmd.position_id,
        })?;
        let details = cmd.close_details(&position)?;
        let journal_id = tx
            .append_keyed(
                NewJournalRow {
                    position_id: cmd.position_id,
                    bot_id,
                    slot_id,
                    slot_seq: head.seq,
                    at: cmd.outcome.exit_time,
                    details: &details,
                    event_key: &cmd.event_key,
                    subsidy: None,
                },
                hash,
            )
            .await?;
        tx.close_position(cmd.position_id, &cmd.outcome).await?;
        tx.commit().await?;
        info!(journal_id, position_id = cmd.position_id, bot_id, slot_id, close_reason = %cmd.outcome.close_reason, "position closed");
        position.status = PositionStatus::Closed;
        position.outcome = Some(cmd.outcome.clone());
        Ok(Attempt::Done(CloseOutcome {
            position,
            entry: JournalEntry {
                journal_id,
                position_id: cmd.position_id,
                bot_id: bot_id.to_owned(),
                slot_id,
                at: cmd.outcome.exit_time,
                details,
                event_key: cmd.event_key.clone(),
            },
            replayed: false,
        }))
    }

    /// The key record a concurrent writer committed first.
    /// Runs one keyed write: the backend's one-call append when it has one
    /// (`atomic` answers `None` otherwise), else the same steps through
    /// transaction primitives (`fallback`, only polled when needed). A key
    /// already recorded, found under the lock or by losing a race on the
    /// key's unique index, becomes the entry it first wrote, after checking
    /// the retry carries the same content (`hash`).
    async fn keyed_write<T>(
        &self,
        position_id: u64,
        event_key: &str,
        hash: &str,
        atomic: impl Future<Output = Result<Option<Attempt<T>>, LedgerError>>,
        fallback: impl Future<Output = Result<Attempt<T>, LedgerError>>,
    ) -> Result<Keyed<T>, LedgerError> {
        let attempt = match atomic.await {
            Ok(Some(attempt)) => Ok(attempt),
            Ok(None) => fallback.await,
            Err(e) => Err(e),
        };
        let record = match attempt {
            Ok(Attempt::Done(outcome)) => return Ok(Keyed::Fresh(outcome)),
            Ok(Attempt::Replay(record)) => record,
            Err(e) if is_duplicate(&e) => self.recorded_key(position_id, event_key).await?,
            Err(e) => return Err(e),
        };
        let entry = self.replayed_entry(&record, hash, event_key).await?;
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

/// Locks the slot of a position; the position must exist.
async fn lock_position_slot<T: StoreTx>(
    tx: &mut T,
    position_id: u64,
) -> Result<(String, u32, SlotHead), LedgerError> {
    tx.lock_position_slot(position_id)
        .await?
        .ok_or(LedgerError::PositionNotFound { position_id })
}

/// The subsidy row to store for `details` (if it moves subsidy) and the
/// slot's totals after it. Refuses an overdraft.
fn subsidy_after(
    head: &SlotHead,
    newest: Option<CumulativeAt>,
    bot_id: &str,
    slot_id: u32,
    details: &EventDetails,
) -> Result<(Option<(SubsidyTotals, SubsidyTotals)>, SubsidyTotals), LedgerError> {
    let current = current_totals(head.snapshot, newest);
    let delta = details.subsidy_delta();
    if delta.is_zero() {
        return Ok((None, current));
    }
    let next = current.apply(&delta, bot_id, slot_id)?;
    Ok((Some((delta, next)), next))
}
