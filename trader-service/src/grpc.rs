//! The trader's control API over gRPC: a thin adapter from
//! [`RuntimeHandle`] (status snapshots, operator commands) to the
//! `healgrid.trader.v1` wire types.
//!
//! It never touches the engine or the store: `GetStatus` reads the snapshot
//! the loop published after its last iteration, and `Pause`/`Resume` queue a
//! command the loop applies between iterations. A slow client can therefore
//! never stall trading. Conversions to wire enums and decimal strings live
//! here and only here; the one error mapping is [`control_status`].

use healgrid_proto::convert::{format_decimal, format_opt_decimal};
use healgrid_proto::trader::v1 as pb;
use healgrid_proto::trader::v1::trader_service_server::TraderService;
use prost_types::Timestamp;
use tonic::{Request, Response, Status};

use crate::engine::{AgeBand, OrderRole, Phase, TradeId};
use crate::operator_api;
use crate::pair::Side;
use crate::runtime::status::{
    ControlError, OrderStatusView, PositionStatusView, SlotStatusView, StatusSnapshot,
};
use crate::runtime::writes::SlotModeKind;
use crate::runtime::{ControlCommand, RuntimeHandle, RuntimeMode};

/// Longest operator reason accepted (it only goes to the log).
pub const MAX_REASON_LEN: usize = 500;

/// The `TraderService` implementation over a runtime handle.
#[derive(Debug, Clone)]
pub struct TraderGrpc {
    handle: RuntimeHandle,
}

impl TraderGrpc {
    /// Serves the runtime behind `handle`.
    #[must_use]
    pub fn new(handle: RuntimeHandle) -> Self {
        Self { handle }
    }

    async fn command(&self, cmd: ControlCommand, reason: &str) -> Result<pb::Mode, Status> {
        if reason.len() > MAX_REASON_LEN {
            return Err(Status::invalid_argument(format!(
                "reason is longer than {MAX_REASON_LEN} bytes"
            )));
        }
        tracing::info!(command = ?cmd, reason, "operator command received");
        self.handle.send(cmd).await.map_err(control_status)?;
        Ok(mode(&self.handle.status().mode).0)
    }
}

/// The one mapping from control errors to gRPC status codes: a stopped
/// runtime is `UNAVAILABLE` (the process is shutting down; retry elsewhere or
/// later).
#[must_use]
pub fn control_status(e: ControlError) -> Status {
    match e {
        ControlError::Stopped => Status::unavailable(e.to_string()),
    }
}

fn mode(m: &RuntimeMode) -> (pb::Mode, String) {
    match m {
        RuntimeMode::Running => (pb::Mode::Running, String::new()),
        RuntimeMode::Paused => (pb::Mode::Paused, String::new()),
        RuntimeMode::Halted { reason } => (pb::Mode::Halted, reason.clone()),
    }
}

fn phase(p: Phase) -> pb::Phase {
    match p {
        Phase::S0 => pb::Phase::S0,
        Phase::S1a => pb::Phase::S1a,
        Phase::S1b => pb::Phase::S1b,
        Phase::S2 => pb::Phase::S2,
    }
}

fn band(b: AgeBand) -> pb::AgeBand {
    match b {
        AgeBand::Fresh => pb::AgeBand::Fresh,
        AgeBand::Aging => pb::AgeBand::Aging,
        AgeBand::Stale => pb::AgeBand::Stale,
        AgeBand::Stuck => pb::AgeBand::Stuck,
        AgeBand::WriteOff => pb::AgeBand::WriteOff,
    }
}

fn side(s: Side) -> pb::Side {
    match s {
        Side::Buy => pb::Side::Buy,
        Side::Sell => pb::Side::Sell,
    }
}

fn role(r: OrderRole) -> pb::OrderRole {
    match r {
        OrderRole::Entry => pb::OrderRole::Entry,
        OrderRole::Exit => pb::OrderRole::Exit,
    }
}

/// The wire slot mode of an open position (the status' and the cleanup
/// queue's): a legacy import is a slot's own position there.
pub(crate) fn slot_mode(m: SlotModeKind) -> pb::PositionSlotMode {
    match m {
        SlotModeKind::Churner => pb::PositionSlotMode::Churner,
        SlotModeKind::Sticky | SlotModeKind::Legacy => pb::PositionSlotMode::Sticky,
    }
}

fn trade(t: TradeId) -> pb::Trade {
    match t {
        TradeId::A => pb::Trade::A,
        TradeId::B => pb::Trade::B,
    }
}

fn order(o: &OrderStatusView) -> pb::Order {
    pb::Order {
        order_id: o.order_id.clone(),
        role: role(o.role) as i32,
        side: side(o.side) as i32,
        price: format_decimal(o.price),
        volume: format_decimal(o.volume),
        txid: o.txid.clone().unwrap_or_default(),
    }
}

fn slot(s: &SlotStatusView) -> pb::Slot {
    pb::Slot {
        slot_id: s.slot_id,
        phase: phase(s.phase) as i32,
        halted_reason: s.halted.clone().unwrap_or_default(),
        orders: s.orders.iter().map(order).collect(),
        idle: s
            .idle
            .iter()
            .map(|(t, reason)| pb::TradeIdle {
                trade: trade(*t) as i32,
                reason: reason.clone(),
            })
            .collect(),
    }
}

fn position(p: &PositionStatusView) -> pb::Position {
    pb::Position {
        slot_id: p.slot_id,
        trade: trade(p.trade) as i32,
        cycle: p.cycle,
        exit_order_id: p.exit_order_id.clone(),
        position_id: p.position_id.clone().unwrap_or_default(),
        entry_price: format_decimal(p.entry_price),
        exit_price: format_decimal(p.exit_price),
        volume: format_decimal(p.volume),
        band: band(p.band) as i32,
        age_seconds: p.age_sec,
        distance_pct: format_decimal(p.distance_pct),
        effective_age_seconds: format_decimal(p.effective_age_sec),
        opportunity_cost: format_decimal(p.opportunity_cost),
        slot_mode: slot_mode(p.slot_mode) as i32,
    }
}

fn timestamp_ms(ms: i64) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        // rem_euclid(1000) is below 1000, so the product fits an i32.
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

/// The wire form of a status snapshot.
#[must_use]
pub fn status_response(s: &StatusSnapshot) -> pb::GetStatusResponse {
    let (m, reason) = mode(&s.mode);
    pb::GetStatusResponse {
        bot_id: s.bot_id.clone(),
        pair: s.pair.clone(),
        market_price: format_opt_decimal(s.market_price),
        market_price_age_seconds: s.market_price_age_sec,
        mode: m as i32,
        mode_reason: reason,
        slots: s.slots.iter().map(slot).collect(),
        positions: s.positions.iter().map(position).collect(),
        outbox: Some(pb::Outbox {
            depth: s.outbox.depth,
            parked: s.outbox.parked,
        }),
        last_loop_at: (s.last_loop_at_ms > 0).then(|| timestamp_ms(s.last_loop_at_ms)),
        loops: s.loops,
        budget: Some(pb::CallBudget {
            used: s.budget.used,
            limit: s.budget.limit,
            deferred: s.budget.deferred,
        }),
        parked_writes: s
            .parked_writes
            .iter()
            .map(|p| pb::ParkedWrite {
                seq: p.seq,
                key: p.key.clone(),
                kind: p.kind.clone(),
                reason: p.reason.clone(),
                created_at: Some(timestamp_ms(p.created_at_ms)),
            })
            .collect(),
        healing: Some(healing(&s.healing)),
    }
}

fn healing(h: &crate::runtime::status::HealingStatusView) -> pb::Healing {
    let r = &h.reprices;
    pb::Healing {
        stage: h.stage.clone(),
        regime: Some(pb::RegimeStatus {
            state: h.regime.state.clone(),
            confidence: h.regime.confidence,
            ready: h.regime.ready,
            override_until: h.regime.override_until.map(|t| timestamp_ms(t * 1000)),
        }),
        profit_target_pct: format_decimal(h.profit_target_pct),
        entry_hold: h.entry_hold.clone(),
        subsidy: h
            .subsidy
            .iter()
            .map(|s| pb::SlotSubsidy {
                slot_id: s.slot_id,
                balance: format_decimal(s.balance),
                pending_need: format_decimal(s.pending_need),
                halted: s.halted,
            })
            .collect(),
        reprices: Some(pb::RepriceCounters {
            checked: r.checked,
            tighten: r.tighten,
            subsidized_full: r.subsidized_full,
            subsidized_partial: r.subsidized_partial,
            loss_funded: r.loss_funded,
            skipped: r.skipped.clone().into_iter().collect(),
        }),
        earned_by_source: h
            .earned_by_source
            .iter()
            .map(|(k, v)| (k.to_lowercase(), format_decimal(*v)))
            .collect(),
        spent: format_decimal(h.spent),
        auto_write_offs: h.write_offs.auto,
        auto_write_off_loss_usd: format_decimal(h.write_offs.auto_loss_usd),
        operator_write_offs: h.write_offs.operator,
        operator_write_off_loss_usd: format_decimal(h.write_offs.operator_loss_usd),
        churner: Some(churner(&h.churner)),
        pending_need_total: format_decimal(h.pending_need_total),
        churner_net_24h_usd: format_decimal(h.churner_net_24h),
        eta_seconds: h.eta_sec,
    }
}

fn churner(c: &crate::runtime::status::ChurnerStatusView) -> pb::ChurnerStatus {
    pb::ChurnerStatus {
        enabled: c.enabled,
        active: c.active,
        cycles_today: c.stats.cycles_today,
        profit_today_usd: format_decimal(c.stats.net_today_usd),
        cycles: c.stats.cycles,
        losing_cycles: c.stats.losing_cycles,
        net_usd: format_decimal(c.stats.net_usd),
        handed_over: c.stats.handed_over,
        reserve_earmarked_usd: format_decimal(c.reserve_earmarked),
        reserve_available_usd: format_decimal(c.reserve_available),
        reserve_peak_usd: format_decimal(c.reserve_peak),
        slots: c
            .slots
            .iter()
            .map(|s| pb::ChurnerSlot {
                slot_id: s.slot_id,
                stage: s.stage.clone(),
                parent_open_key: s.parent_open_key.clone().unwrap_or_default(),
                cycle: s.cycle,
                side: s.side.clone().unwrap_or_default(),
                order_id: s.order_id.clone().unwrap_or_default(),
                txid: s.txid.clone().unwrap_or_default(),
                paused_reason: s.paused_reason.clone().unwrap_or_default(),
                last_error: s.last_error.clone().unwrap_or_default(),
                compounded_usd: format_decimal(s.compounded_usd),
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl TraderService for TraderGrpc {
    async fn get_status(
        &self,
        _request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::GetStatusResponse>, Status> {
        Ok(Response::new(status_response(&self.handle.status())))
    }

    async fn pause(
        &self,
        request: Request<pb::PauseRequest>,
    ) -> Result<Response<pb::PauseResponse>, Status> {
        let reason = request.into_inner().reason;
        let mode = self.command(ControlCommand::Pause, &reason).await?;
        Ok(Response::new(pb::PauseResponse { mode: mode as i32 }))
    }

    async fn resume(
        &self,
        request: Request<pb::ResumeRequest>,
    ) -> Result<Response<pb::ResumeResponse>, Status> {
        let reason = request.into_inner().reason;
        let mode = self.command(ControlCommand::Resume, &reason).await?;
        Ok(Response::new(pb::ResumeResponse { mode: mode as i32 }))
    }

    async fn retry_parked_writes(
        &self,
        request: Request<pb::RetryParkedWritesRequest>,
    ) -> Result<Response<pb::RetryParkedWritesResponse>, Status> {
        let reason = request.into_inner().reason;
        self.command(ControlCommand::RetryParked, &reason).await?;
        Ok(Response::new(pb::RetryParkedWritesResponse {
            parked: self.handle.status().outbox.parked,
        }))
    }

    async fn list_cleanup_queue(
        &self,
        _request: Request<pb::ListCleanupQueueRequest>,
    ) -> Result<Response<pb::ListCleanupQueueResponse>, Status> {
        Ok(Response::new(operator_api::list_cleanup_queue(
            &self.handle,
        )))
    }

    async fn reprice_to_breakeven(
        &self,
        request: Request<pb::RepriceToBreakevenRequest>,
    ) -> Result<Response<pb::OperatorActionResponse>, Status> {
        operator_api::reprice_to_breakeven(&self.handle, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn close_at_market(
        &self,
        request: Request<pb::CloseAtMarketRequest>,
    ) -> Result<Response<pb::OperatorActionResponse>, Status> {
        operator_api::close_at_market(&self.handle, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn keep_holding(
        &self,
        request: Request<pb::KeepHoldingRequest>,
    ) -> Result<Response<pb::OperatorActionResponse>, Status> {
        operator_api::keep_holding(&self.handle, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn release_hold(
        &self,
        request: Request<pb::ReleaseHoldRequest>,
    ) -> Result<Response<pb::OperatorActionResponse>, Status> {
        operator_api::release_hold(&self.handle, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn set_regime_override(
        &self,
        request: Request<pb::SetRegimeOverrideRequest>,
    ) -> Result<Response<pb::OperatorActionResponse>, Status> {
        operator_api::set_regime_override(&self.handle, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn spawn_churner(
        &self,
        request: Request<pb::SpawnChurnerRequest>,
    ) -> Result<Response<pb::OperatorActionResponse>, Status> {
        operator_api::spawn_churner(&self.handle, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn kill_churner(
        &self,
        request: Request<pb::KillChurnerRequest>,
    ) -> Result<Response<pb::OperatorActionResponse>, Status> {
        operator_api::kill_churner(&self.handle, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn set_churner_reserve(
        &self,
        request: Request<pb::SetChurnerReserveRequest>,
    ) -> Result<Response<pb::OperatorActionResponse>, Status> {
        operator_api::set_churner_reserve(&self.handle, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_candles(
        &self,
        request: Request<pb::GetCandlesRequest>,
    ) -> Result<Response<pb::GetCandlesResponse>, Status> {
        Ok(Response::new(operator_api::get_candles(
            &self.handle,
            request.get_ref(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    /// Proves: decimals travel as normalised strings, an absent price is the
    /// empty string, a halt carries its reason and no loop means no
    /// timestamp.
    #[test]
    fn snapshot_maps_to_the_wire() {
        let mut s = StatusSnapshot::starting("paper:XDGUSD:main", "XDGUSD");
        let r = status_response(&s);
        assert_eq!(r.market_price, "");
        assert!(r.last_loop_at.is_none());
        assert_eq!(r.mode, pb::Mode::Running as i32);
        s.market_price = Some(Decimal::new(93100, 6));
        s.mode = RuntimeMode::Halted {
            reason: "auth".into(),
        };
        s.last_loop_at_ms = 1_700_000_000_250;
        let r = status_response(&s);
        assert_eq!(r.market_price, "0.0931");
        assert_eq!(
            (r.mode, r.mode_reason.as_str()),
            (pb::Mode::Halted as i32, "auth")
        );
        let ts = r.last_loop_at.unwrap();
        assert_eq!((ts.seconds, ts.nanos), (1_700_000_000, 250_000_000));
    }

    /// Proves: a stopped runtime is UNAVAILABLE, so clients know to retry.
    #[test]
    fn stopped_runtime_is_unavailable() {
        assert_eq!(
            control_status(ControlError::Stopped).code(),
            tonic::Code::Unavailable
        );
    }
}
