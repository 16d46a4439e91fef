//! Operator actions on a handed-over churner round trip (SPEC §6, §8): it
//! is a position of its slot, named by its ledger id like any other. A
//! hold suspends its automatic repricing and hides it from the cleanup
//! queue by the same rule as a slot's exit, a move to breakeven is the
//! same rule too, and a close at market has a slot exit's guarantees: the
//! churner cancels the exit, sends only the remainder at market
//! ([`crate::healing::churner::request_close`]), books the exchange's fill
//! `written_off` and unpauses the slot's churner; a failed market order
//! restores the exit.

use crate::exchange::Exchange;
use rust_decimal::Decimal;

use crate::engine::{PendingReprice, RepriceKind};
use crate::healing::operator::{ExitFacts, OperatorRefusal, breakeven_of, round_trip_unavailable};
use crate::runtime::control::{ActionOutcome, ActionRequest, OperatorAction};
use crate::runtime::ledger::LedgerApi;
use crate::runtime::r#loop::Runtime;
use crate::runtime::operator::closing_message;
use crate::runtime::writes::CloseKind;

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

    /// Starts an operator's close at market of the handed-over round trip
    /// `position_id`: refused as a slot exit's would be (no market price,
    /// a reprice or close in progress, exit not live); the note is kept
    /// for the ledger's close event and the action journaled on the round
    /// trip, all in this step's commit.
    fn round_trip_close(
        &mut self,
        req: &ActionRequest,
        position_id: &str,
        now: i64,
    ) -> Result<ActionOutcome, OperatorRefusal> {
        let note = self.operator_close_note(req)?;
        let market = self.engine.market.unwrap_or_default();
        let views = self
            .book
            .churn
            .handed_over(now, market, &self.cfg.engine.bands);
        let Some(h) = views
            .iter()
            .find(|h| h.position.position_id.as_deref() == Some(position_id))
        else {
            return Err(OperatorRefusal::not_found(format!(
                "no open position {position_id} of this trader"
            )));
        };
        if let Some(r) = round_trip_unavailable(h) {
            return Err(r);
        }
        let message = closing_message(&h.order.id, h.remaining(), h.order.side);
        let (order_id, open_key, entry_time) = (
            h.order.id.clone(),
            h.position.open_key.clone(),
            h.position.entry_time,
        );
        crate::healing::churner::request_close(&mut self.book.churn, &order_id, now)
            .map_err(|e| OperatorRefusal::precondition(e.to_string()))?;
        self.book.round_trip_closes.insert(open_key.clone(), note);
        self.dirty = true;
        self.journal_on(req, open_key, None, now.max(entry_time));
        Ok(ActionOutcome {
            action: req.action.name().to_owned(),
            position_id: Some(position_id.to_owned()),
            message,
            at: now,
            replayed: false,
        })
    }

    /// A handed-over round trip closed: for a close at market, counts the
    /// write-off and returns the ledger close's reason and note (the
    /// operator's), as for a slot's exit.
    pub(crate) fn round_trip_closed(
        &mut self,
        open_key: &str,
        written_off: bool,
        net: Decimal,
    ) -> (CloseKind, String) {
        if !written_off {
            return (CloseKind::Filled, "churner exit filled".into());
        }
        let note = self.book.round_trip_closes.remove(open_key);
        let policy = note.as_ref().is_some_and(|n| n.policy);
        self.tally_write_off(policy, net);
        tracing::info!(%open_key, policy, %net,
            "churner round trip closed at market: booked written_off at the exchange's fill");
        let text = note.map_or_else(|| "closed at market".to_owned(), |n| n.text);
        (CloseKind::WrittenOff, text)
    }

    /// The market order `order_id` of a round trip's close failed and its
    /// exit is restored: the round trip is no longer being written off and
    /// the failure is journaled on it.
    pub(crate) fn round_trip_close_failed(&mut self, open_key: String, order_id: &str, at: i64) {
        self.book.round_trip_closes.remove(&open_key);
        self.journal_close_failed(open_key, order_id, at);
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
                return self.round_trip_close(req, position_id, now);
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
