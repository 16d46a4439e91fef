//! Carrying out operator actions in the loop (SPEC §8). The rules are pure
//! ([`crate::healing::operator`]); this file finds the position, looks up
//! an earlier answer to the same `request_id`, feeds the engine, queues the
//! ledger journal row (on the position, or in the bot journal for a regime
//! override or the churner reserve), and commits the answer with the state
//! in one step, before the reply leaves.

use crate::crash_point::CrashPoint;
use crate::engine::{Event, ExitOrder, RepriceKind};
use crate::exchange::Exchange;
use crate::healing::churner::ManualCommand;
use crate::healing::operator::{
    CleanupEntry, OperatorRefusal, QueueInputs, breakeven_move, cleanup_queue, exit_unavailable,
    on_hold,
};
use crate::healing::throughput::ThroughputSizer;
use crate::runtime::book::position_key;
use crate::runtime::control::{
    ActionError, ActionOutcome, ActionReply, ActionRequest, ControlMessage, OperatorAction,
    StoredAnswer, answer_key,
};
use crate::runtime::ledger::LedgerApi;
use crate::runtime::r#loop::{Runtime, RuntimeError};
use crate::runtime::writes::{
    BotActionKind, BotJournalWrite, CloseNote, LedgerWriteRequest, OperatorWrite,
};
use healgrid_proto::crash::reached_at;

/// The position a slot's churner works for, as an operator's churner
/// command is journaled on it.
struct ChurnerParent {
    /// Its ledger open key.
    open_key: String,
    /// Its ledger id, once the ledger acknowledged it.
    position_id: Option<String>,
    /// Its entry time (a journal row is never dated before it).
    entry_time: i64,
}

/// The answer to an accepted close at market of the exit `exit_id` with
/// `remaining` volume open on `side`.
pub(crate) fn closing_message(
    exit_id: &str,
    remaining: rust_decimal::Decimal,
    side: crate::pair::Side,
) -> String {
    format!(
        "closing at market: exit {exit_id} is cancelled, then {remaining} is {} at market; \
         the exchange's fill price and fee are booked and the position closes written_off",
        match side {
            crate::pair::Side::Buy => "bought",
            crate::pair::Side::Sell => "sold",
        }
    )
}

/// Store metadata key of the persisted throughput statistics.
pub(crate) const THROUGHPUT_META_KEY: &str = "throughput";

impl<E: Exchange, L: LedgerApi> Runtime<E, L> {
    /// Serves one message from a handle: a switch is applied, an action is
    /// carried out and answered.
    pub(crate) async fn on_control(&mut self, msg: ControlMessage, now_ms: i64) {
        match msg {
            ControlMessage::Switch(cmd) => self.apply_command(cmd),
            ControlMessage::Action(req, reply) => {
                let answer = self.run_action(req, now_ms).await;
                // The caller may have gone (timeout); the action stands and
                // its answer is stored for a retry.
                let _ = reply.send(answer);
            }
        }
    }

    /// Serves every message already queued on this runtime's handle (for
    /// callers that drive [`Self::step`] themselves: tests, tools). Returns
    /// how many were served. [`Self::run_forever`] serves them on its own.
    ///
    /// # Errors
    /// [`RuntimeError`] if publishing the status fails.
    pub async fn serve_control(&mut self, now_ms: i64) -> Result<usize, RuntimeError> {
        let mut msgs = Vec::new();
        if let Some(h) = self.handle.as_mut() {
            while let Ok(m) = h.commands.try_recv() {
                msgs.push(m);
            }
        }
        let n = msgs.len();
        for m in msgs {
            self.on_control(m, now_ms).await;
        }
        if n > 0 {
            self.publish(now_ms).await?;
        }
        Ok(n)
    }

    /// Carries out one action: the stored answer for a known request id,
    /// else the action itself, committed with its answer.
    pub(crate) async fn run_action(&mut self, req: ActionRequest, now_ms: i64) -> ActionReply {
        let key = answer_key(&req.request_id);
        let stored = self
            .store
            .get_meta(&key)
            .await
            .map_err(|e| ActionError::Store(e.to_string()))?;
        if let Some(json) = stored {
            let s: StoredAnswer = serde_json::from_str(&json)
                .map_err(|e| ActionError::Store(format!("stored answer unreadable: {e}")))?;
            if s.request != req {
                return Err(OperatorRefusal::precondition(format!(
                    "request id {:?} was already used for a different request ({} of position \
                     {}); use a new id",
                    req.request_id,
                    s.outcome.action,
                    s.outcome.position_id.as_deref().unwrap_or("-")
                ))
                .into());
            }
            tracing::info!(request_id = %req.request_id, action = %s.outcome.action,
                "operator request retried: the first answer is returned, nothing done again");
            return Ok(ActionOutcome {
                replayed: true,
                ..s.outcome
            });
        }
        let now = now_ms.div_euclid(1000);
        let outcome = match self.act(&req, now) {
            Ok(o) => o,
            Err(r) => {
                tracing::warn!(request_id = %req.request_id, action = req.action.name(),
                    reason = %r.message, "operator action refused");
                return Err(r.into());
            }
        };
        let answer = StoredAnswer {
            request: req,
            outcome: outcome.clone(),
        };
        let json = serde_json::to_string(&answer)
            .unwrap_or_else(|_| unreachable!("plain data always serialises"));
        reached_at(CrashPoint::OperatorApplied);
        self.pending_meta.push((key, json));
        self.dirty = true;
        self.commit(now_ms)
            .await
            .map_err(|e| ActionError::Store(e.to_string()))?;
        reached_at(CrashPoint::OperatorCommitted);
        tracing::info!(request_id = %answer.request.request_id, action = %outcome.action,
            position_id = ?outcome.position_id, message = %outcome.message,
            reason = %answer.request.reason, "operator action accepted");
        Ok(outcome)
    }

    /// Applies an action to the state (no commit yet).
    fn act(&mut self, req: &ActionRequest, now: i64) -> Result<ActionOutcome, OperatorRefusal> {
        let done = |position_id: Option<&str>, message: String| ActionOutcome {
            action: req.action.name().to_owned(),
            position_id: position_id.map(str::to_owned),
            message,
            at: now,
            replayed: false,
        };
        if let Some(position_id) = self.round_trip_named(&req.action) {
            return self.act_on_round_trip(req, &position_id, now);
        }
        match &req.action {
            OperatorAction::RepriceToBreakeven { position_id } => {
                let x = self.open_exit(position_id)?;
                let slot = x.id.slot;
                let balance = self.book.subsidy.balance(slot);
                let m = breakeven_move(
                    &self.engine,
                    &self.cfg.engine,
                    &self.cfg.reprice,
                    &x,
                    balance,
                    now,
                )?;
                self.apply(&Event::RepriceExit {
                    order_id: x.id,
                    new_price: m.new_price,
                    kind: RepriceKind::Operator,
                    subsidized: m.subsidy > rust_decimal::Decimal::ZERO,
                    full: true,
                    subsidy_cap: Some(m.subsidy),
                });
                if self.exit_of(position_id).and_then(|x| x.reprice).is_none() {
                    return Err(OperatorRefusal::precondition(
                        "the engine did not accept the reprice (exit not live)",
                    ));
                }
                self.journal(req, &x, None, now);
                Ok(done(
                    Some(position_id),
                    format!(
                        "exit moves from {} to {} (breakeven, never crossing the market); \
                         subsidy pays {} of {}, the rest is profit given up",
                        m.old_price, m.new_price, m.subsidy, m.moved
                    ),
                ))
            }
            OperatorAction::KeepHolding {
                position_id,
                hold_sec,
            } => {
                let x = self.open_exit(position_id)?;
                // Nothing to hold once a close at market is under way.
                if x.close.is_some()
                    && let Some(r) = exit_unavailable(&x)
                {
                    return Err(r);
                }
                let until = now + hold_sec;
                self.apply(&Event::HoldExit {
                    order_id: x.id,
                    until: Some(until),
                });
                self.journal(req, &x, Some(until), now);
                Ok(done(
                    Some(position_id),
                    format!(
                        "on hold until {until} (unix seconds): out of the cleanup queue, \
                         no automatic reprice"
                    ),
                ))
            }
            OperatorAction::CloseAtMarket { position_id } => {
                let x = self.open_exit(position_id)?;
                if let Some(r) = exit_unavailable(&x) {
                    return Err(r);
                }
                let note = self.operator_close_note(req)?;
                self.start_close(&x, note)?;
                self.journal(req, &x, None, now);
                Ok(done(
                    Some(position_id),
                    closing_message(&x.id.to_string(), x.remaining(), x.id.trade.exit_side()),
                ))
            }
            OperatorAction::ReleaseHold { position_id } => {
                let x = self.open_exit(position_id)?;
                if !on_hold(&x, now) {
                    return Err(OperatorRefusal::precondition(format!(
                        "position {position_id} is not on hold"
                    )));
                }
                self.apply(&Event::HoldExit {
                    order_id: x.id,
                    until: None,
                });
                self.journal(req, &x, None, now);
                Ok(done(
                    Some(position_id),
                    "hold released: automatic repricing applies again".to_owned(),
                ))
            }
            OperatorAction::SetRegimeOverride { regime, ttl_sec } => match regime {
                Some(r) => {
                    let until = now + ttl_sec;
                    self.override_regime(*r, until, now)
                        .map_err(|e| OperatorRefusal::invalid(e.to_string()))?;
                    self.journal_bot(
                        req,
                        BotActionKind::RegimeOverride,
                        format!("regime={r} until={until} ttl_sec={ttl_sec}"),
                        now,
                    );
                    Ok(done(
                        None,
                        format!("regime forced to {r} until {until} (unix seconds)"),
                    ))
                }
                None => {
                    let was = self.market.regime.clear_override();
                    self.book.regime_override = None;
                    self.dirty = true;
                    let detail = was.map_or_else(
                        || "no override was in force".to_owned(),
                        |o| format!("regime={} until={} cleared", o.regime, o.until),
                    );
                    self.journal_bot(req, BotActionKind::RegimeOverrideCleared, detail, now);
                    Ok(done(
                        None,
                        match was {
                            Some(o) => format!(
                                "override {} cleared: the detector's label applies",
                                o.regime
                            ),
                            None => {
                                "no override was in force: the detector's label applies".to_owned()
                            }
                        },
                    ))
                }
            },
            OperatorAction::SpawnChurner { slot } => {
                self.churner_action(req, *slot, ManualCommand::Spawn, now)
            }
            OperatorAction::KillChurner { slot } => {
                self.churner_action(req, *slot, ManualCommand::Kill, now)
            }
            OperatorAction::SetChurnerReserve { reserve_usd } => {
                let message = self.set_churner_reserve(*reserve_usd)?;
                self.journal_bot(
                    req,
                    BotActionKind::ChurnerReserve,
                    format!("reserve_usd={reserve_usd}"),
                    now,
                );
                Ok(done(None, message))
            }
        }
    }

    /// A spawn or kill of a slot's churner, journaled on the position the
    /// churner works for (so it shows in that position's history), or in
    /// the bot journal when the slot holds no open position. The answer
    /// names that position when it has a ledger id.
    fn churner_action(
        &mut self,
        req: &ActionRequest,
        slot: crate::engine::SlotId,
        cmd: ManualCommand,
        now: i64,
    ) -> Result<ActionOutcome, OperatorRefusal> {
        let message = self.operator_churner(slot, cmd)?;
        let parent = self.churner_parent(slot, now);
        match &parent {
            Some(p) => self.journal_on(req, p.open_key.clone(), None, now.max(p.entry_time)),
            None => {
                let kind = match cmd {
                    ManualCommand::Spawn => BotActionKind::ChurnerSpawn,
                    ManualCommand::Kill => BotActionKind::ChurnerKill,
                };
                self.journal_bot(req, kind, format!("slot={slot}"), now);
            }
        }
        Ok(ActionOutcome {
            action: req.action.name().to_owned(),
            position_id: parent.and_then(|p| p.position_id),
            message,
            at: now,
            replayed: false,
        })
    }

    /// The position a slot's churner works for: the parent its running
    /// round trip names, else the one the churner would take now (the
    /// slot's worst open position, as [`Self::churn_views`] picks it).
    fn churner_parent(&self, slot: crate::engine::SlotId, now: i64) -> Option<ChurnerParent> {
        let running = self
            .book
            .churn
            .slots
            .get(&slot)
            .and_then(|s| s.stage.parent())
            .cloned();
        let parent = running.or_else(|| {
            let market = self.engine.market?;
            self.churn_views(now, market)
                .into_iter()
                .find(|v| v.slot == slot)
                .and_then(|v| v.parent)
                .map(|v| v.parent)
        })?;
        let exit = self.engine.open_exits().find(|x| {
            x.id.slot == slot && x.id.trade == parent.trade && x.id.cycle == parent.cycle
        });
        Some(ChurnerParent {
            position_id: exit.and_then(|x| x.position_id.clone()),
            entry_time: exit.map_or(i64::MIN, |x| x.entry.time),
            open_key: parent.open_key,
        })
    }

    /// Why an operator's close at market is noted on the position (the
    /// ledger's close event carries it), once a market price is known: a
    /// market close is never sent blind.
    pub(crate) fn operator_close_note(
        &self,
        req: &ActionRequest,
    ) -> Result<CloseNote, OperatorRefusal> {
        if self.engine.market.is_none() {
            return Err(OperatorRefusal::precondition(
                "no market price yet: a market close is not sent blind",
            ));
        }
        Ok(CloseNote {
            text: format!(
                "closed at market by {} (request {}): {}",
                req.operator, req.request_id, req.reason
            ),
            policy: false,
        })
    }

    /// Starts a close at market of `x` in the engine and notes why on the
    /// tracked position (the close write carries it).
    pub(crate) fn start_close(
        &mut self,
        x: &ExitOrder,
        note: CloseNote,
    ) -> Result<(), OperatorRefusal> {
        self.apply(&Event::CloseAtMarket { order_id: x.id });
        let started = self
            .engine
            .open_exits()
            .any(|e| e.id.slot == x.id.slot && e.id.trade == x.id.trade && e.close.is_some());
        if !started {
            return Err(OperatorRefusal::precondition(
                "the engine did not accept the close (exit not live)",
            ));
        }
        let key = position_key(x.id.slot, x.id.trade, x.id.cycle);
        if let Some(pos) = self.book.positions.get_mut(&key) {
            pos.close_note = Some(note);
        }
        Ok(())
    }

    /// A close at market failed and the engine restored the limit exit:
    /// the position is no longer being written off; the failure is
    /// journaled so the operator sees it in the position's history.
    pub(crate) fn on_market_close_failed(&mut self, order_id: crate::engine::OrderId, now: i64) {
        let key = position_key(order_id.slot, order_id.trade, order_id.cycle);
        let Some(pos) = self.book.positions.get_mut(&key) else {
            return;
        };
        pos.close_note = None;
        let open_key = pos.open_key.clone();
        self.journal_close_failed(open_key, &order_id.to_string(), now);
    }

    /// Journals on the position `open_key` that the market order
    /// `order_id` of its close failed and its exit is restored (keyed by
    /// that order: journaled once).
    pub(crate) fn journal_close_failed(&mut self, open_key: String, order_id: &str, now: i64) {
        tracing::warn!(%order_id, %open_key,
            "close at market failed (refused or unfilled): the limit exit is restored");
        let w = OperatorWrite {
            open_key,
            request_id: format!("close-failed:{order_id}"),
            action: "close_at_market_failed".to_owned(),
            reason: "the exchange refused or did not fill the market order; exit restored"
                .to_owned(),
            operator: "trader".to_owned(),
            hold_until: None,
            at: now,
        };
        self.pending
            .push(LedgerWriteRequest::Operator(w).to_entry());
    }

    /// Stage E policy (`SUBSIDY_WRITE_OFF_AUTO`): every cleanup-queue
    /// position whose opportunity cost exceeds twice its subsidy need is
    /// closed at market, journaled as policy. Returns whether any started.
    pub(crate) fn auto_write_off(&mut self, now: i64) -> bool {
        if !self.cfg.reprice.write_off_auto || self.engine.market.is_none() {
            return false;
        }
        let mut acted = false;
        for e in self.cleanup_queue(now) {
            if e.opportunity_cost <= e.subsidy_needed * rust_decimal::Decimal::TWO {
                continue;
            }
            // A handed-over churner round trip has no engine exit: the
            // policy never closes one (SPEC §6, filled churner inventory is
            // never sold at a loss without the operator).
            let Some(x) = self.exit_of(&e.position_id) else {
                continue;
            };
            if exit_unavailable(&x).is_some() {
                continue;
            }
            let note = format!(
                "policy SUBSIDY_WRITE_OFF_AUTO: opportunity cost {} > 2 x subsidy need {}",
                e.opportunity_cost, e.subsidy_needed
            );
            tracing::info!(position_id = %e.position_id, opportunity_cost = %e.opportunity_cost,
                subsidy_needed = %e.subsidy_needed, "write-off policy: closing at market");
            acted |= self.policy_close(&x, "policy-write-off", note, now);
        }
        acted
    }

    /// Starts a close at market of `x` decided by a policy (not an
    /// operator), journaled on its position under `<kind>:<position id>`
    /// with `note` as the reason. Returns whether it started.
    pub(crate) fn policy_close(
        &mut self,
        x: &ExitOrder,
        kind: &str,
        note: String,
        now: i64,
    ) -> bool {
        let Some(position_id) = x.position_id.clone() else {
            return false;
        };
        let close = CloseNote {
            text: note.clone(),
            policy: true,
        };
        if self.start_close(x, close).is_err() {
            return false;
        }
        let req = ActionRequest {
            request_id: format!("{kind}:{position_id}"),
            action: OperatorAction::CloseAtMarket { position_id },
            reason: note,
            operator: "policy".to_owned(),
        };
        self.journal(&req, x, None, now);
        true
    }

    /// Counts a booked close at market (operator or policy) with its loss.
    pub(crate) fn count_write_off(&mut self, b: &crate::engine::CycleBooking) {
        let key = position_key(b.slot, b.trade, b.cycle);
        let policy = self
            .book
            .positions
            .get(&key)
            .and_then(|p| p.close_note.as_ref())
            .is_some_and(|n| n.policy);
        self.tally_write_off(policy, b.net);
        tracing::info!(slot = b.slot, trade = b.trade.as_str(), cycle = b.cycle, policy,
            exit_price = %b.exit_price, exit_fee = %b.exit_fee, net = %b.net,
            "closed at market: booked written_off at the exchange's fill");
    }

    /// Adds a close at market with net `net` to the operator's or the
    /// policy's write-off count and loss (the status shows them).
    pub(crate) fn tally_write_off(&mut self, policy: bool, net: rust_decimal::Decimal) {
        let loss = (-net).max(rust_decimal::Decimal::ZERO);
        let w = &mut self.book.write_offs;
        if policy {
            w.auto += 1;
            w.auto_loss_usd += loss;
        } else {
            w.operator += 1;
            w.operator_loss_usd += loss;
        }
    }

    /// The engine exit of an open position of this trader.
    fn exit_of(&self, position_id: &str) -> Option<ExitOrder> {
        self.engine
            .open_exits()
            .find(|x| x.position_id.as_deref() == Some(position_id))
            .cloned()
    }

    fn open_exit(&self, position_id: &str) -> Result<ExitOrder, OperatorRefusal> {
        self.exit_of(position_id).ok_or_else(|| {
            OperatorRefusal::not_found(format!(
                "no open position {position_id} of this trader (closed, unknown, or not yet \
                 acknowledged by the ledger)"
            ))
        })
    }

    /// Queues the action's journal row on the position of exit `x` (in
    /// this step's commit).
    fn journal(&mut self, req: &ActionRequest, x: &ExitOrder, hold_until: Option<i64>, now: i64) {
        let key = position_key(x.id.slot, x.id.trade, x.id.cycle);
        let Some(pos) = self.book.positions.get(&key) else {
            tracing::error!(%key, "operator action on an untracked position; ledger not told");
            return;
        };
        let open_key = pos.open_key.clone();
        self.journal_on(req, open_key, hold_until, now.max(x.entry.time));
    }

    /// Queues the action's journal row on the position opened under
    /// `open_key`, keyed by the request id: a retry, or a recomputation
    /// after a crash, journals it once.
    pub(crate) fn journal_on(
        &mut self,
        req: &ActionRequest,
        open_key: String,
        hold_until: Option<i64>,
        at: i64,
    ) {
        let w = OperatorWrite {
            open_key,
            request_id: req.request_id.clone(),
            action: req.action.name().to_owned(),
            reason: req.reason.clone(),
            operator: req.operator.clone(),
            hold_until,
            at,
        };
        self.pending
            .push(LedgerWriteRequest::Operator(w).to_entry());
    }

    /// Queues the bot-journal row of an action no position carries, keyed
    /// by the request id (in this step's commit, like [`Self::journal_on`]).
    fn journal_bot(&mut self, req: &ActionRequest, action: BotActionKind, detail: String, at: i64) {
        let w = BotJournalWrite {
            request_id: req.request_id.clone(),
            action,
            detail,
            reason: req.reason.clone(),
            operator: req.operator.clone(),
            at,
        };
        self.pending
            .push(LedgerWriteRequest::BotJournal(w).to_entry());
    }

    /// The cleanup queue at `now` (SPEC §8).
    pub(crate) fn cleanup_queue(&self, now: i64) -> Vec<CleanupEntry> {
        cleanup_queue(self.queue_inputs(now))
    }

    /// What the cleanup queue and opportunity costs are computed from.
    pub(crate) fn queue_inputs(&self, now: i64) -> QueueInputs<'_> {
        QueueInputs {
            engine: &self.engine,
            engine_cfg: &self.cfg.engine,
            cfg: &self.cfg.reprice,
            sizer: &self.throughput,
            churn: &self.book.churn,
            regime: self.market.regime.view(now).label,
            total_capital: self.total_capital(),
            now,
        }
    }

    /// The bot's capital for opportunity costs: both trades of every slot
    /// at the configured order size, or what is tied up in open entries if
    /// that is more (a pair-minimum size has no fixed figure).
    pub(crate) fn total_capital(&self) -> rust_decimal::Decimal {
        let configured = match self.cfg.engine.order_size {
            crate::engine::OrderSize::Usd(u) => {
                u * rust_decimal::Decimal::from(self.cfg.engine.slots) * rust_decimal::Decimal::TWO
            }
            crate::engine::OrderSize::PairMinimum => rust_decimal::Decimal::ZERO,
        };
        let tied: rust_decimal::Decimal = self.engine.open_exits().map(|x| x.entry.cost).sum();
        configured.max(tied)
    }

    /// Closes at market so far, by operator and by policy.
    #[must_use]
    pub fn write_offs(&self) -> &crate::runtime::book::WriteOffStats {
        &self.book.write_offs
    }

    /// The throughput statistics.
    #[must_use]
    pub fn throughput(&self) -> &ThroughputSizer {
        &self.throughput
    }

    /// Records a completed sticky round trip in the throughput statistics,
    /// under the regime in force at its exit.
    pub(crate) fn record_cycle(&mut self, b: &crate::engine::CycleBooking) {
        use crate::healing::throughput::{CycleKind, CycleSample};
        let regime = self.market.regime.view(b.exit_time).label;
        self.throughput.record(
            CycleKind::Sticky {
                regime,
                trade: b.trade,
            },
            CycleSample {
                net: b.net,
                duration_sec: b.exit_time - b.entry_time,
            },
        );
        self.throughput_dirty = true;
    }

    /// Restores the throughput statistics, the operator's churner reserve
    /// and the regime override after a start.
    pub(crate) async fn restore_operator_state(&mut self) -> Result<(), RuntimeError> {
        if let Some(json) = self.store.get_meta(THROUGHPUT_META_KEY).await? {
            match serde_json::from_str(&json) {
                Ok(s) => self.throughput = s,
                Err(e) => {
                    tracing::warn!(error = %e, "stored throughput statistics unreadable; starting empty")
                }
            }
        }
        if let Some(r) = self.book.churner_reserve_usd {
            self.cfg.market.churner.reserve_usd = Some(r);
            tracing::info!(reserve_usd = %r, "operator churner reserve restored");
        }
        if let Some(o) = self.book.regime_override
            // An expired override is restored too: the detector's view
            // ignores it from its expiry on.
            && self.market.regime.set_override(o.regime, o.until, o.until - 1).is_ok()
        {
            tracing::info!(regime = %o.regime, until = o.until, "operator regime override restored");
        }
        Ok(())
    }
}
