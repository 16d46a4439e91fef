//! Self-healing in the runtime: runs the pure planner
//! ([`crate::healing::reprice::plan`]) on its cadence, feeds its decisions to
//! the engine as [`Event::RepriceExit`] (the engine cancels the old exit and
//! re-places the rest at the new price; [`super::placement`] carries that out
//! within the call budget), and turns each reprice that took effect into its
//! ledger write and subsidy-view debit. Every decision is one structured
//! log line that says why.

use crate::engine::{Event, PendingReprice, RepriceBooking, RepriceKind, SlotId};
use crate::exchange::Exchange;
use crate::healing::release::locked_pairs;
use crate::healing::reprice::{RepriceInputs, plan};
use crate::healing::{ExitRef, SkipReason, SubsidySource};
use crate::runtime::book::position_key;
use crate::runtime::ledger::LedgerApi;
use crate::runtime::r#loop::Runtime;
use crate::runtime::regime_store::Unsaved;
use crate::runtime::writes::RepriceWrite;

/// Seconds between two planning passes. Bands move over hours and the
/// subsidized cooldown is an hour, so ten minutes loses nothing, and it keeps
/// the backtest's quiet candles cheap.
pub const HEAL_EVERY_SEC: i64 = 600;

/// Private calls one reprice costs: cancel, its confirming query, the
/// placement.
const CALLS_PER_REPRICE: u32 = 3;

/// What the runtime knows of the market for healing: the bars and returns,
/// the regime detector over them, and the time spent in each regime. The
/// detector and its 5-minute returns are committed as store metadata in
/// bounded records ([`super::regime_store`]) and restored on start; the
/// 1-minute moves of the profit target, the chart bars and the regime
/// clock are kept in memory only and warm up again after a restart.
#[derive(Debug, Clone)]
pub(crate) struct MarketModel {
    pub(crate) history: crate::healing::MarketHistory,
    pub(crate) regime: crate::healing::RegimeDetector,
    /// Seconds spent under each label, sampled at the healing cadence.
    pub(crate) regime_seconds: std::collections::BTreeMap<crate::healing::Regime, i64>,
    /// 5-minute price bars of the last day, for the dashboard's chart.
    pub(crate) bars: crate::healing::price_bars::PriceBars,
    /// What of the detector the store does not hold yet.
    pub(crate) unsaved: Unsaved,
    /// `total` of the newest committed window checkpoint.
    pub(crate) checkpoint_total: Option<u64>,
}

impl MarketModel {
    pub(crate) fn new(config: crate::healing::HealingConfig) -> Self {
        Self {
            history: crate::healing::MarketHistory::new(&config),
            regime: crate::healing::RegimeDetector::new(config.regime),
            regime_seconds: Default::default(),
            bars: Default::default(),
            unsaved: Unsaved::Nothing,
            checkpoint_total: None,
        }
    }

    /// Feeds one market price; an out-of-order or bad price changes nothing.
    pub(crate) fn observe(&mut self, now: i64, price: rust_decimal::Decimal) {
        match self.history.observe(now, price) {
            Ok(_) => {
                let u = self.regime.update(&self.history);
                self.mark_unsaved(if u.returns > 0 {
                    Unsaved::Return
                } else {
                    Unsaved::Bar
                });
            }
            Err(e) => tracing::debug!(error = %e, "market observation refused"),
        }
    }
}

impl<E: Exchange, L: LedgerApi> Runtime<E, L> {
    /// Plans and starts this loop's reprices when the cadence says so.
    /// Returns whether the engine acted (something to place or cancel).
    pub(crate) fn heal_if_due(&mut self, now: i64, calls_left: u32) -> bool {
        let cfg = &self.cfg.reprice;
        if !(cfg.tighten || cfg.subsidized) || self.book.paused || self.halted.is_some() {
            return false;
        }
        if now < self.next_heal_at {
            return false;
        }
        self.next_heal_at = now + HEAL_EVERY_SEC;
        let view = self.market.regime.view(now);
        *self.market.regime_seconds.entry(view.label).or_default() += HEAL_EVERY_SEC;
        self.update_profit_target();
        self.update_entry_hold();
        let target_pct = self
            .engine
            .profit_target_pct
            .unwrap_or(self.cfg.engine.profit_pct);
        let market_age_sec = self
            .market_at_ms
            .map(|t| (now * 1000 - t).max(0).div_euclid(1000));
        let mut p = plan(RepriceInputs {
            engine: &self.engine,
            churn: &self.book.churn,
            engine_cfg: &self.cfg.engine,
            cfg: &self.cfg.reprice,
            market_age_sec,
            now,
            target_pct,
            subsidy: &self.book.subsidy.balance,
            subsidy_halted: &self.book.subsidy.halted,
            max_decisions: (calls_left / CALLS_PER_REPRICE) as usize,
        });
        self.book.heal_stats.count_plan(&p);
        self.pending_need = std::mem::take(&mut p.pending_need);
        for s in &p.skips {
            if matches!(
                s.reason,
                SkipReason::SubsidyHalted | SkipReason::MarketStale
            ) {
                tracing::warn!(order_id = %s.exit, reason = s.reason.as_str(), "reprice skipped");
            } else {
                tracing::debug!(order_id = %s.exit, reason = s.reason.as_str(), "reprice skipped");
            }
        }
        let mut acted = self.auto_write_off(now);
        acted |= self.release_locked_pairs(now);
        for d in p.decisions {
            tracing::info!(order_id = %d.exit, slot = d.slot, trade = d.trade.as_str(),
                band = ?d.band, kind = d.kind.as_str(), old_price = %d.old_price,
                new_price = %d.new_price, subsidy_consumed = %d.subsidy_consumed,
                needed = %d.needed, full = d.full,
                balance = %self.book.subsidy.balance(d.slot),
                "reprice decided: cancel the exit, re-place the rest at the new price");
            let subsidized = d.kind != RepriceKind::Tighten;
            acted |= match d.exit {
                ExitRef::Slot(order_id) => self.apply(&Event::RepriceExit {
                    order_id,
                    new_price: d.new_price,
                    kind: d.kind,
                    subsidized,
                    full: d.full,
                    subsidy_cap: None,
                }),
                ExitRef::Churner(order_id) => self.reprice_handed_over(
                    &order_id,
                    PendingReprice {
                        new_price: d.new_price,
                        kind: d.kind,
                        subsidized,
                        full: d.full,
                        subsidy_cap: None,
                        requested_at: now,
                    },
                ),
            };
        }
        acted
    }

    /// Hands a reprice of a handed-over churner exit to the churner: the
    /// churner loop cancels the exit and, once the cancel is confirmed,
    /// places the remainder at the new price and books the move
    /// ([`Self::on_churn_repriced`]). Returns whether it was accepted.
    pub(crate) fn reprice_handed_over(&mut self, order_id: &str, want: PendingReprice) -> bool {
        match crate::healing::churner::request_reprice(
            &mut self.book.churn,
            &self.cfg.engine.pair,
            order_id,
            want,
        ) {
            Ok(()) => {
                self.dirty = true;
                true
            }
            Err(e) => {
                tracing::warn!(%order_id, error = %e, "reprice of a handed-over exit not started");
                false
            }
        }
    }

    /// A reprice of a handed-over churner exit took effect: debit the
    /// slot's subsidy view now and hold `repriced` on the round trip (keyed
    /// by the replacement's client id) until the replacement's placement
    /// is resolved, as [`Self::on_repriced`] does for a slot's exit.
    pub(crate) fn on_churn_repriced(&mut self, r: crate::healing::churner::ChurnReprice) {
        tracing::info!(open_key = %r.open_key, slot = r.slot, kind = r.kind.as_str(),
            old_price = %r.old_price, new_price = %r.new_price, volume = %r.volume,
            subsidy_consumed = %r.subsidy_consumed, "reprice of a handed-over exit took effect");
        self.book.subsidy.debit(r.slot, r.subsidy_consumed);
        self.book.heal_stats.count_booking(r.kind, r.full);
        self.book.reprices_awaiting_exit.insert(
            r.new_order_id.clone(),
            RepriceWrite {
                open_key: r.open_key,
                slot: r.slot,
                new_order_id: r.new_order_id,
                old_price: r.old_price,
                new_price: r.new_price,
                volume: r.volume,
                kind: r.kind,
                subsidy_consumed: r.subsidy_consumed,
                at: r.at,
                new_txid: None,
            },
        );
        self.dirty = true;
    }

    /// Recomputes the volatility-adjusted profit target (SPEC §5) and hands
    /// it to the engine when it changed; new exits are placed with it.
    fn update_profit_target(&mut self) {
        let base = self.cfg.engine.profit_pct;
        match crate::healing::profit_target(
            base,
            self.cfg.reprice.round_trip_fee_pct,
            &self.market.history,
        ) {
            Ok(t) if Some(t.pct) != self.engine.profit_target_pct => {
                tracing::info!(target_pct = %t.pct, explain = ?t.explain,
                    "profit target in force changed");
                self.apply(&Event::ProfitTarget { pct: t.pct });
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "profit target not computed; base kept"),
        }
    }

    /// Measures how steadily the market walks and hands the engine the
    /// entry hold when it changed ([`crate::healing::trend`]); the engine
    /// cancels resting entries against the move on its next tick.
    fn update_entry_hold(&mut self) {
        let cfg = &self.cfg.market.trend;
        let reading = crate::healing::trend::measure(self.market.history.returns_5m(), cfg.window);
        let hold = crate::healing::trend::next_hold(self.engine.entry_hold, reading, cfg);
        if hold != self.engine.entry_hold {
            tracing::info!(
                hold = hold.as_str(),
                was = self.engine.entry_hold.as_str(),
                efficiency_ratio = reading.map(|r| r.er),
                log_move = reading.map(|r| r.log_move),
                "entry hold changed: entries against a steady move wait"
            );
            self.apply(&Event::EntryHold { hold });
        }
    }

    /// Feeds a market price to the chart's bars, and to the healing model
    /// only while healing is on (the sticky grid of stage A neither needs
    /// nor pays for it).
    pub(crate) fn observe_market(&mut self, now: i64, price: rust_decimal::Decimal) {
        self.market.bars.observe(now, price);
        if self.cfg.reprice.tighten
            || self.cfg.reprice.subsidized
            || self.cfg.market.churner.enabled
        {
            self.market.observe(now, price);
        }
    }

    /// Seconds spent under each regime label (healing cadence samples).
    #[must_use]
    pub fn regime_seconds(&self) -> &std::collections::BTreeMap<crate::healing::Regime, i64> {
        &self.market.regime_seconds
    }

    /// The regime detector's view at `now`.
    #[must_use]
    pub fn regime_view(&self, now: i64) -> crate::healing::RegimeView {
        self.market.regime.view(now)
    }

    /// A reprice took effect in the engine: debit the subsidy view now, and
    /// hold its ledger write (keyed by the replacement's local id, so a
    /// replay never debits twice) until the replacement's placement is
    /// resolved ([`Self::release_awaiting_exit`]), so the ledger names the
    /// exit that works the position.
    pub(crate) fn on_repriced(&mut self, b: &RepriceBooking) {
        let key = position_key(b.slot, b.trade, b.cycle);
        let Some(pos) = self.book.positions.get_mut(&key) else {
            tracing::error!(%key, "reprice of an untracked position; ledger not told");
            return;
        };
        pos.exit_target = b.new_price;
        let write = RepriceWrite::of(b, &pos.open_key);
        tracing::info!(open_key = %pos.open_key, slot = b.slot, kind = b.kind.as_str(),
            old_price = %b.old_price, new_price = %b.new_price, volume = %b.volume,
            subsidy_consumed = %b.subsidy_consumed, "reprice took effect");
        self.book
            .reprices_awaiting_exit
            .insert(b.new_order_id.to_string(), write);
        self.book.subsidy.debit(b.slot, b.subsidy_consumed);
        self.book.heal_stats.count_booking(b.kind, b.full);
    }

    /// Credits over-performance to the subsidy view as its write is queued.
    pub(crate) fn credit_subsidy(&mut self, slot: SlotId, amount: rust_decimal::Decimal) {
        self.book
            .subsidy
            .credit(slot, amount, SubsidySource::OverPerformance);
    }

    /// Takes each slot's balance from the ledger. Called only when nothing
    /// of this trader is unacknowledged, so the ledger's figure already
    /// includes every write of ours and anything higher is an outside
    /// (operator) credit. Skipped while subsidized repricing is off: the
    /// view then only counts.
    pub(crate) async fn sync_subsidy(&mut self) {
        if !self.cfg.reprice.subsidized || !self.book.reprices_awaiting_exit.is_empty() {
            return;
        }
        let slots: Vec<SlotId> = self.engine.slots.keys().copied().collect();
        for slot in slots {
            let req = healgrid_proto::ledger::v1::GetSubsidyBalanceRequest {
                bot_id: self.cfg.bot_id.clone(),
                slot_id: Some(slot),
            };
            let balance = match self.ledger.get_subsidy_balance(req).await {
                Ok(r) => r
                    .subsidy
                    .and_then(|s| s.balance.parse::<rust_decimal::Decimal>().ok()),
                Err(e) => {
                    tracing::warn!(slot, error = %e, "subsidy balance unavailable; view kept");
                    return;
                }
            };
            if let Some(b) = balance
                && b != self.book.subsidy.balance(slot)
            {
                tracing::info!(slot, ledger = %b, trader = %self.book.subsidy.balance(slot),
                    "subsidy view synced from the ledger");
                self.book.subsidy.sync(slot, b);
                self.dirty = true;
            }
        }
    }

    /// The ledger refused a reprice debit for good: stop subsidized
    /// repricing of that slot and raise the alarm.
    pub(crate) fn halt_subsidy(&mut self, slot: SlotId, reason: &str) {
        if self.book.subsidy.halted.insert(slot) {
            tracing::error!(slot, %reason,
                "ALERT: the ledger refused a subsidy debit; subsidized repricing of this slot \
                 stops until an operator checks the ledger and restarts or retries");
            self.dirty = true;
        }
    }

    /// `HEAL_RELEASE_LOCKED_PAIRS`: closes both legs of every locked pair
    /// at market (see [`crate::healing::release`]), journaled as policy.
    /// A leg whose market order fails gets its exit back, as any close at
    /// market; the other leg's close goes on. Returns whether any started.
    pub(crate) fn release_locked_pairs(&mut self, now: i64) -> bool {
        if !self.cfg.reprice.release_locked_pairs {
            return false;
        }
        let mut acted = false;
        for pair in locked_pairs(&self.engine, &self.cfg.engine.bands, now) {
            tracing::info!(slot = pair.slot, long_entry = %pair.long.entry.price,
                short_entry = %pair.short.entry.price, locked_gross = %pair.locked_gross,
                "locked pair: both exits stuck; closing both legs at market");
            let note = format!(
                "policy HEAL_RELEASE_LOCKED_PAIRS: slot {} long entered at {}, short at {}; \
                 locked {} before fees",
                pair.slot, pair.long.entry.price, pair.short.entry.price, pair.locked_gross
            );
            let long = self.policy_close(&pair.long, "policy-release", note.clone(), now);
            let short = self.policy_close(&pair.short, "policy-release", note, now);
            if long || short {
                self.book.write_offs.pairs_released += 1;
                acted = true;
            }
        }
        acted
    }
}
