//! The vocabulary of the outbox: what a queued ledger write is, how it is
//! identified, and which states it can be in.

use std::fmt;

use serde_json::Value;
use thiserror::Error;

use crate::runtime::time::UnixMillis;

/// The ledger's idempotency key for one write (e.g. an entry fill's txid, or
/// `reprice:<position>:<n>`).
///
/// It is what turns at-least-once delivery into an exactly-once effect: the
/// ledger applies a key once and answers retries with the original result.
/// Never empty, so a forgotten key cannot silently collide with another.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IdempotencyKey(String);

/// Why a string cannot be an [`IdempotencyKey`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidKey {
    /// The key is empty or only whitespace.
    #[error("idempotency key must not be blank")]
    Blank,
}

impl IdempotencyKey {
    /// Validates and wraps a key.
    ///
    /// # Errors
    /// [`InvalidKey::Blank`] if `key` is empty or whitespace.
    pub fn new(key: impl Into<String>) -> Result<Self, InvalidKey> {
        let key = key.into();
        if key.trim().is_empty() {
            return Err(InvalidKey::Blank);
        }
        Ok(Self(key))
    }

    /// The key as sent to the ledger.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which ledger write RPC an outbox entry stands for, so the sink can route
/// the opaque payload without guessing from its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LedgerWrite {
    /// `OpenPosition`.
    OpenPosition,
    /// `JournalEvent` (credits, operator actions, hand-overs, ...).
    JournalEvent,
    /// `RepricePosition` (may debit subsidy).
    RepricePosition,
    /// `ClosePosition`.
    ClosePosition,
    /// `AppendBotJournal` (operator actions on the bot as a whole).
    AppendBotJournal,
}

impl LedgerWrite {
    /// Every kind, for exhaustive tests and parsing.
    pub const ALL: [Self; 5] = [
        Self::OpenPosition,
        Self::JournalEvent,
        Self::RepricePosition,
        Self::ClosePosition,
        Self::AppendBotJournal,
    ];

    /// The spelling stored in the `kind` column.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenPosition => "open_position",
            Self::JournalEvent => "journal_event",
            Self::RepricePosition => "reprice_position",
            Self::ClosePosition => "close_position",
            Self::AppendBotJournal => "append_bot_journal",
        }
    }

    /// Parses a stored `kind`; `None` for a spelling this build does not know.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Where an entry is in its life. Entries only move forward:
/// `Pending -> Delivered` or `Pending -> Parked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxState {
    /// Not yet acknowledged by the ledger; will be (re)delivered.
    Pending,
    /// Acknowledged; kept only for a bounded retention tail.
    Delivered,
    /// Rejected by the ledger in a way retrying can never fix; kept forever
    /// for an operator to see.
    Parked,
}

impl OutboxState {
    /// The spelling stored in the `state` column.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Parked => "parked",
        }
    }

    /// Parses a stored `state`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Parked]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Position of an entry in the outbox; delivery order is `Seq` order, and a
/// `Seq` is never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(pub i64);

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A ledger write the engine wants made, before it is queued.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOutboxEntry {
    /// Ledger idempotency key; re-queueing the same key is a no-op only if
    /// `kind` and `payload` are identical.
    pub key: IdempotencyKey,
    /// Which ledger RPC to call.
    pub kind: LedgerWrite,
    /// The request, opaque to the store (decimals are strings, per the
    /// ledger API).
    pub payload: Value,
}

/// A queued ledger write as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// Delivery order.
    pub seq: Seq,
    /// Ledger idempotency key.
    pub key: IdempotencyKey,
    /// Which ledger RPC to call.
    pub kind: LedgerWrite,
    /// The request.
    pub payload: Value,
    /// When the step that produced it was committed.
    pub created_at: UnixMillis,
    /// Delivery attempts made so far (successful or not).
    pub attempts: u32,
    /// Earliest instant the next attempt may be made (back-off).
    pub next_attempt_at: UnixMillis,
    /// The last failure's message, for operators.
    pub last_error: Option<String>,
    /// Life-cycle state.
    pub state: OutboxState,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_keys_are_rejected() {
        assert_eq!(IdempotencyKey::new(""), Err(InvalidKey::Blank));
        assert_eq!(IdempotencyKey::new("  "), Err(InvalidKey::Blank));
        assert_eq!(IdempotencyKey::new("tx-1").unwrap().as_str(), "tx-1");
    }

    #[test]
    fn spellings_round_trip() {
        for kind in LedgerWrite::ALL {
            assert_eq!(LedgerWrite::parse(kind.as_str()), Some(kind));
        }
        for state in [
            OutboxState::Pending,
            OutboxState::Delivered,
            OutboxState::Parked,
        ] {
            assert_eq!(OutboxState::parse(state.as_str()), Some(state));
        }
        assert_eq!(LedgerWrite::parse("nope"), None);
        assert_eq!(OutboxState::parse("nope"), None);
    }
}
