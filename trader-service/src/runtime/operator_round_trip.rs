//! Operator actions on a handed-over churner round trip (SPEC §6, §8): it
//! is a position of its slot, named by its ledger id like any other. A
//! hold suspends its automatic repricing and hides it from the cleanup
//! queue by the same rule as a slot's exit, a move to breakeven is the
//! same rule too; a close at market is not offered for it.

use crate::exchange::Exchange;
use rust_decimal::Decimal;

use crate::engine::{PendingReprice, RepriceKind};
use crate::healing::operator::{ExitFacts, OperatorRefusal, breakeven_of};
use crate::runtime::control::{ActionOutcome, ActionRequest, OperatorAction};
use crate::runtime::ledger::LedgerApi;
use crate::runtime::r#loop::Runtime;

/// Why a close at market of a churner round trip is refused.
pub(crate) const CLOSE_REFUSED: &str =
    "close at market is not available for a churner round trip yet";

impl<E: Exchange, L: LedgerApi> Runtime<E, L> {
    /// Moves the handed-over round trip's exit to breakeven by the same
    /// rule as a slot's exit; the churner loop cancels it and places the
    /// remainder at the new price, and the slot's subsidy pays what it
    /// covers.
    fn round_trip_to_breakeven(
        &mut self,
        req: &ActionRequest,
        position_id: &str,
        now: i64,
    ) -> Result<ActionOutcome, OperatorRefusal> {
        let market = self.engine.market;
        let bands = &self.cfg.engine.bands;
        let views = market.map_or_else(Vec::new, |m| self.book.churn.handed_over(now, m, bands));
        let Some(h) = views
            .iter()
            .find(|h| h.position.position_id.as_deref() == Some(position_id))
        else {
            return Err(OperatorRefusal::precondition(
                "no market price yet: the target cannot be placed safely",
            ));
        };
        if !h.live() {
            return Err(OperatorRefusal::precondition(format!(
                "exit {} is not live on the exchange or is being repriced; try again after \
                 the next loop",
                h.order.id
            )));
        }
        let facts = ExitFacts::from(h);
        let balance = self.book.subsidy.balance(h.slot);
        let m = breakeven_of(
            market,
            &self.cfg.engine,
            &self.cfg.reprice,
            &facts,
            balance,
            now,
        )?;
        let (order_id, open_key, entry_time) = (
            h.order.id.clone(),
            h.position.open_key.clone(),
            h.position.entry_time,
        );
        let accepted = self.reprice_handed_over(
            &order_id,
            PendingReprice {
                new_price: m.new_price,
                kind: RepriceKind::Operator,
                subsidized: m.subsidy > Decimal::ZERO,
                full: true,
                subsidy_cap: Some(m.subsidy),
                requested_at: now,
            },
        );
        if !accepted {
            return Err(OperatorRefusal::precondition(
                "the churner did not accept the reprice (exit not live)",
            ));
        }
        self.journal_on(req, open_key, None, now.max(entry_time));
        Ok(ActionOutcome {
            action: req.action.name().to_owned(),
            position_id: Some(position_id.to_owned()),
            message: format!(
                "churner exit moves from {} to {} (breakeven, never crossing the market); \
                 subsidy pays {} of {}, the rest is profit given up",
                m.old_price, m.new_price, m.subsidy, m.moved
            ),
            at: now,
            replayed: false,
        })
    }

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
            OperatorAction::RepriceToBreakeven { .. } => {
                return self.round_trip_to_breakeven(req, position_id, now);
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
