//! The in-process ledger API.
//!
//! [`Ledger`] applies the domain rules over any [`Store`]. The gRPC service
//! is a thin adapter over it, and the trader's backtest calls it directly
//! (e.g. over the in-memory backend, [`Ledger::memory`]), so both get
//! exactly the same invariants.

mod batch;
mod bot_journal;
mod compact;
mod writes;

use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use batch::Batching;

use self::batch::Batcher;
use crate::{
    domain::{
        JournalEntry, LedgerError, Position, SlotSubsidy, SubsidyTotals, position::require_id,
        subsidy::current_totals, validate,
    },
    store::{MemoryStore, PgStore, SqliteStore, Store, StoreError},
};

/// Default page size of [`Ledger::position_history`].
pub const DEFAULT_HISTORY_LIMIT: u32 = 50;
/// Default page size of [`Ledger::journal`].
pub const DEFAULT_JOURNAL_LIMIT: u32 = 100;

/// The position ledger over a store.
#[derive(Debug)]
pub struct Ledger<S> {
    store: Arc<S>,
    clock: fn() -> DateTime<Utc>,
    batcher: Arc<Batcher>,
}

impl<S> Clone for Ledger<S> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            clock: self.clock,
            batcher: Arc::clone(&self.batcher),
        }
    }
}

/// Which journal rows to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalScope {
    /// Rows of one position.
    Position(u64),
    /// Rows of every position of one slot.
    Slot {
        /// Bot of the slot.
        bot_id: String,
        /// The slot.
        slot_id: u32,
    },
}

/// One page of journal rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalPage {
    /// Rows in journal order.
    pub entries: Vec<JournalEntry>,
    /// Cursor for the next page; `None` when this page was the last.
    pub next_after_journal_id: Option<u64>,
}

/// Subsidy of every slot of a bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubsidySummary {
    /// One entry per slot that has ever been written, by slot id.
    pub slots: Vec<SlotSubsidy>,
    /// Sums over all slots.
    pub total: SubsidyTotals,
}

/// Both sides of the SPEC §3.3 formula for one slot, for verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubsidyAudit {
    /// The fast path: cumulative totals of the newest row (or snapshot).
    pub cumulative: SubsidyTotals,
    /// Sums of all rows folded by compaction.
    pub watermark: SubsidyTotals,
    /// Sums of the contributions of the surviving journal rows.
    pub remaining: SubsidyTotals,
}

impl SubsidyAudit {
    /// Whether `watermark + sum(remaining) == cumulative`.
    pub fn is_consistent(&self) -> bool {
        self.watermark.plus(&self.remaining) == self.cumulative
    }
}

impl Ledger<SqliteStore> {
    /// Opens an SQLite ledger (`sqlite://path.db`, created if missing).
    pub async fn open_sqlite(url: &str) -> Result<Self, StoreError> {
        Ok(Self::new(SqliteStore::connect(url).await?))
    }

    /// A private in-memory ledger, for tests and backtests.
    pub async fn in_memory() -> Result<Self, StoreError> {
        Self::open_sqlite("sqlite::memory:").await
    }
}

impl Ledger<MemoryStore> {
    /// A ledger held entirely in process memory, for backtests and tests:
    /// the same rules and answers as [`Ledger::in_memory`] without SQLite's
    /// per-statement round trip to its worker thread. Nothing is durable;
    /// the state lives as long as the last clone of the ledger.
    pub fn memory() -> Self {
        Self::new(MemoryStore::new())
    }
}

impl Ledger<PgStore> {
    /// Opens a PostgreSQL ledger (`postgres://...`).
    pub async fn open_postgres(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        Ok(Self::new(
            PgStore::connect_with(url, max_connections).await?,
        ))
    }
}

impl<S: Store> Ledger<S> {
    /// A ledger over an already migrated store.
    pub fn new(store: S) -> Self {
        Self {
            store: Arc::new(store),
            clock: Utc::now,
            batcher: Arc::new(Batcher::new(Batching::default())),
        }
    }

    /// Replaces how writes are grouped into transactions (how many batches
    /// run at once, how many writes one holds); call before the first write.
    pub fn with_batching(mut self, batching: Batching) -> Self {
        self.batcher = Arc::new(Batcher::new(batching));
        self
    }

    /// How writes are grouped into transactions.
    pub fn batching(&self) -> Batching {
        self.batcher.batching()
    }

    /// Replaces the clock used to reject far-future times (for backtests
    /// that replay history, or tests).
    pub fn with_clock(mut self, clock: fn() -> DateTime<Utc>) -> Self {
        self.clock = clock;
        self
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// One position.
    pub async fn position(&self, position_id: u64) -> Result<Position, LedgerError> {
        require_id(position_id)?;
        self.store
            .position(position_id)
            .await?
            .ok_or(LedgerError::PositionNotFound { position_id })
    }

    /// Open positions of a bot, optionally of one slot.
    pub async fn open_positions(
        &self,
        bot_id: &str,
        slot_id: Option<u32>,
    ) -> Result<Vec<Position>, LedgerError> {
        validate::id("bot_id", bot_id)?;
        Ok(self.store.open_positions(bot_id, slot_id).await?)
    }

    /// Closed positions, most recently closed first; `limit` 0 means the default.
    pub async fn position_history(
        &self,
        bot_id: &str,
        slot_id: Option<u32>,
        limit: u32,
    ) -> Result<Vec<Position>, LedgerError> {
        validate::id("bot_id", bot_id)?;
        let limit = validate::page_limit("limit", limit, DEFAULT_HISTORY_LIMIT)?;
        Ok(self.store.position_history(bot_id, slot_id, limit).await?)
    }

    /// One position's history: the position of `bot_id`, open or closed,
    /// and its journal rows up to the largest page, oldest first (the
    /// position's events, reprices, operator actions with their reasons).
    /// A position of another bot is not found.
    pub async fn position_history_of(
        &self,
        bot_id: &str,
        position_id: u64,
    ) -> Result<(Position, JournalPage), LedgerError> {
        validate::id("bot_id", bot_id)?;
        let position = self.position(position_id).await?;
        if position.bot_id != bot_id {
            return Err(LedgerError::PositionNotFound { position_id });
        }
        let page = self
            .journal(&JournalScope::Position(position_id), 0, validate::MAX_PAGE)
            .await?;
        Ok((position, page))
    }

    /// A page of journal rows after `after_journal_id`.
    pub async fn journal(
        &self,
        scope: &JournalScope,
        after_journal_id: u64,
        limit: u32,
    ) -> Result<JournalPage, LedgerError> {
        let limit = validate::page_limit("limit", limit, DEFAULT_JOURNAL_LIMIT)?;
        let entries = match scope {
            JournalScope::Position(position_id) => {
                self.position(*position_id).await?;
                self.store
                    .journal_of_position(*position_id, after_journal_id, limit)
                    .await?
            }
            JournalScope::Slot { bot_id, slot_id } => {
                validate::id("slot.bot_id", bot_id)?;
                self.store
                    .journal_of_slot(bot_id, *slot_id, after_journal_id, limit)
                    .await?
            }
        };
        let full = entries.len() == limit as usize;
        let next_after_journal_id = entries.last().filter(|_| full).map(|e| e.journal_id);
        Ok(JournalPage {
            entries,
            next_after_journal_id,
        })
    }

    /// Subsidy of one slot; a slot never written has zero subsidy.
    pub async fn subsidy_balance(
        &self,
        bot_id: &str,
        slot_id: u32,
    ) -> Result<SlotSubsidy, LedgerError> {
        validate::id("bot_id", bot_id)?;
        let states = self.store.subsidy_states(bot_id, Some(slot_id)).await?;
        let totals = states
            .first()
            .map(|s| current_totals(s.snapshot, s.newest))
            .unwrap_or_default();
        Ok(SlotSubsidy {
            bot_id: bot_id.to_owned(),
            slot_id,
            totals,
        })
    }

    /// Subsidy of every slot of a bot, plus totals.
    pub async fn subsidy_summary(&self, bot_id: &str) -> Result<SubsidySummary, LedgerError> {
        validate::id("bot_id", bot_id)?;
        let slots: Vec<SlotSubsidy> = self
            .store
            .subsidy_states(bot_id, None)
            .await?
            .into_iter()
            .map(|s| SlotSubsidy {
                bot_id: bot_id.to_owned(),
                slot_id: s.slot_id,
                totals: current_totals(s.snapshot, s.newest),
            })
            .collect();
        let total = slots
            .iter()
            .fold(SubsidyTotals::default(), |acc, s| acc.plus(&s.totals));
        Ok(SubsidySummary { slots, total })
    }

    /// Both sides of the subsidy formula for one slot, for verification
    /// (tests, operators). The two sides are read separately, so run it
    /// while the slot is quiet.
    pub async fn subsidy_audit(
        &self,
        bot_id: &str,
        slot_id: u32,
    ) -> Result<SubsidyAudit, LedgerError> {
        let cumulative = self.subsidy_balance(bot_id, slot_id).await?.totals;
        let (watermark, remaining) = self.store.subsidy_audit(bot_id, slot_id).await?;
        Ok(SubsidyAudit {
            cumulative,
            watermark,
            remaining,
        })
    }
}
