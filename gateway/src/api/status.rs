//! Status, version and the probes (`/healthz`, `/readyz`, `/metrics`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use healgrid_proto::trader::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{API_VERSION, Shared};
use crate::error::{ApiError, Backend, ErrorBody};
use crate::view::status::{self as sv, Status};

/// The trader's raw status, for callers that derive more from it.
///
/// # Errors
/// The RPC's failure.
pub async fn fetch_status(state: &Shared) -> Result<pb::GetStatusResponse, ApiError> {
    let b = &state.backends;
    let request = b.request(pb::GetStatusRequest {});
    b.call(Backend::Trader, "GetStatus", b.trader().get_status(request))
        .await
}

/// The trader's status: mode, market, slots, open positions with their
/// band, positions per band, outbox and call budget.
#[utoipa::path(
    get, path = "/api/v1/status", tag = "status",
    responses(
        (status = 200, description = "Latest status snapshot", body = Status),
        (status = 503, description = "Trader unreachable", body = ErrorBody),
        (status = 504, description = "Trader did not answer in time", body = ErrorBody),
    )
)]
pub async fn get_status(State(state): State<Shared>) -> Result<Json<Status>, ApiError> {
    Ok(Json(sv::status(&fetch_status(&state).await?)))
}

/// API and gateway versions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Version {
    /// REST API version the dashboard expects.
    pub api_version: String,
    /// Gateway build version.
    pub gateway_version: String,
}

/// The API version the dashboard checks.
#[utoipa::path(
    get, path = "/api/v1/version", tag = "status",
    responses((status = 200, description = "Versions", body = Version))
)]
pub async fn get_version() -> Json<Version> {
    Json(Version {
        api_version: API_VERSION.into(),
        gateway_version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// Process health.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// The gateway process is up (says nothing about the backends).
#[utoipa::path(
    get, path = "/healthz", tag = "probes",
    responses((status = 200, description = "Up", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Reachability of each backend.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// Whether every backend answered its health check.
    pub ready: bool,
    /// `ok` or why the trader is not reachable.
    pub trader: String,
    /// `ok` or why the ledger is not reachable.
    pub ledger: String,
}

/// Both backends answer `grpc.health.v1` with SERVING.
#[utoipa::path(
    get, path = "/readyz", tag = "probes",
    responses(
        (status = 200, description = "Both backends reachable", body = Readiness),
        (status = 503, description = "A backend is unreachable", body = Readiness),
    )
)]
pub async fn readyz(State(state): State<Shared>) -> (StatusCode, Json<Readiness>) {
    let (trader, ledger) = tokio::join!(
        state.backends.health(Backend::Trader),
        state.backends.health(Backend::Ledger)
    );
    let word = |r: &Result<(), ApiError>| match r {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.message(),
    };
    let ready = trader.is_ok() && ledger.is_ok();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(Readiness {
            ready,
            trader: word(&trader),
            ledger: word(&ledger),
        }),
    )
}

/// HTTP request counts and latencies by route, method and status, in
/// Prometheus text format.
#[utoipa::path(
    get, path = "/metrics", tag = "probes",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<Shared>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
}
