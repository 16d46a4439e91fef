//! Self-healing decisions (SPEC §4-§7, §12): pure functions over the
//! engine's state, the trader's subsidy view, the market and `now`, beside
//! the pair engine. Nothing here does I/O, reads a clock or awaits; the
//! runtime carries the decisions out.
//!
//! Module map:
//! - [`reprice`]: tighten, subsidized and loss-funded reprices of stuck
//!   exits, with their skip reasons;
//! - [`subsidy`]: the trader's per-slot subsidy view;
//! - [`stats`]: counters of what healing did.

pub mod reprice;
pub mod stats;
pub mod subsidy;

pub use reprice::{RepriceConfig, RepriceDecision, RepriceInputs, RepricePlan, SkipReason};
pub use stats::RepriceStats;
pub use subsidy::{SubsidySource, SubsidyView};
