//! Pure ledger rules: types, invariants and validation, with no I/O.
//!
//! Everything here is deterministic so the same rules hold whether the
//! ledger runs behind gRPC, inside a backtest, or in a unit test.

pub mod bot_journal;
pub mod error;
pub mod idempotency;
pub mod journal;
pub mod position;
pub mod subsidy;
pub mod validate;

pub use bot_journal::{BotAction, BotJournalCommand, BotJournalEntry};
pub use error::LedgerError;
pub use journal::{EventDetails, EventType, JournalEntry, RepriceCommand, RepriceReason};
pub use position::{
    CloseCommand, CloseReason, OpenCommand, Outcome, Position, PositionStatus, Regime, SlotMode,
    TradeId,
};
pub use subsidy::{SlotSubsidy, SubsidyTotals};
