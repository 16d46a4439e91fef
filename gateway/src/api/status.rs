//! Status, version and the probes (`/healthz`, `/readyz`, `/metrics`).

use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use healgrid_proto::trader::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{API_VERSION, Shared};
use crate::error::{ApiError, Backend, ErrorBody};
use crate::single_flight::SingleFlight;
use crate::view::status::{self as sv, Status};

/// One `GetStatus` answer, shared by every request that joined its call
/// ([`crate::single_flight`]), with its REST encoding made once.
#[derive(Debug)]
pub struct StatusRead {
    response: pb::GetStatusResponse,
    json: OnceLock<Result<Bytes, String>>,
}

impl std::ops::Deref for StatusRead {
    type Target = pb::GetStatusResponse;

    fn deref(&self) -> &pb::GetStatusResponse {
        &self.response
    }
}

impl StatusRead {
    /// The `GET /api/v1/status` body of this answer, encoded by the first
    /// request that needs it.
    fn rest_json(&self) -> Result<Bytes, ApiError> {
        self.json
            .get_or_init(|| {
                serde_json::to_vec(&sv::status(&self.response))
                    .map(Bytes::from)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(|message| ApiError::BadAnswer {
                backend: Backend::Trader,
                rpc: "GetStatus",
                message,
            })
    }
}

/// What concurrent status reads share.
pub type StatusFlight = SingleFlight<Result<Arc<StatusRead>, ApiError>>;

/// The trader's raw status, for callers that derive more from it. Requests
/// arriving while a `GetStatus` call runs share its answer.
///
/// # Errors
/// The RPC's failure.
pub async fn fetch_status(state: &Shared) -> Result<Arc<StatusRead>, ApiError> {
    state
        .status_reads
        .run(|| async {
            let b = &state.backends;
            let request = b.request(pb::GetStatusRequest {});
            let response = b
                .call(Backend::Trader, "GetStatus", b.trader().get_status(request))
                .await?;
            Ok(Arc::new(StatusRead {
                response,
                json: OnceLock::new(),
            }))
        })
        .await
}

/// The trader's status: mode, market, slots, open positions with their
/// band, positions per band, outbox and call budget.
#[utoipa::path(
    get, path = "/api/v1/status", tag = "status",
    responses(
        (status = 200, description = "Latest status snapshot", body = Status),
        (status = 502, description = "The trader's status could not be encoded", body = ErrorBody),
        (status = 503, description = "Trader unreachable", body = ErrorBody),
        (status = 504, description = "Trader did not answer in time", body = ErrorBody),
    )
)]
pub async fn get_status(State(state): State<Shared>) -> Result<impl IntoResponse, ApiError> {
    let body = fetch_status(&state).await?.rest_json()?;
    Ok(([(CONTENT_TYPE, "application/json")], body))
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
