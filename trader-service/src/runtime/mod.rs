//! The trader's durable runtime pieces: a local store (SQLite, or memory for
//! backtests) for the engine snapshot and runtime metadata, and the ordered outbox that carries every
//! ledger write to the ledger service.
//!
//! The store is what lets the trader survive restarts and ledger outages
//! without losing or duplicating anything: each engine step commits its new
//! state *and* the ledger writes it implies in one transaction
//! ([`store::TraderStore::commit_step`]), and the outbox
//! ([`outbox::Outbox`]) delivers those writes strictly in commit order, at
//! least once, with idempotency keys the ledger deduplicates on.
//!
//! On top of them sits the imperative shell that runs the pure engine:
//! - [`r#loop::Runtime`]: one trading loop per [`r#loop::Runtime::step`]
//!   (price, order polls turned into fill deltas ([`fills`]), engine ticks,
//!   budgeted and write-ahead placements/cancels ([`book`]), commit, outbox
//!   drain), and [`r#loop::Runtime::run_forever`] with graceful shutdown,
//!   its "now" on the exchange's clock ([`exchange_clock`]);
//! - [`writes`]: the ledger writes derived from engine actions, keyed by
//!   open key; [`sink`]: their delivery over a [`ledger::LedgerApi`] (gRPC
//!   in production, balanced over the ledger's replicas by
//!   [`ledger_replicas`]; the in-process ledger in tests and backtests);
//! - [`reconcile`]: start-up and periodic reconciliation (legacy import,
//!   ledger coverage, SPEC §9), and the exchange scan that resolves
//!   ambiguous placements ([`intents`]) and accounts for stray copies of
//!   our orders (`strays`);
//! - `churn`: the churner's executor (SPEC §6) around the pure
//!   [`crate::healing::churner`];
//! - [`status`]: the snapshot, control commands and handle the control API
//!   is built on; [`audit`]: what a store holds, read without running the
//!   trader (`trader-service store-audit`).

pub mod audit;
pub mod book;
mod churn;
pub mod control;
pub mod entry;
pub mod exchange_clock;
pub mod fills;
pub(crate) mod heal;
pub mod intents;
pub mod ledger;
pub mod ledger_replicas;
#[path = "loop.rs"]
pub mod r#loop;
pub mod nonce_lease;
mod observe;
mod operator;
mod operator_round_trip;
pub mod outbox;
mod persist;
mod placement;
mod poll;
pub mod reconcile;
mod regime_store;
pub mod sink;
pub mod stats;
pub mod status;
pub mod store;
mod strays;
pub mod time;
mod view;
pub mod writes;

pub use r#loop::{Runtime, RuntimeConfig, RuntimeError};
pub use stats::{RunStats, StepReport};
pub use status::{ControlCommand, RuntimeHandle, RuntimeMode, StatusSnapshot};

#[cfg(test)]
mod durability_tests;
#[cfg(test)]
mod test_support;
