//! Builds the [`StatusSnapshot`] from the runtime's state: slots, orders,
//! open positions with their SPEC §4 age facts (recomputed on every call),
//! outbox health and the last loop's budget use.

use crate::engine::{EngineConfig, IdleReason, Phase, SlotStatus, TradeId, TradeWork};
use crate::exchange::Exchange;
use crate::runtime::book::held_orders;
use crate::runtime::ledger::LedgerApi;
use crate::runtime::r#loop::{Runtime, RuntimeError};
use crate::runtime::status::{
    HealingStatusView, OrderStatusView, OutboxStatusView, ParkedWriteView, PositionStatusView,
    RegimeStatusView, SlotStatusView, SlotSubsidyView, StatusSnapshot,
};
use crate::runtime::writes::SlotModeKind;

impl<E: Exchange, L: LedgerApi> Runtime<E, L> {
    /// The runtime's status at `now_ms` (reads the outbox depth from the
    /// store).
    ///
    /// # Errors
    /// [`RuntimeError::Store`] if the outbox cannot be read.
    pub async fn status(&self, now_ms: i64) -> Result<StatusSnapshot, RuntimeError> {
        let now = now_ms.div_euclid(1000);
        let held = held_orders(&self.engine);
        let slots = self
            .engine
            .slots
            .values()
            .map(|s| SlotStatusView {
                slot_id: s.slot_id,
                phase: s.phase(),
                halted: match &s.status {
                    SlotStatus::Halted { violation, .. } => Some(format!("{violation:?}")),
                    SlotStatus::Active => None,
                },
                orders: held
                    .iter()
                    .filter(|h| h.id.slot == s.slot_id)
                    .map(|h| OrderStatusView {
                        order_id: h.id.to_string(),
                        role: h.role,
                        side: h.side,
                        price: h.price,
                        volume: h.volume,
                        txid: h.txid.clone(),
                    })
                    .collect(),
                idle: TradeId::ALL
                    .into_iter()
                    .filter_map(|t| match &s.trade(t).work {
                        TradeWork::Idle(reason) => {
                            Some((t, idle_reason(reason, &self.cfg.engine, now)))
                        }
                        _ => None,
                    })
                    .collect(),
            })
            .collect();
        let queue = self.queue_inputs(now);
        let open = crate::healing::operator::open_samples(&self.engine, queue.regime, now);
        // The cleanup queue's list of open positions: the engine's exits
        // and the churner round trips handed over to their slot.
        let positions = self
            .engine
            .market
            .map(|m| crate::healing::operator::open_positions(&queue, m))
            .unwrap_or_default()
            .into_iter()
            .map(|p| PositionStatusView {
                slot_id: p.slot,
                trade: p.trade,
                cycle: p.cycle,
                exit_order_id: p.exit_order_id,
                position_id: p.position_id.map(str::to_owned),
                slot_mode: SlotModeKind::of_open(p.churner),
                entry_price: p.entry_price,
                exit_price: p.exit_price,
                volume: p.volume,
                band: p.age.band,
                age_sec: p.age.age_sec,
                distance_pct: p.age.distance_pct.round_dp(4),
                effective_age_sec: p.age.effective_age_sec.round_dp(0),
                hold_until: p.heal.hold_until.filter(|u| now < *u),
                opportunity_cost: queue.opportunity_cost(
                    p.trade,
                    p.age.age_sec,
                    p.entry_cost,
                    &open,
                ),
            })
            .collect();
        let depth = self.outbox.depth().await?;
        let parked: Vec<ParkedWriteView> = self
            .outbox
            .parked()
            .await?
            .into_iter()
            .map(|e| ParkedWriteView {
                seq: e.seq.0,
                key: e.key.to_string(),
                kind: e.kind.as_str().to_owned(),
                reason: e.last_error.unwrap_or_default(),
                created_at_ms: e.created_at.0,
            })
            .collect();
        Ok(StatusSnapshot {
            bot_id: self.cfg.bot_id.clone(),
            pair: self.cfg.engine.pair.symbol.clone(),
            market_price: self.engine.market,
            market_price_age_sec: self
                .market_at_ms
                .map(|t| (now_ms - t).max(0).div_euclid(1000)),
            mode: self.mode(),
            slots,
            positions,
            outbox: OutboxStatusView {
                depth,
                parked: u64::try_from(parked.len()).unwrap_or(u64::MAX),
            },
            parked_writes: parked,
            healing: self.healing_view(now),
            last_loop_at_ms: self.last_loop_ms,
            loops: self.stats.loops,
            budget: self.last_budget,
            cleanup_queue: self.cleanup_queue(now),
            price_bars: self.market.bars.since(i64::MIN),
        })
    }

    /// Number of slots per phase (cheap, no I/O; for logs and reports).
    #[must_use]
    pub fn phases(&self) -> [usize; 4] {
        let mut out = [0; 4];
        for s in self.engine.slots.values() {
            let i = match s.phase() {
                Phase::S0 => 0,
                Phase::S1a => 1,
                Phase::S1b => 2,
                Phase::S2 => 3,
            };
            out[i] += 1;
        }
        out
    }
}

impl<E: Exchange, L: LedgerApi> Runtime<E, L> {
    /// Open positions the ledger holds for this bot (reports, checks).
    ///
    /// # Errors
    /// The ledger's status.
    pub async fn ledger_open_positions(&self) -> Result<usize, tonic::Status> {
        let r = self
            .ledger
            .list_open_positions(healgrid_proto::ledger::v1::ListOpenPositionsRequest {
                bot_id: self.cfg.bot_id.clone(),
                slot_id: None,
            })
            .await?;
        Ok(r.positions.len())
    }
}

impl<E: Exchange, L: LedgerApi> Runtime<E, L> {
    /// The self-healing section of the status.
    fn healing_view(&self, now: i64) -> HealingStatusView {
        let v = &self.book.subsidy;
        let slots: std::collections::BTreeSet<_> = self
            .engine
            .slots
            .keys()
            .chain(v.balance.keys())
            .copied()
            .collect();
        let pending_need_total: rust_decimal::Decimal = self.pending_need.values().sum();
        HealingStatusView {
            stage: format!("{:?}", self.cfg.stage),
            regime: {
                let r = self.regime_view(self.engine.now);
                RegimeStatusView {
                    state: r.label.as_str().to_owned(),
                    confidence: r.confidence,
                    ready: r.ready,
                    override_until: r.overridden,
                }
            },
            profit_target_pct: self
                .engine
                .profit_target_pct
                .unwrap_or(self.cfg.engine.profit_pct),
            entry_hold: self.engine.entry_hold.as_str().to_owned(),
            subsidy: slots
                .into_iter()
                .map(|slot_id| SlotSubsidyView {
                    slot_id,
                    balance: v.balance(slot_id),
                    pending_need: self.pending_need.get(&slot_id).copied().unwrap_or_default(),
                    halted: v.halted.contains(&slot_id),
                })
                .collect(),
            reprices: self.book.heal_stats.clone(),
            earned_by_source: v
                .earned
                .iter()
                .map(|(k, amount)| (format!("{k:?}"), *amount))
                .collect(),
            spent: v.spent,
            write_offs: self.book.write_offs.clone(),
            churner: self.churner_view(),
            pending_need_total,
            churner_net_24h: self.book.churn.stats.net_in_window(now),
            eta_sec: self.book.churn.stats.eta_sec(pending_need_total, now),
        }
    }

    /// The churner's part of the healing section.
    fn churner_view(&self) -> crate::runtime::status::ChurnerStatusView {
        use crate::runtime::status::{ChurnerSlotView, ChurnerStatusView};
        let c = &self.book.churn;
        let earmarked = c.reserve.total();
        ChurnerStatusView {
            enabled: self.cfg.market.churner.enabled,
            active: u32::try_from(c.active()).unwrap_or(u32::MAX),
            stats: c.stats.clone(),
            reserve_earmarked: earmarked,
            reserve_available: (self.cfg.market.churner.reserve_limit(
                &self.cfg.engine.pair,
                self.engine.market.unwrap_or_default(),
            ) - earmarked)
                .max(rust_decimal::Decimal::ZERO),
            reserve_peak: c.reserve.peak,
            slots: c
                .slots
                .iter()
                .map(|(slot, s)| {
                    let o = s.stage.order();
                    ChurnerSlotView {
                        slot_id: *slot,
                        stage: s.stage.as_str().to_owned(),
                        parent_open_key: s.stage.parent().map(|p| p.open_key.clone()),
                        cycle: s.cycle,
                        side: o.map(|o| format!("{:?}", o.side).to_lowercase()),
                        order_id: o.map(|o| o.id.clone()),
                        txid: o.and_then(|o| o.txid.clone()),
                        paused_reason: s.paused.map(|p| p.as_str().to_owned()),
                        last_error: s.last_error.clone(),
                        compounded_usd: s.compounded_usd,
                    }
                })
                .collect(),
        }
    }
}

/// An idle reason in words an operator can act on.
fn idle_reason(reason: &IdleReason, cfg: &EngineConfig, now: i64) -> String {
    match reason {
        IdleReason::Bootstrap => "waiting for the first market price".into(),
        IdleReason::BelowMinimum => format!(
            "order size {} misses the pair minimum ({} base, {} quote) at this price; \
             raise ORDER_SIZE_USD or leave it unset",
            cfg.order_size, cfg.pair.ordermin, cfg.pair.costmin
        ),
        IdleReason::Cooldown { until } => {
            format!(
                "re-entry cooldown after a loss, {}s left",
                (until - now).max(0)
            )
        }
        IdleReason::PlaceFailed { reason, retry_at } => format!(
            "the exchange refused the entry ({reason:?}); retry in {}s",
            (retry_at - now).max(0)
        ),
        IdleReason::TrendHold => {
            "held: the market moves steadily against this entry (HEAL_TREND_HOLD_ER)".into()
        }
    }
}
