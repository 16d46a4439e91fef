//! Operator actions on a handed-over churner round trip (SPEC §6, §8): it
//! is a position of its slot, named by its ledger id like any other. A
//! hold suspends its automatic repricing and hides it from the cleanup
//! queue by the same rule as a slot's exit; a close at market is not
//! offered for it.

use crate::exchange::Exchange;
use crate::healing::operator::OperatorRefusal;
use crate::runtime::control::{ActionOutcome, ActionRequest, OperatorAction};
use crate::runtime::ledger::LedgerApi;
use crate::runtime::r#loop::Runtime;

/// Why a close at market of a churner round trip is refused.
pub(crate) const CLOSE_REFUSED: &str =
    "close at market is not available for a churner round trip yet";

impl<E: Exchange, L: LedgerApi> Runtime<E, L> {
    /// The position id an action names, when it is a handed-over churner
    /// round trip's (and no engine exit's).
    pub(crate) fn round_trip_named(&self, action: &OperatorAction) -> Option<String> {
        let id = match action {
            OperatorAction::RepriceToBreakeven { position_id }
            | OperatorAction::KeepHolding { position_id, .. }
            | OperatorAction::CloseAtMarket { position_id }
            | OperatorAction::ReleaseHold { position_id } => position_id,
            _ => return None,
        };
        let engine_has_it = self
            .engine
            .open_exits()
            .any(|x| x.position_id.as_deref() == Some(id.as_str()));
        (!engine_has_it && self.book.churn.handed_over_by_id(id).is_some()).then(|| id.clone())
    }

    /// Carries out `req` on the handed-over round trip `position_id` (no
    /// commit yet).
    pub(crate) fn act_on_round_trip(
        &mut self,
        req: &ActionRequest,
        position_id: &str,
        now: i64,
    ) -> Result<ActionOutcome, OperatorRefusal> {
        let (until, message) = match &req.action {
            OperatorAction::KeepHolding { hold_sec, .. } => {
                let until = now + hold_sec;
                (
                    Some(until),
                    format!(
                        "churner round trip on hold until {until} (unix seconds): out of the \
                         cleanup queue, no automatic reprice"
                    ),
                )
            }
            OperatorAction::ReleaseHold { .. } => {
                let held = self
                    .book
                    .churn
                    .handed_over_by_id(position_id)
                    .is_some_and(|t| t.heal.held(now));
                if !held {
                    return Err(OperatorRefusal::precondition(format!(
                        "position {position_id} is not on hold"
                    )));
                }
                (
                    None,
                    "hold released: automatic repricing applies again".to_owned(),
                )
            }
            OperatorAction::CloseAtMarket { .. } => {
                return Err(OperatorRefusal::precondition(CLOSE_REFUSED));
            }
            _ => {
                return Err(OperatorRefusal::precondition(format!(
                    "{} is not available for a churner round trip yet",
                    req.action.name()
                )));
            }
        };
        let Some(t) = self.book.churn.hold_handed_over(position_id, until) else {
            return Err(OperatorRefusal::not_found(format!(
                "no open position {position_id} of this trader"
            )));
        };
        self.dirty = true;
        self.journal_on(req, t.open_key, until, now.max(t.entry_time));
        Ok(ActionOutcome {
            action: req.action.name().to_owned(),
            position_id: Some(position_id.to_owned()),
            message,
            at: now,
            replayed: false,
        })
    }
}
