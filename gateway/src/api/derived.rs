//! Views of the trader beyond its status: the cleanup queue
//! (`ListCleanupQueue`), the churner section of the status, and the price
//! bars for the chart (`GetCandles`).

use axum::Json;
use axum::extract::Query;
use axum::extract::State;
use axum::extract::rejection::QueryRejection;
use healgrid_proto::trader::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::status::fetch_status;
use super::{Shared, query};
use crate::error::{ApiError, Backend, ErrorBody};
use crate::view::operator::{self as ov, Candles, Churners, CleanupEntry};

/// The cleanup queue.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CleanupQueue {
    /// Open positions in band `write_off` not on hold, oldest effective
    /// age first, with what each costs and the actions available.
    pub positions: Vec<CleanupEntry>,
}

/// Fetches the trader's cleanup queue.
///
/// # Errors
/// The trader's failure, mapped.
pub async fn fetch_cleanup_queue(state: &Shared) -> Result<Vec<CleanupEntry>, ApiError> {
    let b = &state.backends;
    let request = b.request(pb::ListCleanupQueueRequest {});
    let r = b
        .call(
            Backend::Trader,
            "ListCleanupQueue",
            b.trader().list_cleanup_queue(request),
        )
        .await?;
    Ok(ov::cleanup_queue(&r))
}

/// Open positions in band `write_off` that are not on hold (SPEC §8), from
/// the trader's `ListCleanupQueue`.
#[utoipa::path(
    get, path = "/api/v1/cleanup-queue", tag = "positions",
    responses(
        (status = 200, description = "The queue", body = CleanupQueue),
        (status = 503, description = "Trader unreachable", body = ErrorBody),
        (status = 504, description = "Trader did not answer in time", body = ErrorBody),
    )
)]
pub async fn cleanup_queue(State(state): State<Shared>) -> Result<Json<CleanupQueue>, ApiError> {
    Ok(Json(CleanupQueue {
        positions: fetch_cleanup_queue(&state).await?,
    }))
}

/// Churner activity (SPEC §6): totals, reserve and each slot's churner,
/// from the trader's status.
#[utoipa::path(
    get, path = "/api/v1/churners", tag = "status",
    responses(
        (status = 200, description = "Churner activity", body = Churners),
        (status = 502, description = "The trader reports no healing section", body = ErrorBody),
        (status = 503, description = "Trader unreachable", body = ErrorBody),
        (status = 504, description = "Trader did not answer in time", body = ErrorBody),
    )
)]
pub async fn churners(State(state): State<Shared>) -> Result<Json<Churners>, ApiError> {
    let s = fetch_status(&state).await?;
    ov::churners(&s).map(Json).ok_or(ApiError::BadAnswer {
        backend: Backend::Trader,
        rpc: "GetStatus",
        message: "no healing section: this trader predates the churner".into(),
    })
}

/// Fetches the trader's price bars starting at or after `since` (unix
/// seconds; `None`: every bar it keeps). Shared by `GET /api/v1/candles`
/// and the dashboard's price chart, so both show the same bars.
///
/// # Errors
/// The trader's failure, mapped.
pub async fn fetch_candles(state: &Shared, since: Option<i64>) -> Result<Candles, ApiError> {
    let b = &state.backends;
    let request = b.request(pb::GetCandlesRequest {
        since_unix: since.unwrap_or(0),
    });
    let r = b
        .call(
            Backend::Trader,
            "GetCandles",
            b.trader().get_candles(request),
        )
        .await?;
    Ok(ov::candles(&r))
}

/// Query of `GET /api/v1/candles`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CandlesQuery {
    /// Unix seconds: bars starting at or after it (absent: all kept).
    pub since: Option<i64>,
}

/// The trader's 5-minute price bars of the last day (the prices it
/// observed, one per loop), for the price chart.
#[utoipa::path(
    get, path = "/api/v1/candles", tag = "status",
    params(CandlesQuery),
    responses(
        (status = 200, description = "Bars, oldest first", body = Candles),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 503, description = "Trader unreachable", body = ErrorBody),
        (status = 504, description = "Trader did not answer in time", body = ErrorBody),
    )
)]
pub async fn candles(
    State(state): State<Shared>,
    q: Result<Query<CandlesQuery>, QueryRejection>,
) -> Result<Json<Candles>, ApiError> {
    let q = query(q)?;
    Ok(Json(fetch_candles(&state, q.since).await?))
}
