//! healgrid's position ledger and subsidy journal.
//!
//! The ledger records every position a trader opens, every change of its
//! exit and its one outcome, in an append-only journal from which each
//! slot's subsidy is derived. Its invariants hold however often callers
//! retry and however many replicas share one database.
//!
//! Layers, from the inside out (the modules are private; what callers
//! need is re-exported here):
//! - the domain: pure rules and types, no I/O ([`Position`],
//!   [`EventDetails`], the commands such as [`OpenCommand`], and
//!   [`LedgerError`]);
//! - the store: one storage trait ([`Store`], [`StoreTx`]); the
//!   [`SqliteStore`], [`PgStore`] and in-memory [`MemoryStore`] backends;
//! - [`Ledger`]: the in-process API, applying the rules over a store
//!   (used directly by backtests);
//! - [`LedgerGrpc`] and [`serve`] / [`AnyLedger`]: the thin
//!   `healgrid.ledger.v1` adapter; [`LedgerMetrics`]: what it exposes to
//!   Prometheus; [`Config`]: the server's command line.

mod config;
mod crash_point;
mod domain;
mod grpc;
mod ledger;
mod metrics;
mod server;
mod store;
mod store_error;

// The domain vocabulary: positions, journal events and the commands that
// write them.
pub use domain::{
    BotAction, BotJournalEntry, CloseCommand, CloseReason, EventDetails, LedgerError, OpenCommand,
    Outcome, Position, PositionStatus, Regime, RepriceCommand, RepriceReason, SlotMode,
    SubsidyTotals, TradeId,
    journal::{ChurnerProfitDetails, CreatedDetails, EventCommand},
    position::Entry,
};

// The in-process API.
pub use ledger::{Batching, JournalScope, Ledger};

// Storage: the traits a ledger is generic over, the backends, and the
// primitives the storage tests drive directly.
pub use store::{
    EventKeyRecord, FoldSums, MemoryStore, NewJournalRow, PgStore, SqliteStore, Store, StoreError,
    StoreTx,
};

// The gRPC service, the server and its command line.
pub use config::{Config, LogFormat, redact_url};
pub use grpc::LedgerGrpc;
pub use metrics::LedgerMetrics;
pub use server::{AnyLedger, serve};

/// Request decoding of the gRPC service (protobuf request to validated
/// domain command), exactly as the server runs it. Not part of the API:
/// it is public only for the `ledger_request` fuzz target (`fuzz/`).
#[doc(hidden)]
pub use grpc::wire;
