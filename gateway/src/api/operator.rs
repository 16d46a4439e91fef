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
use healgrid_proto::auth::AuthChannel;
use healgrid_proto::trader::v1 as pb;
use healgrid_proto::trader::v1::trader_service_client::TraderServiceClient;
use serde::Deserialize;
use serde::de::DeserializeOwned;
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

/// The one way an operator action reaches the trader: parse the body as
/// `B`, let `request` build the RPC's message from it (checking what the
/// action requires), send it with `rpc` under the gateway's deadline and
/// shape the trader's answer. Each action states only its body, its message
/// and its RPC.
async fn act<B, Req, Fut>(
    s: &Shared,
    body: &Bytes,
    name: &'static str,
    request: impl FnOnce(B) -> Result<Req, ApiError>,
    rpc: impl FnOnce(TraderServiceClient<AuthChannel>, tonic::Request<Req>) -> Fut,
) -> Result<serde_json::Value, ApiError>
where
    B: DeserializeOwned + Default,
    Fut: Future<Output = Result<tonic::Response<pb::OperatorActionResponse>, tonic::Status>>,
{
    let req = s.backends.request(request(parse_body(body)?)?);
    let fut = rpc(s.backends.trader(), req);
    let r = s.backends.call(Backend::Trader, name, fut).await?;
    let answer: ActionAnswer = action_answer(&r);
    tracing::info!(rpc = name, action = %answer.action, position_id = ?answer.position_id,
        replayed = answer.replayed, "operator action accepted by the trader");
    serde_json::to_value(answer).map_err(|e| ApiError::BadAnswer {
        backend: Backend::Trader,
        rpc: name,
        message: e.to_string(),
    })
}

macro_rules! operator_action {
    // An action on a path id (position or slot).
    ($(#[doc = $doc:literal])* $name:ident, $path:literal, $param:literal, $what:literal,
     $parse:path, $body:ty, $rpc:literal, $method:ident, $build:path) => {
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
                let request = |b: $body| $build(b, id, key);
                act(&state, &body, $rpc, request, |mut t, r| async move { t.$method(r).await }).await
            })
            .await
        }
    };
    // An action without a path id.
    ($(#[doc = $doc:literal])* $name:ident, $path:literal, $body:ty, $rpc:literal, $method:ident,
     $build:path) => {
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
            once(&state, &headers, fp, |key| async {
                let request = |b: $body| $build(b, key);
                act(&state, &body, $rpc, request, |mut t, r| async move { t.$method(r).await }).await
            })
            .await
        }
    };
}

// What each action sends: its message, built from the body (checking what
// the action requires, in the order the fields are listed).

fn breakeven(
    b: ActionBody,
    id: u64,
    request_id: String,
) -> Result<pb::RepriceToBreakevenRequest, ApiError> {
    Ok(pb::RepriceToBreakevenRequest {
        position_id: id.to_string(),
        request_id,
        reason: required_reason(b.reason)?,
        operator: OPERATOR.into(),
    })
}

fn close(b: ActionBody, id: u64, request_id: String) -> Result<pb::CloseAtMarketRequest, ApiError> {
    Ok(pb::CloseAtMarketRequest {
        position_id: id.to_string(),
        request_id,
        reason: required_reason(b.reason)?,
        operator: OPERATOR.into(),
    })
}

fn hold(b: HoldBody, id: u64, request_id: String) -> Result<pb::KeepHoldingRequest, ApiError> {
    Ok(pb::KeepHoldingRequest {
        position_id: id.to_string(),
        request_id,
        hold_seconds: b.hold_seconds.unwrap_or(0),
        reason: required_reason(b.reason)?,
        operator: OPERATOR.into(),
    })
}

fn release(b: ActionBody, id: u64, request_id: String) -> Result<pb::ReleaseHoldRequest, ApiError> {
    Ok(pb::ReleaseHoldRequest {
        position_id: id.to_string(),
        request_id,
        reason: required_reason(b.reason)?,
        operator: OPERATOR.into(),
    })
}

/// A slot id as the trader's proto carries it (parse_slot bounds it).
fn slot_of(slot: u64) -> u32 {
    u32::try_from(slot).unwrap_or(u32::MAX)
}

fn spawn(
    b: ActionBody,
    slot: u64,
    request_id: String,
) -> Result<pb::SpawnChurnerRequest, ApiError> {
    Ok(pb::SpawnChurnerRequest {
        slot_id: slot_of(slot),
        request_id,
        reason: required_reason(b.reason)?,
        operator: OPERATOR.into(),
    })
}

fn kill(b: ActionBody, slot: u64, request_id: String) -> Result<pb::KillChurnerRequest, ApiError> {
    Ok(pb::KillChurnerRequest {
        slot_id: slot_of(slot),
        request_id,
        reason: required_reason(b.reason)?,
        operator: OPERATOR.into(),
    })
}

fn reserve(b: ReserveBody, request_id: String) -> Result<pb::SetChurnerReserveRequest, ApiError> {
    Ok(pb::SetChurnerReserveRequest {
        reserve_usd: required(b.reserve_usd, "reserve_usd")?,
        request_id,
        reason: required_reason(b.reason)?,
        operator: OPERATOR.into(),
    })
}

fn regime(b: RegimeBody, request_id: String) -> Result<pb::SetRegimeOverrideRequest, ApiError> {
    Ok(pb::SetRegimeOverrideRequest {
        regime: required(b.regime, "regime")?,
        ttl_seconds: b.ttl_seconds.unwrap_or(0),
        request_id,
        reason: required_reason(b.reason)?,
        operator: OPERATOR.into(),
    })
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
    "RepriceToBreakeven",
    reprice_to_breakeven,
    breakeven
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
    "CloseAtMarket",
    close_at_market,
    close
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
    "KeepHolding",
    keep_holding,
    hold
);
operator_action!(
    /// Ends a hold early.
    release_hold,
    "/api/v1/positions/{id}/release-hold",
    "id",
    "position id",
    parse_id,
    ActionBody,
    "ReleaseHold",
    release_hold,
    release
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
    "SpawnChurner",
    spawn_churner,
    spawn
);
operator_action!(
    /// Stops the slot's churner; a filled churner entry keeps its exit.
    kill_churner,
    "/api/v1/churners/{slot}/kill",
    "slot",
    "slot id",
    parse_slot,
    ActionBody,
    "KillChurner",
    kill_churner,
    kill
);
operator_action!(
    /// Sets the churner reserve in force (kept across trader restarts).
    churner_reserve,
    "/api/v1/churner-reserve",
    ReserveBody,
    "SetChurnerReserve",
    set_churner_reserve,
    reserve
);
operator_action!(
    /// Forces the regime label for `ttl_seconds`, or clears the override
    /// (`auto`).
    regime_override,
    "/api/v1/regime-override",
    RegimeBody,
    "SetRegimeOverride",
    set_regime_override,
    regime
);
