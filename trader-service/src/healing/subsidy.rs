//! The trader's view of each slot's subsidy (SPEC §6 "Subsidy view"): the
//! last balance the ledger acknowledged plus the trader's own credits and
//! debits since, which travel through its ordered outbox. Because it is
//! updated in the same commit as the writes that change the ledger's
//! balance, it equals "acknowledged + unacknowledged" by construction, so
//! healing goes on through a ledger outage and never spends the same
//! subsidy twice. Credits from elsewhere (an operator's `JournalEvent`) are
//! picked up by [`SubsidyView::sync`] whenever the outbox is empty.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::engine::SlotId;

/// Where subsidy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubsidySource {
    /// A churner round trip's profit.
    Churner,
    /// An exit that filled better than its limit.
    OverPerformance,
    /// Credited by an operator (seen through the ledger).
    Operator,
}

/// Per-slot balances as the trader sees them, plus lifetime figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubsidyView {
    /// Spendable balance per slot (never negative).
    pub balance: BTreeMap<SlotId, Decimal>,
    /// Lifetime credits per source (this trader's view).
    pub earned: BTreeMap<SubsidySource, Decimal>,
    /// Lifetime subsidy spent on reprices.
    pub spent: Decimal,
    /// Slots whose debit the ledger refused: subsidized repricing of them
    /// stops until an operator looks (an alert, never silent).
    pub halted: BTreeSet<SlotId>,
}

impl SubsidyView {
    /// The balance of a slot.
    #[must_use]
    pub fn balance(&self, slot: SlotId) -> Decimal {
        self.balance.get(&slot).copied().unwrap_or_default()
    }

    /// Adds a credit the trader queued for the ledger. Non-positive
    /// amounts are ignored (the ledger refuses them too).
    pub fn credit(&mut self, slot: SlotId, amount: Decimal, source: SubsidySource) {
        if amount <= Decimal::ZERO {
            return;
        }
        *self.balance.entry(slot).or_default() += amount;
        *self.earned.entry(source).or_default() += amount;
    }

    /// Takes a debit the trader queued for the ledger. A debit larger than
    /// the balance is a bug upstream (plans never overspend); the balance is
    /// floored at zero so the view can never go negative either way.
    pub fn debit(&mut self, slot: SlotId, amount: Decimal) {
        if amount <= Decimal::ZERO {
            return;
        }
        let b = self.balance.entry(slot).or_default();
        *b = (*b - amount).max(Decimal::ZERO);
        self.spent += amount;
    }

    /// Replaces a slot's balance with the ledger's (only when nothing of
    /// this trader is unacknowledged, so the two agree by definition). A
    /// higher ledger balance is an outside credit: counted as operator.
    pub fn sync(&mut self, slot: SlotId, ledger_balance: Decimal) {
        let mine = self.balance(slot);
        if ledger_balance > mine {
            *self.earned.entry(SubsidySource::Operator).or_default() += ledger_balance - mine;
        }
        self.balance.insert(slot, ledger_balance.max(Decimal::ZERO));
    }

    /// Total balance over all slots.
    #[must_use]
    pub fn total(&self) -> Decimal {
        self.balance.values().copied().sum()
    }

    /// Lifetime credits over all sources.
    #[must_use]
    pub fn total_earned(&self) -> Decimal {
        self.earned.values().copied().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn credits_and_debits_move_the_balance_and_never_below_zero() {
        let mut v = SubsidyView::default();
        v.credit(1, dec!(0.05), SubsidySource::OverPerformance);
        v.credit(1, dec!(-1), SubsidySource::Churner);
        v.debit(1, dec!(0.03));
        assert_eq!(v.balance(1), dec!(0.02));
        v.debit(1, dec!(1));
        assert_eq!(v.balance(1), dec!(0));
        assert_eq!((v.total_earned(), v.spent), (dec!(0.05), dec!(1.03)));
    }

    #[test]
    fn sync_takes_the_ledger_balance_and_counts_outside_credits() {
        let mut v = SubsidyView::default();
        v.credit(0, dec!(0.01), SubsidySource::OverPerformance);
        v.sync(0, dec!(0.51));
        assert_eq!(v.balance(0), dec!(0.51));
        assert_eq!(v.earned[&SubsidySource::Operator], dec!(0.50));
    }
}
