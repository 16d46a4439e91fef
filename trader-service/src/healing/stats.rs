//! Counters of what self-healing did, for status, logs and the backtest
//! report. Plain data, updated by the runtime from plans and bookings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::RepriceKind;
use crate::healing::reprice::{RepricePlan, SkipReason};

/// Lifetime repricing counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RepriceStats {
    /// Position checks over all plans.
    pub checked: u64,
    /// Free tighten reprices that took effect.
    pub tighten: u64,
    /// Subsidized reprices to the fillable price.
    pub subsidized_full: u64,
    /// Subsidized reprices part of the way.
    pub subsidized_partial: u64,
    /// Reprices below breakeven paid by subsidy.
    pub loss_funded: u64,
    /// Operator moves to breakeven that took effect.
    pub operator: u64,
    /// Skips per reason.
    pub skipped: BTreeMap<String, u64>,
}

impl RepriceStats {
    /// Counts a plan's checks and skips.
    pub fn count_plan(&mut self, plan: &RepricePlan) {
        self.checked += u64::from(plan.checked);
        for s in &plan.skips {
            *self
                .skipped
                .entry(s.reason.as_str().to_owned())
                .or_default() += 1;
        }
    }

    /// Counts a reprice that took effect. `full` says whether a subsidized
    /// one reached its fillable price.
    pub fn count_booking(&mut self, kind: RepriceKind, full: bool) {
        match kind {
            RepriceKind::Tighten => self.tighten += 1,
            RepriceKind::LossFunded => self.loss_funded += 1,
            RepriceKind::Operator => self.operator += 1,
            RepriceKind::Subsidy if full => self.subsidized_full += 1,
            RepriceKind::Subsidy => self.subsidized_partial += 1,
        }
    }

    /// Skips of one reason.
    #[must_use]
    pub fn skipped(&self, reason: SkipReason) -> u64 {
        self.skipped
            .get(reason.as_str())
            .copied()
            .unwrap_or_default()
    }
}
