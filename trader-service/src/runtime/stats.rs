//! Counters of the runtime: over its life ([`RunStats`], for the backtest
//! report and logs) and of one loop ([`StepReport`]).

use rust_decimal::Decimal;

/// Counters over the runtime's life (backtest report, logs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Executions fed to the engine.
    pub fills: u64,
    /// Fees of those executions.
    pub fees_paid: Decimal,
    /// Cycles booked.
    pub completed_cycles: u64,
    /// Sum of booked net profit.
    pub net_pnl: Decimal,
    /// Sum of the losses of losing cycles (positive).
    pub realized_loss: Decimal,
    /// Placements made.
    pub placements: u64,
    /// Cancels made.
    pub cancels: u64,
    /// Placements/cancels deferred for budget (summed over loops).
    pub deferred: u64,
    /// Full loops run.
    pub loops: u64,
    /// Times a trade started waiting because its entry missed the pair
    /// minimums (each wait counted once, however long it lasts).
    pub entries_below_minimum: u64,
    /// Resting strays (untracked copies of our orders) cancelled.
    pub strays_cancelled: u64,
    /// Stray executions adopted as positions.
    pub strays_adopted: u64,
}

/// What one step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepReport {
    /// Private calls made.
    pub calls: u32,
    /// Actions left for the next loop.
    pub deferred: u32,
    /// Whether a commit happened.
    pub committed: bool,
    /// Ledger writes delivered.
    pub delivered: usize,
}
