//! Views derived from the trader's status (cleanup queue) and the ones the
//! backends cannot feed yet (churners, candles), which answer 501 saying
//! what is missing.

use axum::Json;
use axum::extract::Query;
use axum::extract::State;
use axum::extract::rejection::QueryRejection;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::status::fetch_status;
use super::{Shared, query};
use crate::error::{ApiError, ErrorBody};
use crate::view::status::{self as sv, OpenPosition};

/// The cleanup queue.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CleanupQueue {
    /// Open positions in band `write_off`, oldest first.
    pub positions: Vec<OpenPosition>,
    /// Whether positions on hold are excluded (false until the trader
    /// reports holds).
    pub holds_excluded: bool,
}

/// Open positions in band `write_off` (SPEC §8), from the trader's status.
#[utoipa::path(
    get, path = "/api/v1/cleanup-queue", tag = "positions",
    responses(
        (status = 200, description = "The queue", body = CleanupQueue),
        (status = 503, description = "Trader unreachable", body = ErrorBody),
        (status = 504, description = "Trader did not answer in time", body = ErrorBody),
    )
)]
pub async fn cleanup_queue(State(state): State<Shared>) -> Result<Json<CleanupQueue>, ApiError> {
    let s = sv::status(&fetch_status(&state).await?);
    Ok(Json(CleanupQueue {
        positions: sv::cleanup_queue(&s.positions),
        holds_excluded: false,
    }))
}

/// Churner activity: not reported by the trader yet.
#[utoipa::path(
    get, path = "/api/v1/churners", tag = "status",
    responses((status = 501, description = "The trader does not report churners yet", body = ErrorBody))
)]
pub async fn churners() -> ApiError {
    ApiError::NotImplemented(
        "churner activity is not available: the trader's GetStatus does not report churners yet"
            .into(),
    )
}

/// Query of `GET /api/v1/candles`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CandlesQuery {
    /// Unix seconds of the first candle.
    pub since: Option<i64>,
}

/// Candles for the price chart: no backend serves them yet.
#[utoipa::path(
    get, path = "/api/v1/candles", tag = "status",
    params(CandlesQuery),
    responses(
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 501, description = "No backend serves candles yet", body = ErrorBody),
    )
)]
pub async fn candles(q: Result<Query<CandlesQuery>, QueryRejection>) -> Result<Json<()>, ApiError> {
    query(q)?;
    Err(ApiError::NotImplemented(
        "candles are not available: neither the trader nor the ledger serves candles yet".into(),
    ))
}
