//! Subsidy, derived from the journal (SPEC §3.3).
//!
//! There is no mutable balance anywhere. Every subsidy-affecting journal row
//! stores its own contribution and the slot's lifetime cumulative totals
//! *after* it, computed under the slot lock in the row's transaction. Rows
//! are immutable, so the newest such row is the slot's state, readable in
//! O(log n). Compaction folds old rows into a per-slot watermark and keeps a
//! snapshot of the cumulative totals, so the newest state survives even if
//! its row was folded.

use rust_decimal::Decimal;

use super::LedgerError;

/// Subsidy amounts split by source: either one row's contribution or a
/// slot's lifetime totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubsidyTotals {
    /// Credits from churner round trips.
    pub churner_profit: Decimal,
    /// Credits from exits that beat their target.
    pub over_performance: Decimal,
    /// Debits from reprices with reason `subsidy`.
    pub subsidy: Decimal,
    /// Debits from reprices with reason `operator`.
    pub operator: Decimal,
}

/// The contribution of one journal row; same shape as the totals.
pub type SubsidyDelta = SubsidyTotals;

impl SubsidyTotals {
    /// Total credits.
    pub fn earned(&self) -> Decimal {
        self.churner_profit + self.over_performance
    }

    /// Total debits.
    pub fn consumed(&self) -> Decimal {
        self.subsidy + self.operator
    }

    /// Credits minus debits.
    pub fn balance(&self) -> Decimal {
        self.earned() - self.consumed()
    }

    /// True when nothing is credited or debited.
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    /// True when the amounts spend subsidy.
    pub fn is_debit(&self) -> bool {
        !self.consumed().is_zero()
    }

    /// Component-wise sum.
    pub fn plus(&self, other: &Self) -> Self {
        Self {
            churner_profit: self.churner_profit + other.churner_profit,
            over_performance: self.over_performance + other.over_performance,
            subsidy: self.subsidy + other.subsidy,
            operator: self.operator + other.operator,
        }
    }

    /// Component-wise sum, `None` when a component or the balance would
    /// leave `Decimal`'s range.
    pub fn checked_plus(&self, other: &Self) -> Option<Self> {
        let next = Self {
            churner_profit: self.churner_profit.checked_add(other.churner_profit)?,
            over_performance: self.over_performance.checked_add(other.over_performance)?,
            subsidy: self.subsidy.checked_add(other.subsidy)?,
            operator: self.operator.checked_add(other.operator)?,
        };
        // earned(), consumed() and balance() must not overflow either.
        let earned = next.churner_profit.checked_add(next.over_performance)?;
        let consumed = next.subsidy.checked_add(next.operator)?;
        earned.checked_sub(consumed)?;
        Some(next)
    }

    /// The totals after applying `delta`, refusing a debit that would leave a
    /// negative balance (never clamped) and totals too large to represent
    /// (hostile amounts; the slot is unchanged either way).
    pub fn apply(
        &self,
        delta: &SubsidyDelta,
        bot_id: &str,
        slot_id: u32,
    ) -> Result<Self, LedgerError> {
        let next = self.checked_plus(delta).ok_or_else(|| {
            LedgerError::Precondition(format!(
                "subsidy totals of bot {bot_id} slot {slot_id} would exceed the largest representable amount"
            ))
        })?;
        if delta.is_debit() && next.balance() < Decimal::ZERO {
            return Err(LedgerError::InsufficientSubsidy {
                bot_id: bot_id.to_owned(),
                slot_id,
                balance: self.balance(),
                requested: delta.consumed(),
            });
        }
        Ok(next)
    }
}

/// The cumulative totals as of a journal sequence number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CumulativeAt {
    /// Slot sequence number of the row (or snapshot) the totals belong to.
    pub slot_seq: i64,
    /// Lifetime totals after that row.
    pub totals: SubsidyTotals,
}

/// The slot's current lifetime totals: the newest surviving subsidy row, or
/// the compaction snapshot when that row was folded away (or there is none).
pub fn current_totals(snapshot: CumulativeAt, newest_row: Option<CumulativeAt>) -> SubsidyTotals {
    match newest_row {
        Some(row) if row.slot_seq >= snapshot.slot_seq => row.totals,
        _ => snapshot.totals,
    }
}

/// Subsidy of one slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotSubsidy {
    /// Bot of the slot.
    pub bot_id: String,
    /// The slot.
    pub slot_id: u32,
    /// Lifetime totals split by source.
    pub totals: SubsidyTotals,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn credit(x: Decimal) -> SubsidyDelta {
        SubsidyDelta {
            churner_profit: x,
            ..Default::default()
        }
    }

    fn debit(x: Decimal) -> SubsidyDelta {
        SubsidyDelta {
            subsidy: x,
            ..Default::default()
        }
    }

    /// Proves: credits whose totals would leave `Decimal`'s range are
    /// refused with a precondition error instead of panicking.
    #[test]
    fn totals_that_would_overflow_are_refused() {
        let big = Decimal::MAX / dec!(2);
        let t = SubsidyTotals::default()
            .apply(&credit(big), "b", 0)
            .unwrap();
        let e = t.apply(&credit(big), "b", 0).unwrap_err();
        assert!(
            matches!(e, LedgerError::Precondition(ref m) if m.contains("largest")),
            "{e}"
        );
        let e = t
            .apply(
                &SubsidyDelta {
                    over_performance: big,
                    ..Default::default()
                },
                "b",
                0,
            )
            .unwrap_err();
        assert!(matches!(e, LedgerError::Precondition(_)), "{e}");
    }

    #[test]
    fn debits_never_overdraw() {
        let t = SubsidyTotals::default()
            .apply(&credit(dec!(1)), "b", 0)
            .unwrap();
        let t = t.apply(&debit(dec!(0.4)), "b", 0).unwrap();
        assert_eq!(t.balance(), dec!(0.6));
        match t.apply(&debit(dec!(0.7)), "b", 0) {
            Err(LedgerError::InsufficientSubsidy {
                balance, requested, ..
            }) => {
                assert_eq!(balance, dec!(0.6));
                assert_eq!(requested, dec!(0.7));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            t.apply(&debit(dec!(0.6)), "b", 0).unwrap().balance(),
            dec!(0)
        );
    }

    #[test]
    fn snapshot_wins_only_when_newer() {
        let snap = CumulativeAt {
            slot_seq: 10,
            totals: credit(dec!(5)),
        };
        let row = |seq| CumulativeAt {
            slot_seq: seq,
            totals: credit(dec!(7)),
        };
        assert_eq!(current_totals(snap, None).balance(), dec!(5));
        assert_eq!(current_totals(snap, Some(row(9))).balance(), dec!(5));
        assert_eq!(current_totals(snap, Some(row(10))).balance(), dec!(7));
        assert_eq!(current_totals(snap, Some(row(11))).balance(), dec!(7));
    }
}
