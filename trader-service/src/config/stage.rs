//! Rollout stages of SPEC §10: the flags a stage sets and the stage a set of
//! flags amounts to, kept side by side so the two never drift apart.

use clap::ValueEnum;

use super::{AutoRepriceBand, HealingArgs, HealingSettings};

/// Rollout stage of SPEC §10, derived from the flags in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum, serde::Serialize)]
#[value(rename_all = "UPPER")]
pub enum RolloutStage {
    /// Ledger only.
    A,
    /// Ledger + tighten.
    B,
    /// + churner.
    C,
    /// + subsidized repricing from band stuck, locked pairs released.
    D,
    /// + automatic write-off by policy.
    E,
}

impl HealingArgs {
    /// Sets the flags of a SPEC §10 rollout stage: A ledger only; B +
    /// tighten (`SUBSIDY_ENABLED`, subsidized only for write-off); C +
    /// churner; D + subsidized repricing from band stuck and the release of
    /// locked pairs (the full flywheel); E + automatic write-off. Other settings keep their values,
    /// and [`HealingSettings::stage`] derives the same stage back.
    pub fn apply_stage(&mut self, stage: RolloutStage) {
        self.subsidy_enabled = stage >= RolloutStage::B;
        self.churner_enabled = stage >= RolloutStage::C;
        // Before D subsidized repricing waits for write-off positions; D is
        // where it starts at band stuck (the full flywheel).
        self.subsidy_auto_reprice_band = if stage >= RolloutStage::D {
            AutoRepriceBand::Stuck
        } else {
            AutoRepriceBand::WriteOff
        };
        self.subsidy_write_off_auto = stage >= RolloutStage::E;
        // Releasing locked pairs comes with the full flywheel.
        self.heal_release_locked_pairs = stage >= RolloutStage::D;
        if stage > RolloutStage::A {
            self.position_ledger_enabled = true;
        }
    }
}

impl HealingSettings {
    /// The rollout stage the flags amount to.
    #[must_use]
    pub fn stage(&self) -> RolloutStage {
        let full_flywheel = self.subsidy_enabled
            && self.churner_enabled
            && self.subsidy_auto_reprice_band != AutoRepriceBand::WriteOff;
        match (self.subsidy_enabled, self.churner_enabled) {
            _ if full_flywheel && self.subsidy_write_off_auto => RolloutStage::E,
            _ if full_flywheel && self.subsidy_auto_reprice_band == AutoRepriceBand::Stuck => {
                RolloutStage::D
            }
            (_, true) => RolloutStage::C,
            (true, false) => RolloutStage::B,
            (false, false) => RolloutStage::A,
        }
    }
}
