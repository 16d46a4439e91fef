//! The one error type of the ledger's domain API.
//!
//! Each variant corresponds to exactly one gRPC status class, so the adapter
//! maps errors in a single place and callers in-process can match on the
//! same cases.

use rust_decimal::Decimal;

use crate::store_error::StoreError;

/// Why a ledger operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Malformed input; `field` names the offending request field.
    #[error("{field}: {reason}")]
    Invalid {
        /// The request field at fault, e.g. `entry_price`.
        field: &'static str,
        /// What is wrong with it, including the value seen where useful.
        reason: String,
    },
    /// The referenced position does not exist.
    #[error("position {position_id} not found")]
    PositionNotFound {
        /// The id that was looked up.
        position_id: u64,
    },
    /// A write to a position that is already closed.
    #[error("position {position_id} is closed; {action} is not allowed")]
    PositionClosed {
        /// The closed position.
        position_id: u64,
        /// The refused operation, e.g. `reprice`.
        action: &'static str,
    },
    /// A debit would make the slot's subsidy negative.
    #[error(
        "insufficient subsidy for bot {bot_id} slot {slot_id}: balance {balance}, requested {requested}"
    )]
    InsufficientSubsidy {
        /// Bot of the slot.
        bot_id: String,
        /// Slot whose balance is too low.
        slot_id: u32,
        /// Balance before the refused debit.
        balance: Decimal,
        /// The refused debit.
        requested: Decimal,
    },
    /// An idempotency key was reused with different content.
    #[error("{field} {key:?} was already used with different content")]
    KeyConflict {
        /// `open_key` or `event_key`.
        field: &'static str,
        /// The reused key.
        key: String,
    },
    /// The event a key refers to was folded away by compaction, so the
    /// original result can no longer be returned.
    #[error("event_key {key:?} was applied as journal row {journal_id}, since compacted")]
    KeyCompacted {
        /// The retried key.
        key: String,
        /// The folded journal row.
        journal_id: u64,
    },
    /// A write that contradicts the stored state (e.g. time travel).
    #[error("{0}")]
    Precondition(String),
    /// The database failed.
    #[error(transparent)]
    Store(StoreError),
}

/// Store errors are database failures.
impl From<StoreError> for LedgerError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl LedgerError {
    /// Shorthand for [`LedgerError::Invalid`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
