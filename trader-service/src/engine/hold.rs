//! Entries held back against a sustained move.
//!
//! A grid slot quotes an entry on each side of the market. When the market
//! walks steadily one way, the entry against the move (the sell entry in a
//! rise, the buy entry in a fall) fills and its exit is left behind: that
//! is how slots lock. Self-healing measures how steadily the market walks
//! ([`crate::healing::trend`]) and tells the engine which side to hold
//! ([`crate::engine::Event::EntryHold`]); the engine then places no entry on
//! that side and cancels a resting, unfilled one. The side with the move
//! keeps trading, and exits are never touched.

use serde::{Deserialize, Serialize};

use crate::engine::events::Action;
use crate::engine::types::{SlotState, TradeId, TradeWork};
use crate::pair::Side;

/// Which entries wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryHold {
    /// Both sides trade.
    #[default]
    None,
    /// The market rises steadily: sell entries wait.
    Sells,
    /// The market falls steadily: buy entries wait.
    Buys,
}

impl EntryHold {
    /// True when trade `t`'s entry must wait.
    #[must_use]
    pub fn holds(self, t: TradeId) -> bool {
        match self {
            Self::None => false,
            Self::Sells => t.entry_side() == Side::Sell,
            Self::Buys => t.entry_side() == Side::Buy,
        }
    }

    /// Stable lower-case name (logs, status).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Sells => "sells",
            Self::Buys => "buys",
        }
    }
}

/// Cancels trade `t`'s resting entry when the hold covers it and nothing of
/// it has filled (a partly filled entry keeps its ordinary refresh, so its
/// filled part gets an exit). Returns whether a cancel was emitted; once
/// the cancel is confirmed the trade waits ([`crate::engine::IdleReason::TrendHold`]).
pub(crate) fn cancel_held_entry(
    slot: &mut SlotState,
    t: TradeId,
    hold: EntryHold,
    out: &mut Vec<Action>,
) -> bool {
    if !hold.holds(t) {
        return false;
    }
    let TradeWork::Entry(e) = &mut slot.trade_mut(t).work else {
        return false;
    };
    if e.cancel_requested || e.fills.any() {
        return false;
    }
    e.cancel_requested = true;
    out.push(Action::Cancel {
        order_id: e.id,
        txid: e.txid.clone(),
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_covers_exactly_the_entries_against_the_move() {
        assert!(!EntryHold::None.holds(TradeId::A));
        assert!(!EntryHold::None.holds(TradeId::B));
        assert!(EntryHold::Sells.holds(TradeId::A), "A enters by selling");
        assert!(!EntryHold::Sells.holds(TradeId::B));
        assert!(EntryHold::Buys.holds(TradeId::B), "B enters by buying");
        assert!(!EntryHold::Buys.holds(TradeId::A));
    }
}
