//! Storage: one trait, three backends (SQLite, PostgreSQL, and a
//! non-durable in-memory one for backtests and tests).
//!
//! The trait exposes small primitives inside a transaction; the ledger's
//! rules (idempotency, write-once fields, subsidy arithmetic) live once in
//! [`crate::Ledger`] and run unchanged on every backend. Every write
//! transaction first takes the slot lock ([`StoreTx::lock_slot`]), which
//! serializes all writes to one slot across connections and processes.
//!
//! A batch of writes (see `ledger::batch`) uses the batch primitives
//! ([`StoreTx::lock_slots`], [`StoreTx::write_contexts`],
//! [`StoreTx::append_rows`]); their default bodies loop over the single-row
//! primitives, and a networked backend answers each in one round trip.
//!
//! A networked backend may also offer a batch two round trips with no
//! transaction held open between them ([`Store::read_unlocked`], then
//! [`Store::append_if_unchanged`]): every change to a slot's state
//! (positions, journal, compaction) moves the slot's `last_seq` under its
//! lock, so a write that finds every `last_seq` as it read it knows the
//! state its rules checked is still the state it writes on.

use std::{collections::HashMap, future::Future};

use chrono::{DateTime, Utc};

use crate::domain::{
    BotJournalCommand, BotJournalEntry, JournalEntry, Outcome, Position, SubsidyTotals,
    journal::EventDetails,
    position::OpenCommand,
    subsidy::{CumulativeAt, SubsidyDelta},
};

mod memory;
mod postgres;
mod sql;
mod sqlite;

pub use memory::MemoryStore;
pub use postgres::{DEFAULT_MAX_CONNECTIONS, PgStore};
pub use sqlite::SqliteStore;

pub use crate::store_error::StoreError;

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// The slot row as locked at the start of a write transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotHead {
    /// Sequence number reserved for this transaction's journal row.
    pub seq: i64,
    /// Sums of all rows folded by compaction.
    pub watermark: SubsidyTotals,
    /// Lifetime totals when the slot was last compacted.
    pub snapshot: CumulativeAt,
}

/// Subsidy state of a slot as read in one consistent statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotSubsidyState {
    /// The slot.
    pub slot_id: u32,
    /// Compaction snapshot.
    pub snapshot: CumulativeAt,
    /// Cumulative totals of the newest surviving subsidy row.
    pub newest: Option<CumulativeAt>,
}

/// Recorded idempotency key of a journal write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventKeyRecord {
    /// Hash of the request content that used the key first.
    pub request_hash: String,
    /// Position written.
    pub position_id: u64,
    /// Journal row appended.
    pub journal_id: u64,
}

/// Recorded idempotency key of an open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenKeyRecord {
    /// Hash of the open request that created the position.
    pub request_hash: String,
    /// The position created.
    pub position_id: u64,
}

/// A bot-journal row as stored, with the hash of the request that wrote
/// it (compared when its key is retried).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBotJournal {
    /// The row.
    pub entry: BotJournalEntry,
    /// Hash of the append that wrote it.
    pub request_hash: String,
}

/// A journal row to append.
#[derive(Debug, Clone)]
pub struct NewJournalRow<'a> {
    /// Position of the row.
    pub position_id: u64,
    /// Bot of the position.
    pub bot_id: &'a str,
    /// Slot of the position.
    pub slot_id: u32,
    /// Sequence number reserved by [`StoreTx::lock_slot`].
    pub slot_seq: i64,
    /// When the event happened.
    pub at: DateTime<Utc>,
    /// Typed details.
    pub details: &'a EventDetails,
    /// Idempotency key (the open key for `created`).
    pub event_key: &'a str,
    /// Contribution and cumulative totals after it, for subsidy rows.
    pub subsidy: Option<(SubsidyDelta, SubsidyTotals)>,
}

/// Everything a journal write checks under the slot lock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteContext {
    /// The recorded key, if the write is a retry.
    pub key: Option<EventKeyRecord>,
    /// The position written to.
    pub position: Option<Position>,
    /// Cumulative subsidy totals of the slot's newest subsidy row.
    pub newest: Option<CumulativeAt>,
}

/// A slot a batch of writes locks, and how many sequence numbers it
/// reserves there (one per row the batch may append to it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SlotClaim {
    /// Bot of the slot.
    pub bot_id: String,
    /// The slot.
    pub slot_id: u32,
    /// Sequence numbers to reserve; at least 1.
    pub rows: u32,
}

/// What one keyed write of a batch reads under its slot lock.
#[derive(Debug, Clone, Copy)]
pub struct ContextQuery<'a> {
    /// Bot of the written position.
    pub bot_id: &'a str,
    /// Slot of the written position.
    pub slot_id: u32,
    /// The write's idempotency key.
    pub event_key: &'a str,
    /// The written position.
    pub position_id: u64,
}

/// A journal row to append with its idempotency key's request hash.
#[derive(Debug, Clone)]
pub struct KeyedRow<'a> {
    /// The row; its `event_key` is recorded for its bot.
    pub row: NewJournalRow<'a>,
    /// Hash of the request content, compared on a retried key.
    pub request_hash: &'a str,
}

/// What a batch read without locks ([`Store::read_unlocked`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlockedRead {
    /// Each claim's head, `seq` being the first number the claim would
    /// reserve.
    pub heads: Vec<SlotHead>,
    /// Each claim's `last_seq` as read: the version
    /// [`Store::append_if_unchanged`] checks.
    pub seen: Vec<i64>,
    /// Each query's context, in the queries' order.
    pub contexts: Vec<WriteContext>,
}

/// What compaction folded for one slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FoldSums {
    /// Sum of the folded rows' contributions.
    pub totals: SubsidyTotals,
    /// Rows folded.
    pub rows: u64,
    /// Distinct positions whose rows were folded.
    pub positions: u64,
}

/// Reads and transactions of a backend.
pub trait Store: Send + Sync + 'static {
    /// A write transaction; dropped without commit means rolled back.
    type Tx: StoreTx;

    /// Starts a write transaction.
    fn begin(&self) -> impl Future<Output = StoreResult<Self::Tx>> + Send;

    /// One position.
    fn position(
        &self,
        position_id: u64,
    ) -> impl Future<Output = StoreResult<Option<Position>>> + Send;

    /// Open positions of a bot (optionally one slot), oldest first.
    fn open_positions(
        &self,
        bot_id: &str,
        slot_id: Option<u32>,
    ) -> impl Future<Output = StoreResult<Vec<Position>>> + Send;

    /// Closed positions, most recently closed first.
    fn position_history(
        &self,
        bot_id: &str,
        slot_id: Option<u32>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<Position>>> + Send;

    /// Journal rows of a position after a cursor.
    fn journal_of_position(
        &self,
        position_id: u64,
        after_journal_id: u64,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<JournalEntry>>> + Send;

    /// Journal rows of a slot after a cursor.
    fn journal_of_slot(
        &self,
        bot_id: &str,
        slot_id: u32,
        after_journal_id: u64,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<JournalEntry>>> + Send;

    /// One journal row.
    fn journal_entry(
        &self,
        journal_id: u64,
    ) -> impl Future<Output = StoreResult<Option<JournalEntry>>> + Send;

    /// The `created` row of a position, if not compacted.
    fn created_journal_id(
        &self,
        position_id: u64,
    ) -> impl Future<Output = StoreResult<Option<u64>>> + Send;

    /// Subsidy state of one slot or of every slot of a bot, each read in a
    /// single statement so compaction cannot interleave.
    fn subsidy_states(
        &self,
        bot_id: &str,
        slot_id: Option<u32>,
    ) -> impl Future<Output = StoreResult<Vec<SlotSubsidyState>>> + Send;

    /// Recorded journal-write key.
    fn event_key(
        &self,
        bot_id: &str,
        event_key: &str,
    ) -> impl Future<Output = StoreResult<Option<EventKeyRecord>>> + Send;

    /// Recorded open key.
    fn open_key(
        &self,
        bot_id: &str,
        open_key: &str,
    ) -> impl Future<Output = StoreResult<Option<OpenKeyRecord>>> + Send;

    /// Bot-journal rows of a bot after a cursor, oldest first.
    fn bot_journal(
        &self,
        bot_id: &str,
        after_bot_journal_id: u64,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<BotJournalEntry>>> + Send;

    /// The bot-journal row written under a key, if any.
    fn bot_journal_key(
        &self,
        bot_id: &str,
        event_key: &str,
    ) -> impl Future<Output = StoreResult<Option<StoredBotJournal>>> + Send;

    /// The bot and slot of each of `position_ids` that exists. Both are
    /// write-once, so the answer holds without any lock; a batch of writes
    /// uses it to take its slot locks in one fixed order.
    fn position_slots(
        &self,
        position_ids: &[u64],
    ) -> impl Future<Output = StoreResult<HashMap<u64, (String, u32)>>> + Send {
        async move {
            let mut slots = HashMap::new();
            for &id in position_ids {
                if let Some(p) = self.position(id).await? {
                    slots.insert(id, (p.bot_id, p.slot_id));
                }
            }
            Ok(slots)
        }
    }

    /// A batch's slot heads and write contexts, read in one consistent
    /// statement without taking any lock. `None` when the backend has no
    /// such read or the batch does not suit it (then the batch takes its
    /// locks in a transaction): the default.
    fn read_unlocked(
        &self,
        claims: &[SlotClaim],
        queries: &[ContextQuery<'_>],
    ) -> impl Future<Output = StoreResult<Option<UnlockedRead>>> + Send {
        let _ = (claims, queries);
        async { Ok(None) }
    }

    /// Most writes a batch may have to run without locks: read by
    /// [`Store::read_unlocked`], or staged from its slots' remembered state,
    /// and written by [`Store::append_if_unchanged`]. Larger batches take
    /// their locks. The default, zero: this backend never writes unlocked.
    fn unlocked_max_writes(&self) -> usize {
        0
    }

    /// Appends `rows` and records their keys, reserving each claim's rows
    /// in its slot, in one atomic statement if no claimed slot's `last_seq`
    /// moved from `seen` (read by [`Store::read_unlocked`] or remembered
    /// from the slot's last write) and none of the rows' keys is recorded;
    /// returns each row's journal id. No ids (and nothing written) when a
    /// slot moved, a key was recorded, or the backend would not write the
    /// batch this way. The default never writes.
    fn append_if_unchanged(
        &self,
        claims: &[SlotClaim],
        seen: &[i64],
        rows: &[KeyedRow<'_>],
    ) -> impl Future<Output = StoreResult<Vec<Option<u64>>>> + Send {
        let _ = (claims, seen);
        let none = vec![None; rows.len()];
        async move { Ok(none) }
    }

    /// Audit of the SPEC §3.3 formula: the slot watermark and the sum of
    /// the contributions of the surviving rows.
    fn subsidy_audit(
        &self,
        bot_id: &str,
        slot_id: u32,
    ) -> impl Future<Output = StoreResult<(SubsidyTotals, SubsidyTotals)>> + Send;
}

/// Primitives inside a write transaction.
pub trait StoreTx: Send {
    /// Locks the slot (creating its row), reserves the next sequence number
    /// and returns the slot's watermark and snapshot. Blocks while another
    /// transaction, in any process, holds the same slot.
    fn lock_slot(
        &mut self,
        bot_id: &str,
        slot_id: u32,
    ) -> impl Future<Output = StoreResult<SlotHead>> + Send;

    /// Like [`StoreTx::lock_slot`] for the slot of a position, in one round
    /// trip; returns the position's bot and slot, or `None` if it does not
    /// exist.
    fn lock_position_slot(
        &mut self,
        position_id: u64,
    ) -> impl Future<Output = StoreResult<Option<(String, u32, SlotHead)>>> + Send;

    /// Recorded journal-write key, as seen under the lock.
    fn event_key(
        &mut self,
        bot_id: &str,
        event_key: &str,
    ) -> impl Future<Output = StoreResult<Option<EventKeyRecord>>> + Send;

    /// Recorded open key, as seen under the lock.
    fn open_key(
        &mut self,
        bot_id: &str,
        open_key: &str,
    ) -> impl Future<Output = StoreResult<Option<OpenKeyRecord>>> + Send;

    /// One position, as seen under the lock.
    fn position(
        &mut self,
        position_id: u64,
    ) -> impl Future<Output = StoreResult<Option<Position>>> + Send;

    /// Cumulative totals of the newest subsidy row of the slot.
    fn newest_cumulative(
        &mut self,
        bot_id: &str,
        slot_id: u32,
    ) -> impl Future<Output = StoreResult<Option<CumulativeAt>>> + Send;

    /// Inserts an open position; returns its id. [`StoreError::Duplicate`]
    /// when the open key is taken.
    fn insert_position(
        &mut self,
        cmd: &OpenCommand,
        request_hash: &str,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Appends a journal row; returns its id.
    fn insert_journal(
        &mut self,
        row: NewJournalRow<'_>,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Records a journal-write key. [`StoreError::Duplicate`] when taken.
    fn insert_event_key(
        &mut self,
        bot_id: &str,
        event_key: &str,
        record: &EventKeyRecord,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Appends a bot-journal row; returns its id. [`StoreError::Duplicate`]
    /// when the bot already used the key. Bot-journal rows take no slot
    /// lock: they touch no slot, and the key's unique index decides a race.
    fn insert_bot_journal(
        &mut self,
        cmd: &BotJournalCommand,
        request_hash: &str,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Moves the exit intent of an open position.
    fn update_exit_intent(
        &mut self,
        position_id: u64,
        current_exit_price: rust_decimal::Decimal,
        exit_txid: &str,
        times_repriced: u32,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Writes the outcome of an open position and marks it closed.
    fn close_position(
        &mut self,
        position_id: u64,
        outcome: &Outcome,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Slots of a bot with journal rows of positions closed before `cutoff`,
    /// in ascending order (the lock order).
    fn compactable_slots(
        &mut self,
        bot_id: &str,
        cutoff: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<Vec<u32>>> + Send;

    /// Sums the rows compaction would fold for a slot.
    fn fold_sums(
        &mut self,
        bot_id: &str,
        slot_id: u32,
        cutoff: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<FoldSums>> + Send;

    /// Deletes the folded rows; returns how many.
    fn delete_folded(
        &mut self,
        bot_id: &str,
        slot_id: u32,
        cutoff: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Stores a new watermark and snapshot for a slot.
    fn set_watermark(
        &mut self,
        bot_id: &str,
        slot_id: u32,
        watermark: &SubsidyTotals,
        snapshot: &CumulativeAt,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Reads the context (recorded key, position, newest subsidy row) of a
    /// write to `position_id` in slot (`bot_id`, `slot_id`) keyed by
    /// `event_key`. Must run after the slot lock so it sees every committed
    /// write of the slot. Backends may fetch it in one round trip.
    fn write_context(
        &mut self,
        bot_id: &str,
        slot_id: u32,
        event_key: &str,
        position_id: u64,
    ) -> impl Future<Output = StoreResult<WriteContext>> + Send {
        async move {
            let key = self.event_key(bot_id, event_key).await?;
            if key.is_some() {
                return Ok(WriteContext {
                    key,
                    ..WriteContext::default()
                });
            }
            Ok(WriteContext {
                key,
                position: self.position(position_id).await?,
                newest: self.newest_cumulative(bot_id, slot_id).await?,
            })
        }
    }

    /// Appends a journal row and records its event key (the row's
    /// `event_key`, for its bot and position) with `request_hash`. Backends
    /// may do both in one round trip. [`StoreError::Duplicate`] when the key
    /// is taken.
    fn append_keyed(
        &mut self,
        row: NewJournalRow<'_>,
        request_hash: &str,
    ) -> impl Future<Output = StoreResult<u64>> + Send {
        async move {
            let (bot_id, event_key, position_id) = (row.bot_id, row.event_key, row.position_id);
            let journal_id = self.insert_journal(row).await?;
            let record = EventKeyRecord {
                request_hash: request_hash.to_owned(),
                position_id,
                journal_id,
            };
            self.insert_event_key(bot_id, event_key, &record).await?;
            Ok(journal_id)
        }
    }

    /// Locks every claimed slot, in the order given (callers sort the
    /// claims, so batches in any process take their locks in one order and
    /// never deadlock), reserving `rows` sequence numbers in each. Returns
    /// one head per claim, whose `seq` is the first reserved number.
    fn lock_slots(
        &mut self,
        claims: &[SlotClaim],
    ) -> impl Future<Output = StoreResult<Vec<SlotHead>>> + Send {
        async move {
            let mut heads = Vec::with_capacity(claims.len());
            for claim in claims {
                let head = self.lock_slot(&claim.bot_id, claim.slot_id).await?;
                for _ in 1..claim.rows {
                    self.lock_slot(&claim.bot_id, claim.slot_id).await?;
                }
                heads.push(head);
            }
            Ok(heads)
        }
    }

    /// [`StoreTx::write_context`] of each query, in order, all read before
    /// any write of the batch. Backends may fetch them in one round trip.
    fn write_contexts(
        &mut self,
        queries: &[ContextQuery<'_>],
    ) -> impl Future<Output = StoreResult<Vec<WriteContext>>> + Send {
        async move {
            let mut contexts = Vec::with_capacity(queries.len());
            for q in queries {
                contexts.push(
                    self.write_context(q.bot_id, q.slot_id, q.event_key, q.position_id)
                        .await?,
                );
            }
            Ok(contexts)
        }
    }

    /// [`StoreTx::lock_slots`], then [`StoreTx::write_contexts`] under
    /// those locks. A backend may do both in one round trip if it proves
    /// the contexts as fresh as if read after the locks.
    fn lock_and_read(
        &mut self,
        claims: &[SlotClaim],
        queries: &[ContextQuery<'_>],
    ) -> impl Future<Output = StoreResult<(Vec<SlotHead>, Vec<WriteContext>)>> + Send {
        async move {
            let heads = self.lock_slots(claims).await?;
            Ok((heads, self.write_contexts(queries).await?))
        }
    }

    /// [`StoreTx::append_keyed`] of each row, in order; returns their
    /// journal ids. The rows' event keys are distinct. Backends may append
    /// them all in one round trip.
    fn append_rows(
        &mut self,
        rows: &[KeyedRow<'_>],
    ) -> impl Future<Output = StoreResult<Vec<u64>>> + Send {
        async move {
            let mut ids = Vec::with_capacity(rows.len());
            for r in rows {
                ids.push(self.append_keyed(r.row.clone(), r.request_hash).await?);
            }
            Ok(ids)
        }
    }

    /// Commits.
    fn commit(self) -> impl Future<Output = StoreResult<()>> + Send;
}

/// Converts a stored non-negative integer id.
pub(crate) fn to_u64(table: &'static str, v: i64) -> StoreResult<u64> {
    u64::try_from(v).map_err(|_| StoreError::corrupt(table, format!("negative id {v}")))
}

/// Converts a stored slot id.
pub(crate) fn to_u32(table: &'static str, v: i64) -> StoreResult<u32> {
    u32::try_from(v).map_err(|_| StoreError::corrupt(table, format!("slot id {v} out of range")))
}

/// Converts an id for binding (ids never exceed i64 in either backend).
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
