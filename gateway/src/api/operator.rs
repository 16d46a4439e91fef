//! The trader's operator actions (SPEC §8): on a position (breakeven,
//! close at market, keep holding, release hold), on a slot's churner
//! (spawn, kill), the churner reserve and the regime override. Each goes
//! through [`once`] (bearer token, `Idempotency-Key`, replay of the first
//! answer) and passes the key to the trader as the RPC's `request_id`, so a
//! retry after a gateway restart is still answered from the trader's
//! stored first answer and nothing is done twice. Refusals come back as the
//! trader's gRPC status, mapped once in [`crate::error`].

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use healgrid_proto::trader::v1 as pb;
use serde::Deserialize;
use utoipa::ToSchema;

use super::actions::{checked_reason, fingerprint, once, parse_body};
use super::{Shared, parse_id, parse_slot};
use crate::error::{ApiError, Backend, ErrorBody};
use crate::view::operator::{ActionAnswer, action_answer};

/// Who the trader journals as the actor of actions sent from here.
pub const OPERATOR: &str = "gateway";

/// Body of the actions that need only a reason.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// Why (required; journaled in the ledger; at most 500 bytes).
    pub reason: Option<String>,
}

/// Body of `keep-holding`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldBody {
    /// Why (required; journaled).
    pub reason: Option<String>,
    /// Hold window, seconds: 60 .. 2592000 (30 days); absent or 0 = 96 h.
    pub hold_seconds: Option<i64>,
}

/// Body of `churner-reserve`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveBody {
    /// Why (required).
    pub reason: Option<String>,
    /// The reserve in force from now on, USD, a decimal string
    /// (`"25.50"`, 0 .. 1000000).
    pub reserve_usd: Option<String>,
}

/// Body of `regime-override`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegimeBody {
    /// Why (required).
    pub reason: Option<String>,
    /// `ranging`, `bullish`, `bearish`, or `auto` to clear the override.
    pub regime: Option<String>,
    /// Lifetime of the override, seconds: 60 .. 604800 (ignored for auto).
    pub ttl_seconds: Option<i64>,
}

/// A reason the operator must give: present, not blank, not too long.
fn required_reason(r: Option<String>) -> Result<String, ApiError> {
    match r {
        Some(r) if !r.trim().is_empty() => checked_reason(r),
        _ => Err(ApiError::Unprocessable(
            "reason is required: say why (it is journaled with the action)".into(),
        )),
    }
}

/// A field the body must carry.
fn required<T>(v: Option<T>, what: &str) -> Result<T, ApiError> {
    v.ok_or_else(|| ApiError::Unprocessable(format!("{what} is required")))
}

/// Runs one operator RPC and shapes its answer.
async fn trader_answer<F>(
    state: &Shared,
    rpc: &'static str,
    fut: F,
) -> Result<serde_json::Value, ApiError>
where
    F: Future<Output = Result<tonic::Response<pb::OperatorActionResponse>, tonic::Status>>,
{
    let r = state.backends.call(Backend::Trader, rpc, fut).await?;
    let answer: ActionAnswer = action_answer(&r);
    tracing::info!(rpc, action = %answer.action, position_id = ?answer.position_id,
        replayed = answer.replayed, "operator action accepted by the trader");
    serde_json::to_value(answer).map_err(|e| ApiError::BadAnswer {
        backend: Backend::Trader,
        rpc,
        message: e.to_string(),
    })
}

macro_rules! operator_action {
    // An action on a path id (position or slot).
    ($(#[doc = $doc:literal])* $name:ident, $path:literal, $param:literal, $what:literal,
     $parse:path, $body:ty, $run:path) => {
        $(#[doc = $doc])*
        #[utoipa::path(
            post, path = $path, tag = "actions",
            security(("bearer" = [])),
            params(
                ($param = String, Path, description = $what),
                ("Idempotency-Key" = String, Header, description = "Unique per intended action; the trader's request_id, so a retry returns the first answer"),
            ),
            request_body(content = $body, content_type = "application/json"),
            responses(
                (status = 200, description = "Accepted (or the first answer, replayed)", body = ActionAnswer),
                (status = 400, description = "Missing Idempotency-Key, bad id, bad JSON or a value the trader refuses", body = ErrorBody),
                (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
                (status = 403, description = "Actions disabled on this gateway", body = ErrorBody),
                (status = 404, description = "No such open position or slot", body = ErrorBody),
                (status = 409, description = "Refused in this state, or Idempotency-Key reused for another request", body = ErrorBody),
                (status = 422, description = "Body of the wrong shape or without a reason", body = ErrorBody),
                (status = 502, description = "Trader answered something unexpected", body = ErrorBody),
                (status = 503, description = "Trader unreachable", body = ErrorBody),
                (status = 504, description = "Trader did not answer in time", body = ErrorBody),
            )
        )]
        pub async fn $name(
            State(state): State<Shared>,
            headers: HeaderMap,
            uri: Uri,
            id: Result<Path<String>, PathRejection>,
            body: Bytes,
        ) -> Result<Response, ApiError> {
            let fp = fingerprint(uri.path(), &body);
            once(&state, &headers, fp, |key| async {
                let id = $parse($what, id)?;
                $run(&state, key, id, &body).await
            })
            .await
        }
    };
    // An action without a path id.
    ($(#[doc = $doc:literal])* $name:ident, $path:literal, $body:ty, $run:path) => {
        $(#[doc = $doc])*
        #[utoipa::path(
            post, path = $path, tag = "actions",
            security(("bearer" = [])),
            params(("Idempotency-Key" = String, Header, description = "Unique per intended action; the trader's request_id, so a retry returns the first answer")),
            request_body(content = $body, content_type = "application/json"),
            responses(
                (status = 200, description = "Accepted (or the first answer, replayed)", body = ActionAnswer),
                (status = 400, description = "Missing Idempotency-Key, bad JSON or a value the trader refuses", body = ErrorBody),
                (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
                (status = 403, description = "Actions disabled on this gateway", body = ErrorBody),
                (status = 409, description = "Refused in this state, or Idempotency-Key reused for another request", body = ErrorBody),
                (status = 422, description = "Body of the wrong shape or without a required field", body = ErrorBody),
                (status = 502, description = "Trader answered something unexpected", body = ErrorBody),
                (status = 503, description = "Trader unreachable", body = ErrorBody),
                (status = 504, description = "Trader did not answer in time", body = ErrorBody),
            )
        )]
        pub async fn $name(
            State(state): State<Shared>,
            headers: HeaderMap,
            uri: Uri,
            body: Bytes,
        ) -> Result<Response, ApiError> {
            let fp = fingerprint(uri.path(), &body);
            once(&state, &headers, fp, |key| async { $run(&state, key, &body).await }).await
        }
    };
}

async fn run_breakeven(
    s: &Shared,
    request_id: String,
    id: u64,
    body: &Bytes,
) -> Result<serde_json::Value, ApiError> {
    let b: ActionBody = parse_body(body)?;
    let req = s.backends.request(pb::RepriceToBreakevenRequest {
        position_id: id.to_string(),
        request_id,
        reason: required_reason(b.reason)?,
        operator: OPERATOR.into(),
    });
    let mut trader = s.backends.trader();
    let fut = trader.reprice_to_breakeven(req);
    trader_answer(s, "RepriceToBreakeven", fut).await
}

async fn run_close(
    s: &Shared,
    request_id: String,
    id: u64,
    body: &Bytes,
) -> Result<serde_json::Value, ApiError> {
    let b: ActionBody = parse_body(body)?;
    let req = s.backends.request(pb::CloseAtMarketRequest {
        position_id: id.to_string(),
        request_id,
        reason: required_reason(b.reason)?,
        operator: OPERATOR.into(),
    });
    let mut trader = s.backends.trader();
    let fut = trader.close_at_market(req);
    trader_answer(s, "CloseAtMarket", fut).await
}

async fn run_hold(
    s: &Shared,
    request_id: String,
    id: u64,
    body: &Bytes,
) -> Result<serde_json::Value, ApiError> {
    let b: HoldBody = parse_body(body)?;
    let req = s.backends.request(pb::KeepHoldingRequest {
        position_id: id.to_string(),
        request_id,
        hold_seconds: b.hold_seconds.unwrap_or(0),
        reason: required_reason(b.reason)?,
        operator: OPERATOR.into(),
    });
    let mut trader = s.backends.trader();
    let fut = trader.keep_holding(req);
    trader_answer(s, "KeepHolding", fut).await
}

async fn run_release(
    s: &Shared,
    request_id: String,
    id: u64,
    body: &Bytes,
) -> Result<serde_json::Value, ApiError> {
    let b: ActionBody = parse_body(body)?;
    let req = s.backends.request(pb::ReleaseHoldRequest {
        position_id: id.to_string(),
        request_id,
        reason: required_reason(b.reason)?,
        operator: OPERATOR.into(),
    });
    let mut trader = s.backends.trader();
    let fut = trader.release_hold(req);
    trader_answer(s, "ReleaseHold", fut).await
}

/// A slot id as the trader's proto carries it (parse_slot bounds it).
fn slot_of(slot: u64) -> u32 {
    u32::try_from(slot).unwrap_or(u32::MAX)
}

async fn run_spawn(
    s: &Shared,
    request_id: String,
    slot: u64,
    body: &Bytes,
) -> Result<serde_json::Value, ApiError> {
    let b: ActionBody = parse_body(body)?;
    let req = s.backends.request(pb::SpawnChurnerRequest {
        slot_id: slot_of(slot),
        request_id,
        reason: required_reason(b.reason)?,
        operator: OPERATOR.into(),
    });
    let mut trader = s.backends.trader();
    let fut = trader.spawn_churner(req);
    trader_answer(s, "SpawnChurner", fut).await
}

async fn run_kill(
    s: &Shared,
    request_id: String,
    slot: u64,
    body: &Bytes,
) -> Result<serde_json::Value, ApiError> {
    let b: ActionBody = parse_body(body)?;
    let req = s.backends.request(pb::KillChurnerRequest {
        slot_id: slot_of(slot),
        request_id,
        reason: required_reason(b.reason)?,
        operator: OPERATOR.into(),
    });
    let mut trader = s.backends.trader();
    let fut = trader.kill_churner(req);
    trader_answer(s, "KillChurner", fut).await
}

async fn run_reserve(
    s: &Shared,
    request_id: String,
    body: &Bytes,
) -> Result<serde_json::Value, ApiError> {
    let b: ReserveBody = parse_body(body)?;
    let req = s.backends.request(pb::SetChurnerReserveRequest {
        reserve_usd: required(b.reserve_usd, "reserve_usd")?,
        request_id,
        reason: required_reason(b.reason)?,
        operator: OPERATOR.into(),
    });
    let mut trader = s.backends.trader();
    let fut = trader.set_churner_reserve(req);
    trader_answer(s, "SetChurnerReserve", fut).await
}

async fn run_regime(
    s: &Shared,
    request_id: String,
    body: &Bytes,
) -> Result<serde_json::Value, ApiError> {
    let b: RegimeBody = parse_body(body)?;
    let req = s.backends.request(pb::SetRegimeOverrideRequest {
        regime: required(b.regime, "regime")?,
        ttl_seconds: b.ttl_seconds.unwrap_or(0),
        request_id,
        reason: required_reason(b.reason)?,
        operator: OPERATOR.into(),
    });
    let mut trader = s.backends.trader();
    let fut = trader.set_regime_override(req);
    trader_answer(s, "SetRegimeOverride", fut).await
}

operator_action!(
    /// Moves the position's exit to breakeven, never crossing the market;
    /// the slot's subsidy pays what it can, reduced profit covers the rest.
    reprice_breakeven,
    "/api/v1/positions/{id}/reprice-breakeven",
    "id",
    "position id",
    parse_id,
    ActionBody,
    run_breakeven
);
operator_action!(
    /// Cancels the exit and closes the position at market; the exchange's
    /// fill is booked and the position closes `written_off`.
    close_at_market,
    "/api/v1/positions/{id}/close-at-market",
    "id",
    "position id",
    parse_id,
    ActionBody,
    run_close
);
operator_action!(
    /// Hides the position from the cleanup queue and suspends its
    /// automatic repricing for `hold_seconds` (default 96 h).
    keep_holding,
    "/api/v1/positions/{id}/keep-holding",
    "id",
    "position id",
    parse_id,
    HoldBody,
    run_hold
);
operator_action!(
    /// Ends a hold early.
    release_hold,
    "/api/v1/positions/{id}/release-hold",
    "id",
    "position id",
    parse_id,
    ActionBody,
    run_release
);
operator_action!(
    /// Runs the slot's churner by hand (a parent position, headroom and
    /// capital are still required).
    spawn_churner,
    "/api/v1/churners/{slot}/spawn",
    "slot",
    "slot id",
    parse_slot,
    ActionBody,
    run_spawn
);
operator_action!(
    /// Stops the slot's churner; a filled churner entry keeps its exit.
    kill_churner,
    "/api/v1/churners/{slot}/kill",
    "slot",
    "slot id",
    parse_slot,
    ActionBody,
    run_kill
);
operator_action!(
    /// Sets the churner reserve in force (kept across trader restarts).
    churner_reserve,
    "/api/v1/churner-reserve",
    ReserveBody,
    run_reserve
);
operator_action!(
    /// Forces the regime label for `ttl_seconds`, or clears the override
    /// (`auto`).
    regime_override,
    "/api/v1/regime-override",
    RegimeBody,
    run_regime
);
