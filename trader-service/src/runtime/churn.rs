//! The churner in the runtime (SPEC §6): builds the pure core's view of
//! the slots ([`crate::healing::churner`]), runs its plan every loop, and
//! carries out what its state asks for: polls churner orders into fill
//! and gone events, cancels entries whose cancel was decided, places
//! orders that want placing (write-ahead, so a crash or an ambiguous
//! answer never places twice), and turns its actions into ledger writes
//! through the outbox and the subsidy view, in the same commit as the
//! state. Each decision is one structured log line.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::crash_point::CrashPoint;
use crate::engine::{AgeBand, IdleReason, SlotId, TradeWork, classify_all};
use crate::exchange::{Exchange, ExchangeError, OrderInfo, OrderKind, OrderRequest};
use crate::healing::churner::{
    self, ChurnAction, ChurnEvent, ChurnInputs, ParentView, Routing, SlotView,
};
use crate::healing::operator::OperatorRefusal;
use crate::healing::reprice::{fillable_price, subsidy_needed};
use crate::healing::{Regime, RegimeView, SubsidySource};
use crate::runtime::book::{CallBudget, held_orders, position_key};
use crate::runtime::fills::{Executed, advance};
use crate::runtime::intents::{IntentDecision, PlacementIntent, decide, lookup_since};
use crate::runtime::ledger::LedgerApi;
use crate::runtime::r#loop::{Runtime, RuntimeError};
use crate::runtime::writes::{
    ChurnerProfitWrite, CloseWrite, HandedOverWrite, LedgerWriteRequest, OpenWrite, SlotModeKind,
};
use healgrid_proto::crash::reached_at;

/// Whether a regime view lets churners run: ranging from a ready detector
/// (or an operator's override); `unknown` never counts.
#[must_use]
pub fn ranging(view: &RegimeView) -> bool {
    view.label == Regime::Ranging && (view.ready || view.overridden.is_some())
}

impl<E: Exchange, L: LedgerApi> Runtime<E, L> {
    /// An operator's regime override (SPEC §12) until `until`: the
    /// churner treats a forced `ranging` like the detector's. Kept in the
    /// book, so it survives a restart. The one place an override is set.
    ///
    /// # Errors
    /// [`crate::healing::OverrideError`] when `until` is not after `now`.
    pub fn override_regime(
        &mut self,
        regime: Regime,
        until: i64,
        now: i64,
    ) -> Result<(), crate::healing::OverrideError> {
        self.market.regime.set_override(regime, until, now)?;
        self.book.regime_override = self.market.regime.active_override(now);
        self.dirty = true;
        tracing::info!(
            regime = regime.as_str(),
            until,
            "regime overridden by operator"
        );
        Ok(())
    }

    /// An operator's spawn or kill of a slot's churner (SPEC §6); carried
    /// out by the next loop.
    ///
    /// # Errors
    /// [`churner::ManualError`] for an unknown slot or a disabled churner.
    pub fn manual_churner(
        &mut self,
        slot: SlotId,
        cmd: churner::ManualCommand,
    ) -> Result<(), churner::ManualError> {
        churner::manual(
            &mut self.book.churn,
            &self.cfg.market.churner,
            self.cfg.engine.slots,
            slot,
            cmd,
        )?;
        tracing::info!(slot, ?cmd, "churner command from operator");
        self.dirty = true;
        Ok(())
    }

    /// An operator's spawn or kill as an action: the command's effect in
    /// words, or the refusal (unknown slot: not found; churner off or
    /// already so: failed precondition).
    pub(crate) fn operator_churner(
        &mut self,
        slot: SlotId,
        cmd: churner::ManualCommand,
    ) -> Result<String, OperatorRefusal> {
        self.manual_churner(slot, cmd).map_err(|e| match e {
            churner::ManualError::UnknownSlot(_) => OperatorRefusal::not_found(format!(
                "slot {slot} does not exist (this trader runs slots 0 to {})",
                self.cfg.engine.slots.saturating_sub(1)
            )),
            other => OperatorRefusal::precondition(other.to_string()),
        })?;
        Ok(match cmd {
            churner::ManualCommand::Spawn => format!(
                "churner of slot {slot} spawned: it runs from the next loop while the slot \
                 has a parent position, headroom and capital"
            ),
            churner::ManualCommand::Kill => format!(
                "churner of slot {slot} killed: a resting entry is cancelled, a filled entry \
                 keeps its exit"
            ),
        })
    }

    /// An operator's churner reserve: in force from the next loop and kept
    /// across restarts; refused by [`churner::check_reserve`].
    pub(crate) fn set_churner_reserve(
        &mut self,
        reserve_usd: Decimal,
    ) -> Result<String, OperatorRefusal> {
        churner::check_reserve(&self.book.churn, &self.cfg.market.churner, reserve_usd)
            .map_err(|e| OperatorRefusal::precondition(e.to_string()))?;
        let lent = self.book.churn.reserve.total();
        let was = self.cfg.market.churner.reserve_usd;
        self.cfg.market.churner.reserve_usd = Some(reserve_usd);
        self.book.churner_reserve_usd = Some(reserve_usd);
        self.dirty = true;
        tracing::info!(reserve_usd = %reserve_usd, was = ?was, lent = %lent,
            "churner reserve set by operator");
        Ok(format!(
            "churner reserve set to {reserve_usd} USD (was {}); {lent} USD lent now",
            was.map_or_else(|| "the default".to_owned(), |w| format!("{w} USD"))
        ))
    }

    /// Whether the churner has anything to run at all (enabled, or still
    /// holding orders from before it was switched off).
    fn churn_on(&self) -> bool {
        self.cfg.market.churner.enabled || self.book.churn.orders().next().is_some()
    }

    /// One loop of the churner at `market`: polls, lookups, plan, cancels,
    /// placements.
    ///
    /// # Errors
    /// [`RuntimeError`] only if the local store fails.
    pub(crate) async fn churn(
        &mut self,
        now_ms: i64,
        market: Decimal,
        budget: &mut CallBudget,
    ) -> Result<(), RuntimeError> {
        if !self.churn_on() {
            return Ok(());
        }
        let now = now_ms.div_euclid(1000);
        self.churn_poll(now_ms, market, budget).await;
        self.churn_resolve(now_ms, market, budget).await;
        let views = self.churn_views(now, market);
        let view = self.market.regime.view(now);
        let headroom = self.headroom();
        let inputs = ChurnInputs {
            cfg: &self.cfg.market.churner,
            pair: &self.cfg.engine.pair,
            now,
            market,
            ranging: ranging(&view),
            headroom,
            slots: &views,
        };
        let before = self.book.churn.clone();
        let actions = churner::plan(&mut self.book.churn, &inputs);
        if self.book.churn != before {
            self.dirty = true;
        }
        let hits = &self.book.churn.hits;
        if hits.cooling_until != before.hits.cooling_until
            && let Some(until) = hits.cooling_until
        {
            tracing::warn!(
                until,
                cooloffs_in_a_row = hits.cooloffs_in_a_row,
                window = self.cfg.market.churner.hit_gate.window,
                min_hit_pct = self.cfg.market.churner.hit_gate.min_hit_pct,
                "churner cooling off: too many recent round trips were handed over"
            );
        }
        self.churn_actions(actions, now);
        if self.halted.is_some() {
            return Ok(());
        }
        // Paused: no entries and no cancels, but the exit of filled churner
        // inventory is still placed (never left without its exit).
        let paused = self.book.paused;
        if !paused {
            self.churn_cancels(now_ms, market, budget).await;
        }
        self.churn_place(now_ms, market, budget, paused).await
    }

    /// Whether the churner would change anything at this price (the
    /// backtest's quiet-candle check; nothing is kept).
    pub(crate) fn churn_wants_step(&self, now: i64, market: Decimal) -> bool {
        if !self.cfg.market.churner.enabled || self.book.paused || self.halted.is_some() {
            return false;
        }
        let view = self.market.regime.view(now);
        if churner::dormant(&self.book.churn, now, ranging(&view)) {
            return false;
        }
        let views = self.churn_views(now, market);
        let inputs = ChurnInputs {
            cfg: &self.cfg.market.churner,
            pair: &self.cfg.engine.pair,
            now,
            market,
            ranging: ranging(&view),
            headroom: self.headroom(),
            slots: &views,
        };
        let mut probe = self.book.churn.clone();
        let actions = churner::plan(&mut probe, &inputs);
        !actions.is_empty()
            || probe
                .slots
                .iter()
                .any(|(k, s)| self.book.churn.slots.get(k).map(|b| &b.stage) != Some(&s.stage))
    }

    /// Open orders the account may still add: the exchange's limit less
    /// every order we hold.
    fn headroom(&self) -> u32 {
        let held = held_orders(&self.engine).len()
            + self.book.churn.orders().count()
            + self.book.legacy.len()
            + self.book.stray_exits.len();
        self.cfg
            .open_order_limit
            .saturating_sub(u32::try_from(held).unwrap_or(u32::MAX))
    }

    /// The slots as the churner sees them: each slot's worst open
    /// position (band, then age), the subsidy it still needs beyond the
    /// slot's balance, and the slot's idle capital.
    pub(crate) fn churn_views(&self, now: i64, market: Decimal) -> Vec<SlotView> {
        let bands = classify_all(&self.engine, now, &self.cfg.engine.bands);
        let exits: BTreeMap<_, _> = self.engine.open_exits().map(|x| (x.id, x)).collect();
        let fee_floor =
            (!self.cfg.reprice.allow_loss).then_some(self.cfg.reprice.round_trip_fee_pct);
        let mut worst: BTreeMap<SlotId, &crate::engine::PositionBand> = BTreeMap::new();
        for pb in &bands {
            let e = worst.entry(pb.slot).or_insert(pb);
            if (pb.age.band, pb.age.age_sec) > (e.age.band, e.age.age_sec) {
                *e = pb;
            }
        }
        let size = crate::engine::pricing::entry_volume(&self.cfg.engine, market)
            .map(|v| v * market)
            .unwrap_or_default();
        self.engine
            .slots
            .iter()
            .map(|(slot, st)| {
                let idle_trades = [&st.trade_a, &st.trade_b]
                    .iter()
                    .filter(|t| matches!(t.work, TradeWork::Idle(IdleReason::Cooldown { .. })))
                    .count();
                let mut view = SlotView {
                    slot: *slot,
                    parent: None,
                    idle_usd: size * Decimal::from(idle_trades),
                    still_needed: Decimal::ZERO,
                };
                if let Some(pb) = worst.get(slot)
                    && pb.age.band >= AgeBand::Fresh
                    && let Some(x) = exits.get(&pb.exit_order_id)
                    && let Some(pos) = self
                        .book
                        .positions
                        .get(&position_key(pb.slot, pb.trade, pb.cycle))
                {
                    let side = pb.trade.exit_side();
                    let fillable =
                        fillable_price(&self.cfg.engine, side, x.entry.price, market, fee_floor);
                    let needed = subsidy_needed(side, x.price, fillable, x.remaining());
                    view.still_needed =
                        (needed - self.book.subsidy.balance(*slot)).max(Decimal::ZERO);
                    view.parent = Some(ParentView {
                        parent: churner::ParentRef {
                            open_key: pos.open_key.clone(),
                            trade: pb.trade,
                            cycle: pb.cycle,
                        },
                        band: pb.age.band,
                        fully_repriced: x.heal.last_subsidy_reprice_at.is_some()
                            && needed <= Decimal::ZERO,
                    });
                }
                view
            })
            .collect()
    }

    /// Folds one exchange report into the churner and queues what follows.
    fn churn_event(&mut self, event: &ChurnEvent, market: Decimal, now: i64) {
        if let Some((order_id, txid)) = event.placement_answer() {
            self.release_awaiting_exit(order_id, txid);
        }
        let still_needed = match event {
            ChurnEvent::Fill { order_id, .. } => churner::slot_of(order_id)
                .and_then(|slot| {
                    self.churn_views(now, market)
                        .into_iter()
                        .find(|v| v.slot == slot)
                })
                .map_or(Decimal::ZERO, |v| v.still_needed),
            _ => Decimal::ZERO,
        };
        let actions = churner::on_event(
            &mut self.book.churn,
            &self.cfg.market.churner,
            &self.cfg.engine.pair,
            event,
            still_needed,
            market,
        );
        self.dirty = true;
        self.churn_actions(actions, now);
    }

    /// Turns churner actions into ledger writes (and subsidy credits).
    fn churn_actions(&mut self, actions: Vec<ChurnAction>, now: i64) {
        for a in actions {
            self.dirty = true;
            match a {
                ChurnAction::Open { slot, position } => {
                    tracing::info!(slot, open_key = %position.open_key, cycle = position.cycle,
                        entry_price = %position.entry_price, volume = %position.volume,
                        exit_price = %position.exit_price,
                        "churner entry filled: round trip opened, exit placed next");
                    self.pending.push(
                        LedgerWriteRequest::Open(OpenWrite {
                            open_key: position.open_key.clone(),
                            exit_order_id: None,
                            slot,
                            trade: position.trade,
                            cycle: position.cycle,
                            slot_mode: SlotModeKind::Churner,
                            entry_price: position.entry_price,
                            entry_cost: position.entry_cost,
                            entry_fee: position.entry_fee,
                            entry_volume: position.volume,
                            entry_time: position.entry_time,
                            exit_price: position.exit_price,
                            target_profit_pct: position.target_profit_pct,
                            exit_txid: None,
                            migration: false,
                        })
                        .to_entry(),
                    );
                }
                ChurnAction::Close {
                    slot,
                    position,
                    exit_price,
                    exit_cost,
                    exit_fee,
                    exit_time,
                    net,
                    routed,
                    written_off,
                    exit_txid,
                } => {
                    self.stats.net_pnl += net;
                    if net < Decimal::ZERO {
                        self.stats.realized_loss -= net;
                    }
                    tracing::info!(slot, open_key = %position.open_key, %exit_price, %net,
                        routed = ?routed, written_off, "churner round trip closed");
                    let (reason, note) =
                        self.round_trip_closed(&position.open_key, written_off, net);
                    self.pending.push(
                        LedgerWriteRequest::Close(CloseWrite {
                            open_key: position.open_key.clone(),
                            reason,
                            exit_price: Some(exit_price),
                            exit_cost: Some(exit_cost),
                            exit_fee: Some(exit_fee),
                            exit_time,
                            net_profit: Some(net),
                            note,
                            exit_txid,
                        })
                        .to_entry(),
                    );
                    if let Routing::Parent(parent) = routed {
                        self.book.subsidy.credit(slot, net, SubsidySource::Churner);
                        self.pending.push(
                            LedgerWriteRequest::ChurnerProfit(ChurnerProfitWrite {
                                open_key: parent.open_key,
                                churner_open_key: position.open_key,
                                at: exit_time,
                                net_profit: net,
                            })
                            .to_entry(),
                        );
                    }
                }
                ChurnAction::Repriced(r) => self.on_churn_repriced(r),
                ChurnAction::CloseFailed {
                    slot,
                    open_key,
                    order_id,
                    restored,
                    at,
                } => {
                    tracing::warn!(slot, %open_key, %order_id, %restored,
                        "churner round trip's market order failed: its exit is restored");
                    self.round_trip_close_failed(open_key, &order_id, at);
                }
                ChurnAction::HandOver {
                    slot,
                    position,
                    age_seconds,
                } => {
                    tracing::warn!(slot, open_key = %position.open_key, age_seconds,
                        "churner exit timed out: round trip handed over to the slot, its exit \
                         stays; the slot's churner pauses until it fills");
                    self.pending.push(
                        LedgerWriteRequest::HandedOver(HandedOverWrite {
                            open_key: position.open_key,
                            at: now,
                            age_seconds,
                        })
                        .to_entry(),
                    );
                }
            }
        }
    }

    /// Feeds a polled churner order: new executions, then gone.
    fn churn_absorb(&mut self, info: &OrderInfo, market: Decimal, now_ms: i64) {
        let Some(order) = self
            .book
            .churn
            .orders()
            .find(|o| o.txid.as_deref() == Some(info.txid.as_str()))
        else {
            return;
        };
        let id = order.id.clone();
        let entry = self.book.churn.slots.values().any(
            |s| matches!(&s.stage, churner::ChurnStage::Entry { order, .. } if order.id == id),
        );
        let mut seen = Executed {
            order_id: id.clone(),
            volume: order.current.volume,
            cost: order.current.cost,
            fee: order.current.fee,
        };
        let now = now_ms.div_euclid(1000);
        let at = info.closed_at.unwrap_or(now_ms).div_euclid(1000);
        if let Some(d) = advance(
            &mut seen,
            info.vol_exec,
            info.cost,
            info.fee,
            info.avg_price,
        ) {
            self.stats.fills += 1;
            self.stats.fees_paid += d.fee;
            tracing::info!(order_id = %id, txid = %info.txid, price = %d.price,
                volume = %d.volume, fee = %d.fee, "churner fill");
            self.churn_event(
                &ChurnEvent::Fill {
                    order_id: id.clone(),
                    price: d.price,
                    volume: d.volume,
                    cost: d.cost,
                    fee: d.fee,
                    at,
                },
                market,
                now,
            );
            if entry {
                reached_at(CrashPoint::ChurnerFilled);
            }
        }
        if !info.status.is_live() {
            self.book.known.insert(info.txid.clone(), now_ms);
            self.churn_event(&ChurnEvent::Gone { order_id: id, at }, market, now);
        }
    }

    async fn churn_poll(&mut self, now_ms: i64, market: Decimal, budget: &mut CallBudget) {
        let txids: Vec<String> = self
            .book
            .churn
            .orders()
            .filter_map(|o| o.txid.clone())
            .collect();
        for chunk in txids.chunks(crate::runtime::r#loop::QUERY_BATCH) {
            budget.force(1);
            match self.exchange.query_orders(chunk).await {
                Ok(infos) => {
                    for info in &infos {
                        self.churn_absorb(info, market, now_ms);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "churner poll failed; picked up next loop");
                    return;
                }
            }
        }
    }

    /// Looks up placements whose outcome is unknown (an ambiguous answer,
    /// or a crash between the write-ahead commit and the answer) by client
    /// id, under the same stale rule as the engine's orders.
    async fn churn_resolve(&mut self, now_ms: i64, market: Decimal, budget: &mut CallBudget) {
        let unresolved: Vec<String> = self
            .book
            .churn
            .orders()
            .filter(|o| o.sending && o.txid.is_none())
            .map(|o| o.id.clone())
            .collect();
        if unresolved.is_empty() || !budget.try_take(2) {
            return;
        }
        let since = unresolved
            .iter()
            .filter_map(|id| self.book.churn_intents.get(id))
            .map(|i| lookup_since(*i, self.cfg.placement_stale))
            .min()
            .unwrap_or(now_ms - self.cfg.placement_stale.window_ms);
        let mut seen: Vec<OrderInfo> = match self.exchange.open_orders().await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "churner lookup failed; tried next loop");
                return;
            }
        };
        match self.exchange.closed_orders(since).await {
            Ok(v) => seen.extend(v),
            Err(e) => {
                tracing::warn!(error = %e, "churner lookup failed; tried next loop");
                return;
            }
        }
        for id in unresolved {
            let found = seen
                .iter()
                .find(|o| o.cl_ord_id.as_deref() == Some(id.as_str()));
            let intent = self
                .book
                .churn_intents
                .get(&id)
                .copied()
                .unwrap_or_else(|| PlacementIntent::sent(now_ms));
            match decide(
                intent,
                found.map(|o| o.txid.as_str()),
                now_ms,
                self.cfg.placement_stale,
            ) {
                IntentDecision::Adopt(txid) => {
                    tracing::info!(order_id = %id, %txid, "churner placement found: adopted");
                    self.book.churn_intents.remove(&id);
                    self.book.known.insert(txid.clone(), now_ms);
                    let info = found.cloned();
                    self.churn_event(
                        &ChurnEvent::Placed { order_id: id, txid },
                        market,
                        now_ms.div_euclid(1000),
                    );
                    if let Some(info) = info {
                        self.churn_absorb(&info, market, now_ms);
                    }
                }
                IntentDecision::Wait(i) => {
                    self.book.churn_intents.insert(id, i);
                    self.dirty = true;
                }
                IntentDecision::PlaceAgain => {
                    tracing::info!(order_id = %id, "churner placement never arrived: placed again");
                    self.book.churn_intents.remove(&id);
                    if let Some(o) = self.churn_order_mut(&id) {
                        o.sending = false;
                    }
                    self.dirty = true;
                }
            }
        }
    }

    fn churn_order_mut(&mut self, id: &str) -> Option<&mut churner::ChurnOrder> {
        self.book
            .churn
            .slots
            .values_mut()
            .filter_map(|s| s.stage.order_mut())
            .find(|o| o.id == id)
    }

    async fn churn_cancels(&mut self, now_ms: i64, market: Decimal, budget: &mut CallBudget) {
        let cancels: Vec<(String, String)> = self
            .book
            .churn
            .slots
            .values()
            .filter(|s| s.stage.cancel_requested())
            .filter_map(|s| s.stage.order())
            .filter_map(|o| o.txid.clone().map(|t| (o.id.clone(), t)))
            .collect();
        for (id, txid) in cancels {
            if !budget.try_take(2) {
                return;
            }
            match self.exchange.cancel_order(&txid).await {
                Ok(()) | Err(ExchangeError::UnknownOrder { .. }) => {
                    self.stats.cancels += 1;
                    tracing::info!(order_id = %id, %txid,
                        "churner order cancelled (an entry, or a handed-over exit being repriced or \
                         closed at market)");
                    match self
                        .exchange
                        .query_orders(std::slice::from_ref(&txid))
                        .await
                    {
                        Ok(infos) => {
                            for info in infos.iter().filter(|i| i.txid == txid) {
                                self.churn_absorb(info, market, now_ms);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, %txid, "churner cancel confirm failed")
                        }
                    }
                }
                Err(e) => tracing::warn!(order_id = %id, %txid, error = %e,
                    "churner cancel failed; retried next loop"),
            }
        }
    }

    /// Places the churner orders that want placing, within the budget;
    /// with `exits_only` (paused) only the exits of filled inventory.
    async fn churn_place(
        &mut self,
        now_ms: i64,
        market: Decimal,
        budget: &mut CallBudget,
        exits_only: bool,
    ) -> Result<(), RuntimeError> {
        let now = now_ms.div_euclid(1000);
        // With whether each is a close at market's market order.
        let wanted: Vec<(churner::ChurnOrder, bool)> = self
            .book
            .churn
            .slots
            .values()
            .filter_map(|s| {
                let o = if exits_only {
                    s.stage.exit()
                } else {
                    s.stage.order()
                };
                o.map(|o| (o, s.stage.market_close()))
            })
            .filter(|(o, _)| o.wants_placement(now))
            .map(|(o, m)| (o.clone(), m))
            .collect();
        let chosen: Vec<(churner::ChurnOrder, bool)> =
            wanted.into_iter().take(budget.left() as usize).collect();
        if chosen.is_empty() {
            return Ok(());
        }
        // Write-ahead: committed as being sent before the exchange hears.
        for (o, _) in &chosen {
            if let Some(m) = self.churn_order_mut(&o.id) {
                m.sending = true;
            }
            self.book
                .churn_intents
                .insert(o.id.clone(), PlacementIntent::sent(now_ms));
        }
        self.dirty = true;
        self.commit(now_ms).await?;
        for (o, market_order) in chosen {
            if !budget.try_take(1) {
                break;
            }
            let exit = self
                .book
                .churn
                .slots
                .values()
                .any(|s| s.stage.exit().is_some_and(|x| x.id == o.id));
            if exit {
                reached_at(CrashPoint::ChurnerExitSending);
            }
            let req = OrderRequest {
                pair: self.cfg.engine.pair.symbol.clone(),
                side: o.side,
                kind: if market_order {
                    OrderKind::Market
                } else {
                    OrderKind::Limit {
                        price: o.price,
                        post_only: self.cfg.post_only,
                    }
                },
                volume: o.volume,
                userref: self.cfg.userref,
                client_order_id: o.id.clone(),
            };
            match self.exchange.add_order(&req).await {
                Ok(ack) => {
                    self.stats.placements += 1;
                    tracing::info!(order_id = %o.id, txid = %ack.txid, side = ?o.side,
                        price = %o.price, volume = %o.volume, market_order, "churner order placed");
                    self.book.churn_intents.remove(&o.id);
                    self.book.known.insert(ack.txid.clone(), now_ms);
                    self.churn_event(
                        &ChurnEvent::Placed {
                            order_id: o.id,
                            txid: ack.txid,
                        },
                        market,
                        now,
                    );
                }
                Err(
                    e @ (ExchangeError::Ambiguous { .. } | ExchangeError::DuplicateOrder { .. }),
                ) => {
                    tracing::warn!(order_id = %o.id, error = %e,
                        "churner placement outcome unknown: looked up before any new placement");
                    if matches!(e, ExchangeError::DuplicateOrder { .. })
                        && let Some(i) = self.book.churn_intents.get_mut(&o.id)
                    {
                        i.exists = true;
                    }
                }
                Err(
                    e @ (ExchangeError::InsufficientFunds { .. }
                    | ExchangeError::PostOnlyWouldCross { .. }
                    | ExchangeError::OrdersLimitExceeded { .. }
                    | ExchangeError::InvalidRequest { .. }),
                ) => {
                    tracing::warn!(order_id = %o.id, error = %e, "churner order refused");
                    self.book.churn_intents.remove(&o.id);
                    self.churn_event(
                        &ChurnEvent::PlaceFailed {
                            order_id: o.id,
                            reason: e.to_string(),
                            at: now,
                        },
                        market,
                        now,
                    );
                }
                Err(e) => {
                    tracing::warn!(order_id = %o.id, error = %e,
                        "churner placement failed transiently; retried next loop");
                    self.book.churn_intents.remove(&o.id);
                    if let Some(m) = self.churn_order_mut(&o.id) {
                        m.sending = false;
                    }
                    self.dirty = true;
                }
            }
        }
        Ok(())
    }
}
