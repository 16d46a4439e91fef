//! Self-healing decisions (SPEC §2, §4-§7, §12) as pure code, beside the
//! pair engine.
//!
//! Like [`crate::engine`], nothing here does I/O, reads a clock or awaits:
//! every function takes `now` and its inputs, and every state is
//! serde-serialisable so the runtime persists it with the trader's state and
//! a backtest drives it as fast as the CPU allows. The runtime carries the
//! decisions out.
//!
//! Call order per market observation: [`MarketHistory::observe`], then
//! [`RegimeDetector::update`]; read [`RegimeDetector::view`] and
//! [`profit_target`] when deciding, then [`reprice::plan`].
//!
//! Module map (one line each, so additions merge trivially):
//! - [`vocab`]: the [`Regime`] names shared with the ledger, API and CLI;
//! - [`config`]: regime and target tunables with SPEC §10 clamping;
//! - [`candles`]: 5-minute and 1-minute bars and return windows;
//! - [`hmm`]: the 3-state Gaussian HMM (Baum-Welch, forward filter);
//! - [`regime`]: the detector, consensus label and operator override;
//! - [`regime_persist`]: what of the detector survives a restart, bounded
//!   and validated;
//! - [`target`]: the volatility-scaled profit target in force;
//! - [`reprice`]: tighten, subsidized and loss-funded reprices of stuck
//!   exits, with their skip reasons;
//! - [`subsidy`]: the trader's per-slot subsidy view;
//! - [`release`]: locked pairs (both exits of a slot stuck) to close;
//! - [`operator`]: the cleanup queue, the move to breakeven and the hold
//!   window of operator actions (SPEC §8);
//! - [`stats`]: counters of what healing did;
//! - [`churner`]: the churner's round trips, gates, reserve and profit
//!   routing (SPEC §6);
//! - [`throughput`]: profit per hour per regime x trade, opportunity cost
//!   and the subsidy ETA (SPEC §7);
//! - [`trend`]: how steadily the market walks, and which entries wait.

pub mod candles;
pub mod churner;
pub mod config;
pub mod hmm;
pub mod operator;
pub mod price_bars;
pub mod regime;
pub mod regime_persist;
pub mod release;
pub mod reprice;
pub mod stats;
pub mod subsidy;
pub mod target;
pub mod throughput;
pub mod trend;
pub mod vocab;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod regime_tests;

pub use candles::{BarReturn, MarketHistory, MoveStats, ObserveError, Observed};
pub use churner::{ChurnBook, ChurnerConfig, HitGate};
pub use config::{HealingConfig, RegimeConfig, TargetConfig};
pub use regime::{OverrideError, RegimeDetector, RegimeOverride, RegimeUpdate, RegimeView};
pub use reprice::{
    ExitRef, RepriceConfig, RepriceDecision, RepriceInputs, RepricePlan, SkipReason,
};
pub use stats::RepriceStats;
pub use subsidy::{SubsidySource, SubsidyView};
pub use target::{Target, TargetBound, TargetError, TargetExplain, profit_target};
pub use trend::TrendConfig;
pub use vocab::{ParseRegimeError, Regime};
