//! Operator commands to a slot's churner (SPEC §6 "spawn and kill a
//! churner by hand") and the reserve check: validated here, carried out
//! by the next [`super::plan`].

use rust_decimal::Decimal;

use super::{ChurnBook, ChurnerConfig};
use crate::engine::SlotId;

/// Operator commands (SPEC §6 "spawn and kill a churner by hand").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManualCommand {
    /// Run the slot's churner even if the automatic gates would not
    /// activate it (capital, headroom and a parent are still required).
    Spawn,
    /// Stop the slot's churner: a resting entry is cancelled; a filled
    /// entry keeps its exit.
    Kill,
}

/// Why a churner cannot act on a manual command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManualError {
    /// The slot does not exist.
    #[error("slot {0} does not exist")]
    UnknownSlot(SlotId),
    /// The churner is off in the configuration.
    #[error("the churner is disabled (CHURNER_ENABLED=false)")]
    Disabled,
    /// The slot's churner is already under this command: nothing to do.
    #[error("nothing to do: the churner of slot {0} is already {1}")]
    Already(SlotId, &'static str),
    /// A reserve below what churners have borrowed now.
    #[error(
        "reserve {reserve} USD is below the {lent} USD lent to churners now; kill churners \
         or wait for their cycles to end first"
    )]
    ReserveBelowLent {
        /// The reserve asked for.
        reserve: Decimal,
        /// Lent now.
        lent: Decimal,
    },
}

/// Whether an operator may set the reserve to `reserve` now: the churner
/// must be on and the reserve must cover what is lent (loans are never
/// called back early, so a smaller reserve would be over-lent).
///
/// # Errors
/// [`ManualError::Disabled`] or [`ManualError::ReserveBelowLent`].
pub fn check_reserve(
    book: &ChurnBook,
    cfg: &ChurnerConfig,
    reserve: Decimal,
) -> Result<(), ManualError> {
    if !cfg.enabled {
        return Err(ManualError::Disabled);
    }
    let lent = book.reserve.total();
    if reserve < lent {
        return Err(ManualError::ReserveBelowLent { reserve, lent });
    }
    Ok(())
}

impl ManualCommand {
    /// What the command leaves the churner as, in words.
    #[must_use]
    pub fn as_state(self) -> &'static str {
        match self {
            Self::Spawn => "spawned by hand",
            Self::Kill => "killed",
        }
    }
}

/// Applies an operator command to a slot's churner; the next [`plan`]
/// carries it out.
///
/// # Errors
/// [`ManualError`] when the slot is unknown, the churner is off, or the
/// slot's churner is already under `cmd`; nothing changes then.
pub fn manual(
    book: &mut ChurnBook,
    cfg: &ChurnerConfig,
    slots: u32,
    slot: SlotId,
    cmd: ManualCommand,
) -> Result<(), ManualError> {
    if slot >= slots {
        return Err(ManualError::UnknownSlot(slot));
    }
    if !cfg.enabled {
        return Err(ManualError::Disabled);
    }
    if book.slots.get(&slot).and_then(|s| s.manual) == Some(cmd) {
        return Err(ManualError::Already(slot, cmd.as_state()));
    }
    let s = book.slots.entry(slot).or_default();
    s.manual = Some(cmd);
    Ok(())
}
