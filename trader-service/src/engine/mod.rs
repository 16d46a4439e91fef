//! The pure pair engine (SPEC §2) and the age bands of open positions
//! (SPEC §4).
//!
//! Everything here is a pure function of its inputs: no I/O, no async, no
//! clock and no database. The runtime feeds [`Event`]s into [`transition`]
//! and carries out the returned [`Action`]s; it persists the serde-serialisable
//! [`EngineState`] every loop. Keeping the reducer pure is what makes the
//! grid logic testable exhaustively (property tests replay random event
//! sequences) and lets a backtest drive it as fast as the CPU allows.
//!
//! Module map:
//! - [`types`]: slots, trades, orders, phases (state that makes wrong shapes
//!   unrepresentable);
//! - [`config`]: tunables with SPEC §10 clamping;
//! - [`events`]: the reducer's inputs and outputs;
//! - [`pricing`]: entry/exit prices on the tick grid, volumes on the lot grid,
//!   loss back-off;
//! - [`reducer`]: [`transition`] itself; [`refresh`]: entry refresh with
//!   anti-chase; [`invariants`]: the per-slot shape checks;
//! - [`bands`]: age, distance and effective age of open positions;
//! - [`life`]: a trade's life between closes at market and its re-entry wait;
//! - [`hold`]: entries held back against a sustained move.

pub mod bands;
pub mod config;
pub mod events;
pub mod hold;
pub mod invariants;
pub mod life;
pub mod pricing;
pub mod reducer;
pub mod refresh;
pub mod reprice;
pub mod types;

#[cfg(test)]
mod proptests;
#[cfg(test)]
pub(crate) mod test_support;

pub use bands::{
    AgeBand, BandConfig, BandThresholds, PositionAge, PositionBand, classify, classify_all,
};
pub use config::{ConfigWarning, EngineConfig, OrderSize, PAIR_MINIMUM_MARGIN_PCT};
pub use events::{
    Action, CycleBooking, Event, EventKind, GoneReason, InvalidReason, Notice, OrderRequest,
    PlaceFailReason, PositionIntent, RepriceBooking,
};
pub use hold::EntryHold;
pub use invariants::Violation;
pub use life::{TradeLife, release_wait};
pub use reducer::transition;
pub use types::{
    EngineState, EntryFacts, EntryOrder, ExitOrder, ExitPlacement, FillTotals, HealFacts,
    IdleReason, MarketClose, OrderId, OrderRole, PendingReprice, Phase, RefreshStreak, RepriceKind,
    SlotId, SlotState, SlotStatus, TradeId, TradeState, TradeWork,
};
