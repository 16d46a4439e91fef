//! healgrid's position ledger and subsidy journal.
//!
//! The ledger records every position a trader opens, every change of its
//! exit and its one outcome, in an append-only journal from which each
//! slot's subsidy is derived. Its invariants hold however often callers
//! retry and however many replicas share one database.
//!
//! Layers, from the inside out:
//! - [`domain`]: pure rules and types, no I/O;
//! - [`store`]: one storage trait; SQLite, PostgreSQL and in-memory
//!   backends;
//! - [`Ledger`]: the in-process API, applying the rules over a store
//!   (used directly by backtests);
//! - [`grpc`] and [`server`]: the thin `healgrid.ledger.v1` adapter;
//!   [`metrics`]: what it exposes to Prometheus.

pub mod config;
pub mod crash_point;
pub mod domain;
pub mod grpc;
pub mod ledger;
pub mod metrics;
pub mod server;
pub mod store;
mod store_error;

pub use domain::LedgerError;
pub use ledger::Ledger;
