//! Operator control with replies: what an operator may ask the running loop
//! to do ([`OperatorAction`]), the answer it gets ([`ActionReply`]), and the
//! message that carries both over the handle's queue ([`ControlMessage`]).
//!
//! Actions run *inside* the loop, between steps, so they are serialized
//! with each other and with the loop's own repricing. An accepted action's
//! answer is committed in the trader's store together with the state change
//! and the ledger writes it implies, under its `request_id`: a retry with
//! the same id returns that first answer (marked `replayed`) and does
//! nothing again, also after a restart. A refusal changes nothing and is not
//! remembered, so a retry after the cause is gone may succeed.
//!
//! Adding an action is one [`OperatorAction`] variant, its arm in
//! [`super::operator`], and its RPC.

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::healing::Regime;
use crate::healing::operator::OperatorRefusal;
use crate::runtime::status::ControlCommand;

/// Longest `request_id` accepted.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// An action on the trading state an operator asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum OperatorAction {
    /// Move a position's exit to breakeven, never crossing the market;
    /// subsidy pays what the slot has (SPEC §8).
    RepriceToBreakeven {
        /// Ledger position id.
        position_id: String,
    },
    /// Hide a position from the cleanup queue and suspend its automatic
    /// repricing for `hold_sec` seconds (already validated).
    KeepHolding {
        /// Ledger position id.
        position_id: String,
        /// Hold window, seconds.
        hold_sec: i64,
    },
    /// Cancel the exit, close the remaining volume at market, book the
    /// exchange's fill and close the position `written_off` (SPEC §8).
    CloseAtMarket {
        /// Ledger position id.
        position_id: String,
    },
    /// End a hold early.
    ReleaseHold {
        /// Ledger position id.
        position_id: String,
    },
    /// Force the regime label for `ttl_sec` seconds, or clear the override
    /// (`regime: None`).
    SetRegimeOverride {
        /// Forced label; `None` clears (back to the detector).
        regime: Option<Regime>,
        /// Lifetime, seconds (ignored when clearing).
        ttl_sec: i64,
    },
    /// Run a slot's churner by hand (SPEC §6).
    SpawnChurner {
        /// The slot.
        slot: crate::engine::SlotId,
    },
    /// Stop a slot's churner; a filled entry keeps its exit.
    KillChurner {
        /// The slot.
        slot: crate::engine::SlotId,
    },
    /// Set the churner reserve in force (already validated: 0 ..
    /// [`MAX_CHURNER_RESERVE_USD`]).
    SetChurnerReserve {
        /// USD.
        reserve_usd: rust_decimal::Decimal,
    },
}

/// Largest churner reserve an operator may set, USD (a typo guard, far
/// above any sane reserve).
pub const MAX_CHURNER_RESERVE_USD: i64 = 1_000_000;

impl OperatorAction {
    /// Snake-case name, as journaled.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::RepriceToBreakeven { .. } => "reprice_to_breakeven",
            Self::KeepHolding { .. } => "keep_holding",
            Self::ReleaseHold { .. } => "release_hold",
            Self::CloseAtMarket { .. } => "close_at_market",
            Self::SetRegimeOverride { .. } => "set_regime_override",
            Self::SpawnChurner { .. } => "spawn_churner",
            Self::KillChurner { .. } => "kill_churner",
            Self::SetChurnerReserve { .. } => "set_churner_reserve",
        }
    }
}

/// One operator request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRequest {
    /// Idempotency key chosen by the caller.
    pub request_id: String,
    /// What to do.
    pub action: OperatorAction,
    /// Why (journaled with the action).
    pub reason: String,
    /// Who (journaled; `operator` when not given).
    pub operator: String,
}

/// What an accepted action did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionOutcome {
    /// The action's name.
    pub action: String,
    /// The position acted on, if any.
    pub position_id: Option<String>,
    /// What happened, in words.
    pub message: String,
    /// When it was accepted, unix seconds (exchange clock).
    pub at: i64,
    /// True when this answer is the stored one of an earlier request with
    /// the same id (nothing was done again).
    #[serde(default)]
    pub replayed: bool,
}

/// Why an action got no outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// Refused by the rules; nothing changed.
    #[error(transparent)]
    Refused(#[from] OperatorRefusal),
    /// The trader's store failed; nothing was committed.
    #[error("the trader's store failed: {0}")]
    Store(String),
}

/// The answer to an [`ActionRequest`].
pub type ActionReply = Result<ActionOutcome, ActionError>;

/// What travels from a handle to the loop.
#[derive(Debug)]
pub enum ControlMessage {
    /// A switch (pause, resume, retry parked): fire-and-forget.
    Switch(ControlCommand),
    /// An action with its reply channel.
    Action(ActionRequest, oneshot::Sender<ActionReply>),
}

/// The store's record of an accepted request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredAnswer {
    /// The request as first received (a reuse of the id for another
    /// request is refused).
    pub(crate) request: ActionRequest,
    /// Its outcome.
    pub(crate) outcome: ActionOutcome,
}

/// Store metadata key of a request's answer.
#[must_use]
pub(crate) fn answer_key(request_id: &str) -> String {
    format!("operator_request:{request_id}")
}
