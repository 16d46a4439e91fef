//! The operator RPCs of `healgrid.trader.v1` (SPEC §8): request validation,
//! the hand-over to the loop through [`RuntimeHandle::request`], and the
//! wire form of answers. [`crate::grpc`] calls one function per RPC.
//!
//! Validation happens here, before the loop sees anything: a malformed
//! request is `INVALID_ARGUMENT` and changes nothing. The one mapping from
//! an action's error to a gRPC status is [`action_status`].

use healgrid_proto::convert::format_decimal;
use healgrid_proto::trader::v1 as pb;
use prost_types::Timestamp;
use tonic::Status;

use crate::grpc::{MAX_REASON_LEN, slot_mode};
use crate::healing::Regime;
use crate::healing::operator::{RefusalKind, hold_window};
use crate::runtime::RuntimeHandle;
use crate::runtime::control::{
    ActionError, ActionOutcome, ActionRequest, MAX_CHURNER_RESERVE_USD, MAX_REQUEST_ID_LEN,
    OperatorAction,
};
use crate::runtime::writes::SlotModeKind;
use rust_decimal::Decimal;

/// Shortest regime override, seconds.
pub const OVERRIDE_MIN_SEC: i64 = 60;
/// Longest regime override, seconds (7 days).
pub const OVERRIDE_MAX_SEC: i64 = 7 * 86_400;

/// The one mapping from an action's error to a gRPC status.
#[must_use]
pub fn action_status(e: ActionError) -> Status {
    match e {
        ActionError::Refused(r) => match r.kind {
            RefusalKind::InvalidArgument => Status::invalid_argument(r.message),
            RefusalKind::NotFound => Status::not_found(r.message),
            RefusalKind::FailedPrecondition => Status::failed_precondition(r.message),
        },
        ActionError::Store(m) => Status::unavailable(m),
    }
}

fn position_id(raw: &str) -> Result<String, Status> {
    let t = raw.trim();
    match t.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n.to_string()),
        _ => Err(Status::invalid_argument(format!(
            "position_id {raw:?} is not a ledger position id (a positive integer)"
        ))),
    }
}

fn request_id(raw: &str) -> Result<String, Status> {
    if raw.is_empty() || raw.len() > MAX_REQUEST_ID_LEN || raw.chars().any(char::is_control) {
        return Err(Status::invalid_argument(format!(
            "request_id must be 1 to {MAX_REQUEST_ID_LEN} printable characters \
             (it makes a retry safe)"
        )));
    }
    Ok(raw.to_owned())
}

fn reason(raw: &str) -> Result<String, Status> {
    if raw.len() > MAX_REASON_LEN {
        return Err(Status::invalid_argument(format!(
            "reason is longer than {MAX_REASON_LEN} bytes"
        )));
    }
    Ok(raw.to_owned())
}

fn operator(raw: &str) -> Result<String, Status> {
    if raw.len() > 100 {
        return Err(Status::invalid_argument(
            "operator is longer than 100 bytes",
        ));
    }
    Ok(if raw.trim().is_empty() {
        "operator".to_owned()
    } else {
        raw.trim().to_owned()
    })
}

async fn run(
    handle: &RuntimeHandle,
    req: ActionRequest,
) -> Result<pb::OperatorActionResponse, Status> {
    tracing::info!(request_id = %req.request_id, action = req.action.name(),
        reason = %req.reason, operator = %req.operator, "operator action received");
    let reply = handle
        .request(req)
        .await
        .map_err(crate::grpc::control_status)?;
    reply.map(outcome).map_err(action_status)
}

fn outcome(o: ActionOutcome) -> pb::OperatorActionResponse {
    pb::OperatorActionResponse {
        action: o.action,
        position_id: o.position_id.unwrap_or_default(),
        message: o.message,
        at: Some(Timestamp {
            seconds: o.at,
            nanos: 0,
        }),
        replayed: o.replayed,
    }
}

/// `ListCleanupQueue`: from the snapshot the loop published last.
#[must_use]
pub fn list_cleanup_queue(handle: &RuntimeHandle) -> pb::ListCleanupQueueResponse {
    let s = handle.status();
    pb::ListCleanupQueueResponse {
        positions: s
            .cleanup_queue
            .iter()
            .map(|e| pb::CleanupQueueEntry {
                position_id: e.position_id.clone(),
                slot_id: e.slot_id,
                trade: e.trade.as_str().to_owned(),
                entry_price: format_decimal(e.entry_price),
                exit_price: format_decimal(e.exit_price),
                volume: format_decimal(e.volume),
                age_seconds: e.age_sec,
                distance_pct: format_decimal(e.distance_pct),
                effective_age_seconds: format_decimal(e.effective_age_sec),
                subsidy_needed: format_decimal(e.subsidy_needed),
                opportunity_cost: format_decimal(e.opportunity_cost),
                actions: e.actions.clone(),
                slot_mode: slot_mode(SlotModeKind::of_open(e.churner)) as i32,
            })
            .collect(),
    }
}

/// `RepriceToBreakeven`.
///
/// # Errors
/// The request's or the action's refusal as a gRPC status.
pub async fn reprice_to_breakeven(
    handle: &RuntimeHandle,
    r: pb::RepriceToBreakevenRequest,
) -> Result<pb::OperatorActionResponse, Status> {
    let action = OperatorAction::RepriceToBreakeven {
        position_id: position_id(&r.position_id)?,
    };
    run(
        handle,
        checked(&r.request_id, action, &r.reason, &r.operator)?,
    )
    .await
}

/// `CloseAtMarket`.
///
/// # Errors
/// The request's or the action's refusal as a gRPC status.
pub async fn close_at_market(
    handle: &RuntimeHandle,
    r: pb::CloseAtMarketRequest,
) -> Result<pb::OperatorActionResponse, Status> {
    let action = OperatorAction::CloseAtMarket {
        position_id: position_id(&r.position_id)?,
    };
    run(
        handle,
        checked(&r.request_id, action, &r.reason, &r.operator)?,
    )
    .await
}

/// `KeepHolding`.
///
/// # Errors
/// The request's or the action's refusal as a gRPC status.
pub async fn keep_holding(
    handle: &RuntimeHandle,
    r: pb::KeepHoldingRequest,
) -> Result<pb::OperatorActionResponse, Status> {
    let hold_sec = hold_window(r.hold_seconds).map_err(|e| Status::invalid_argument(e.message))?;
    let action = OperatorAction::KeepHolding {
        position_id: position_id(&r.position_id)?,
        hold_sec,
    };
    run(
        handle,
        checked(&r.request_id, action, &r.reason, &r.operator)?,
    )
    .await
}

/// `ReleaseHold`.
///
/// # Errors
/// The request's or the action's refusal as a gRPC status.
pub async fn release_hold(
    handle: &RuntimeHandle,
    r: pb::ReleaseHoldRequest,
) -> Result<pb::OperatorActionResponse, Status> {
    let action = OperatorAction::ReleaseHold {
        position_id: position_id(&r.position_id)?,
    };
    run(
        handle,
        checked(&r.request_id, action, &r.reason, &r.operator)?,
    )
    .await
}

/// `SetRegimeOverride` (`auto` clears it).
///
/// # Errors
/// The request's or the action's refusal as a gRPC status.
pub async fn set_regime_override(
    handle: &RuntimeHandle,
    r: pb::SetRegimeOverrideRequest,
) -> Result<pb::OperatorActionResponse, Status> {
    let regime = if r.regime.trim().eq_ignore_ascii_case("auto") {
        None
    } else {
        match r.regime.parse::<Regime>() {
            Ok(Regime::Unknown) | Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "regime {:?} must be ranging, bullish, bearish or auto",
                    r.regime
                )));
            }
            Ok(g) => Some(g),
        }
    };
    if regime.is_some() && !(OVERRIDE_MIN_SEC..=OVERRIDE_MAX_SEC).contains(&r.ttl_seconds) {
        return Err(Status::invalid_argument(format!(
            "ttl_seconds {} is out of range: {OVERRIDE_MIN_SEC} to {OVERRIDE_MAX_SEC} (7 days)",
            r.ttl_seconds
        )));
    }
    let action = OperatorAction::SetRegimeOverride {
        regime,
        ttl_sec: if regime.is_some() { r.ttl_seconds } else { 0 },
    };
    run(
        handle,
        checked(&r.request_id, action, &r.reason, &r.operator)?,
    )
    .await
}

/// The request fields every action carries, checked.
fn checked(
    request_id_raw: &str,
    action: OperatorAction,
    reason_raw: &str,
    operator_raw: &str,
) -> Result<ActionRequest, Status> {
    Ok(ActionRequest {
        request_id: request_id(request_id_raw)?,
        action,
        reason: reason(reason_raw)?,
        operator: operator(operator_raw)?,
    })
}

/// `SpawnChurner`.
///
/// # Errors
/// The request's or the action's refusal as a gRPC status.
pub async fn spawn_churner(
    handle: &RuntimeHandle,
    r: pb::SpawnChurnerRequest,
) -> Result<pb::OperatorActionResponse, Status> {
    let action = OperatorAction::SpawnChurner { slot: r.slot_id };
    run(
        handle,
        checked(&r.request_id, action, &r.reason, &r.operator)?,
    )
    .await
}

/// `KillChurner`.
///
/// # Errors
/// The request's or the action's refusal as a gRPC status.
pub async fn kill_churner(
    handle: &RuntimeHandle,
    r: pb::KillChurnerRequest,
) -> Result<pb::OperatorActionResponse, Status> {
    let action = OperatorAction::KillChurner { slot: r.slot_id };
    run(
        handle,
        checked(&r.request_id, action, &r.reason, &r.operator)?,
    )
    .await
}

/// A reserve as the operator typed it: a plain decimal from 0 to
/// [`MAX_CHURNER_RESERVE_USD`].
fn reserve_usd(raw: &str) -> Result<Decimal, Status> {
    let t = raw.trim();
    match t.parse::<Decimal>() {
        Ok(d) if d >= Decimal::ZERO && d <= Decimal::from(MAX_CHURNER_RESERVE_USD) => {
            Ok(d.normalize())
        }
        Ok(d) => Err(Status::invalid_argument(format!(
            "reserve_usd {d} is out of range: 0 to {MAX_CHURNER_RESERVE_USD}"
        ))),
        Err(_) => Err(Status::invalid_argument(format!(
            "reserve_usd {raw:?} is not a decimal number of USD (e.g. \"25.50\")"
        ))),
    }
}

/// `SetChurnerReserve`.
///
/// # Errors
/// The request's or the action's refusal as a gRPC status.
pub async fn set_churner_reserve(
    handle: &RuntimeHandle,
    r: pb::SetChurnerReserveRequest,
) -> Result<pb::OperatorActionResponse, Status> {
    let action = OperatorAction::SetChurnerReserve {
        reserve_usd: reserve_usd(&r.reserve_usd)?,
    };
    run(
        handle,
        checked(&r.request_id, action, &r.reason, &r.operator)?,
    )
    .await
}

/// `GetCandles`: the price bars of the snapshot the loop published last.
#[must_use]
pub fn get_candles(handle: &RuntimeHandle, r: &pb::GetCandlesRequest) -> pb::GetCandlesResponse {
    let s = handle.status();
    pb::GetCandlesResponse {
        bar_seconds: crate::healing::candles::REGIME_BAR_SEC,
        bars: s
            .price_bars
            .iter()
            .filter(|b| b.start >= r.since_unix)
            .map(|b| pb::PriceBar {
                start_unix: b.start,
                open: format_decimal(b.open),
                high: format_decimal(b.high),
                low: format_decimal(b.low),
                close: format_decimal(b.close),
                samples: b.samples,
            })
            .collect(),
    }
}
