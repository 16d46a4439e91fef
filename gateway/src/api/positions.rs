//! Ledger positions: filtered and paged lists, one position with its
//! journal, and its exit price history. Open positions carry the age band
//! the trader computed.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use healgrid_proto::ledger::v1 as lpb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::status::fetch_status;
use super::{Shared, parse_id, query};
use crate::error::{ApiError, Backend, ErrorBody};
use crate::view::ledger::{self as lv, ExitPricePoint, JournalEntry, Position};
use crate::view::status::{self as sv, Band};

/// Largest page.
pub const MAX_LIMIT: usize = 1000;
/// Default page.
pub const DEFAULT_LIMIT: usize = 100;
/// Journal rows read for one position at most.
const MAX_JOURNAL_ROWS: usize = 5000;

/// The bot whose ledger rows are shown: `BOT_ID` if configured, else the
/// trader's.
///
/// # Errors
/// The trader's failure when no bot id is configured.
pub async fn bot_id(state: &Shared) -> Result<String, ApiError> {
    match &state.bot_id {
        Some(b) => Ok(b.clone()),
        None => Ok(fetch_status(state).await?.bot_id.clone()),
    }
}

/// Open or closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusFilter {
    /// Open positions (default).
    #[default]
    Open,
    /// Closed positions, newest first (the newest 1000).
    Closed,
}

/// Slot mode filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModeFilter {
    /// Legacy slots.
    Legacy,
    /// Sticky slots.
    Sticky,
    /// Churners.
    Churner,
}

impl ModeFilter {
    fn as_str(self) -> &'static str {
        match self {
            Self::Legacy => "legacy",
            Self::Sticky => "sticky",
            Self::Churner => "churner",
        }
    }
}

/// Filters and paging of `GET /api/v1/positions`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PositionsQuery {
    /// `open` (default) or `closed`.
    #[param(inline)]
    pub status: Option<StatusFilter>,
    /// Only this slot.
    pub slot: Option<u32>,
    /// Only this age band (open positions only).
    pub band: Option<Band>,
    /// Only this slot mode.
    #[param(inline)]
    pub mode: Option<ModeFilter>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Rows to skip.
    pub offset: Option<usize>,
}

/// One page of positions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PositionPage {
    /// The page.
    pub positions: Vec<Position>,
    /// Rows matching the filters.
    pub total: usize,
    /// Page size used.
    pub limit: usize,
    /// Rows skipped.
    pub offset: usize,
}

/// Bands of open positions by ledger id, from the trader; `None` when the
/// trader cannot be read.
async fn bands(state: &Shared) -> Result<HashMap<u64, Band>, ApiError> {
    let s = sv::status(&*fetch_status(state).await?);
    Ok(s.positions
        .iter()
        .filter_map(|p| Some((p.position_id.as_deref()?.parse().ok()?, p.band)))
        .collect())
}

/// Checks the filters and paging, filters `all` and cuts the page: pure.
///
/// # Errors
/// [`ApiError::BadRequest`] for a limit out of range or a band filter on
/// closed positions.
pub fn page(q: &PositionsQuery, all: Vec<Position>) -> Result<PositionPage, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1 to {MAX_LIMIT}, got {limit}"
        )));
    }
    let offset = q.offset.unwrap_or(0);
    let matching: Vec<Position> = all
        .into_iter()
        .filter(|p| q.slot.is_none_or(|s| p.slot_id == s))
        .filter(|p| q.band.is_none_or(|b| p.band == Some(b)))
        .filter(|p| q.mode.is_none_or(|m| p.slot_mode == m.as_str()))
        .collect();
    let total = matching.len();
    Ok(PositionPage {
        positions: matching.into_iter().skip(offset).take(limit).collect(),
        total,
        limit,
        offset,
    })
}

/// Ledger positions, open (with their band) or closed, filtered and paged.
#[utoipa::path(
    get, path = "/api/v1/positions", tag = "positions",
    params(PositionsQuery),
    responses(
        (status = 200, description = "One page", body = PositionPage),
        (status = 400, description = "Bad filter or paging", body = ErrorBody),
        (status = 503, description = "A backend is unreachable", body = ErrorBody),
        (status = 504, description = "A backend did not answer in time", body = ErrorBody),
    )
)]
pub async fn list_positions(
    State(state): State<Shared>,
    q: Result<Query<PositionsQuery>, QueryRejection>,
) -> Result<Json<PositionPage>, ApiError> {
    let q = query(q)?;
    let closed = q.status.unwrap_or_default() == StatusFilter::Closed;
    if closed && q.band.is_some() {
        return Err(ApiError::BadRequest(
            "band applies to open positions only".into(),
        ));
    }
    // Validate paging before any RPC.
    page(&q, Vec::new())?;
    let bot = bot_id(&state).await?;
    let b = &state.backends;
    let all = if closed {
        let request = b.request(lpb::GetPositionHistoryRequest {
            bot_id: bot,
            slot_id: q.slot,
            limit: MAX_LIMIT as u32,
            position_id: None,
        });
        let r = b
            .call(
                Backend::Ledger,
                "GetPositionHistory",
                b.ledger().get_position_history(request),
            )
            .await?;
        r.positions.iter().map(|p| lv::position(p, None)).collect()
    } else {
        let request = b.request(lpb::ListOpenPositionsRequest {
            bot_id: bot,
            slot_id: q.slot,
        });
        let mut ledger = b.ledger();
        let (open, bands) = tokio::join!(
            b.call(
                Backend::Ledger,
                "ListOpenPositions",
                ledger.list_open_positions(request)
            ),
            bands(&state)
        );
        let open = open?;
        // Without the trader there are no bands: fine unless filtering on one.
        let bands = match (bands, q.band) {
            (Ok(b), _) => b,
            (Err(e), Some(_)) => return Err(e),
            (Err(_), None) => HashMap::new(),
        };
        open.positions
            .iter()
            .map(|p| lv::position(p, bands.get(&p.position_id).copied()))
            .collect()
    };
    Ok(Json(page(&q, all)?))
}

async fn fetch_position(state: &Shared, id: u64) -> Result<lpb::Position, ApiError> {
    let b = &state.backends;
    let request = b.request(lpb::GetPositionRequest { position_id: id });
    b.call(
        Backend::Ledger,
        "GetPosition",
        b.ledger().get_position(request),
    )
    .await?
    .position
    .ok_or(ApiError::BadAnswer {
        backend: Backend::Ledger,
        rpc: "GetPosition",
        message: "no position in the answer".into(),
    })
}

/// Every journal row of a position, oldest first.
///
/// # Errors
/// The RPC's failure.
pub async fn fetch_journal(state: &Shared, id: u64) -> Result<Vec<JournalEntry>, ApiError> {
    let b = &state.backends;
    let mut rows = Vec::new();
    let mut after = 0;
    loop {
        let request = b.request(lpb::GetJournalRequest {
            scope: Some(lpb::get_journal_request::Scope::PositionId(id)),
            after_journal_id: after,
            limit: MAX_LIMIT as u32,
        });
        let r = b
            .call(
                Backend::Ledger,
                "GetJournal",
                b.ledger().get_journal(request),
            )
            .await?;
        rows.extend(r.entries.iter().map(lv::journal_entry));
        if r.next_after_journal_id == 0 || rows.len() >= MAX_JOURNAL_ROWS {
            return Ok(rows);
        }
        after = r.next_after_journal_id;
    }
}

/// One position with its journal.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PositionDetail {
    /// The position (band from the trader when it is open and reachable).
    pub position: Position,
    /// Its journal, oldest first.
    pub journal: Vec<JournalEntry>,
}

/// A position with its band (best effort) and journal.
///
/// # Errors
/// The ledger's failure.
pub async fn fetch_detail(state: &Shared, id: u64) -> Result<PositionDetail, ApiError> {
    let (position, journal, bands) = tokio::join!(
        fetch_position(state, id),
        fetch_journal(state, id),
        bands(state)
    );
    let band = bands.ok().and_then(|b| b.get(&id).copied());
    Ok(PositionDetail {
        position: lv::position(&position?, band),
        journal: journal?,
    })
}

/// One position and its journal.
#[utoipa::path(
    get, path = "/api/v1/positions/{id}", tag = "positions",
    params(("id" = u64, Path, minimum = 1, description = "Ledger position id (positive integer)")),
    responses(
        (status = 200, description = "The position", body = PositionDetail),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 404, description = "No such position", body = ErrorBody),
        (status = 503, description = "Ledger unreachable", body = ErrorBody),
        (status = 504, description = "Ledger did not answer in time", body = ErrorBody),
    )
)]
pub async fn get_position(
    State(state): State<Shared>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<PositionDetail>, ApiError> {
    let id = parse_id("position id", id)?;
    Ok(Json(fetch_detail(&state, id).await?))
}

/// Exit price history of a position.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PositionHistory {
    /// The position.
    pub position_id: u64,
    /// First exit price, then every reprice, oldest first.
    pub exit_prices: Vec<ExitPricePoint>,
}

/// How a position's exit price moved: its first price and every reprice.
#[utoipa::path(
    get, path = "/api/v1/positions/{id}/history", tag = "positions",
    params(("id" = u64, Path, minimum = 1, description = "Ledger position id (positive integer)")),
    responses(
        (status = 200, description = "Exit price history", body = PositionHistory),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 404, description = "No such position", body = ErrorBody),
        (status = 503, description = "Ledger unreachable", body = ErrorBody),
        (status = 504, description = "Ledger did not answer in time", body = ErrorBody),
    )
)]
pub async fn get_position_history(
    State(state): State<Shared>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<PositionHistory>, ApiError> {
    let id = parse_id("position id", id)?;
    // GetPosition first so an unknown id is a 404, not an empty history.
    fetch_position(&state, id).await?;
    let journal = fetch_journal(&state, id).await?;
    Ok(Json(PositionHistory {
        position_id: id,
        exit_prices: lv::exit_price_history(&journal),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: u64, slot: u32, band: Option<Band>, mode: &str) -> Position {
        let mut v = lv::position(
            &lpb::Position {
                position_id: id,
                slot_id: slot,
                status: lpb::PositionStatus::Open as i32,
                ..Default::default()
            },
            band,
        );
        v.slot_mode = mode.into();
        v
    }

    /// Proves: filters combine, paging cuts after filtering, and a bad
    /// limit is refused.
    #[test]
    fn filters_and_pages() {
        let all = vec![
            p(1, 0, Some(Band::Fresh), "sticky"),
            p(2, 1, Some(Band::WriteOff), "sticky"),
            p(3, 1, Some(Band::WriteOff), "churner"),
            p(4, 1, None, "sticky"),
        ];
        let q = PositionsQuery {
            slot: Some(1),
            band: Some(Band::WriteOff),
            ..Default::default()
        };
        let r = page(&q, all.clone()).unwrap();
        assert_eq!(r.total, 2);
        let q = PositionsQuery {
            mode: Some(ModeFilter::Sticky),
            limit: Some(1),
            offset: Some(1),
            ..Default::default()
        };
        let r = page(&q, all.clone()).unwrap();
        assert_eq!((r.total, r.positions[0].position_id), (3, 2));
        for bad in [0, MAX_LIMIT + 1] {
            let q = PositionsQuery {
                limit: Some(bad),
                ..Default::default()
            };
            assert!(matches!(
                page(&q, all.clone()),
                Err(ApiError::BadRequest(_))
            ));
        }
    }
}
