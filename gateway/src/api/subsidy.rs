//! Per-slot subsidy from the ledger.

use axum::Json;
use axum::extract::State;
use healgrid_proto::ledger::v1 as lpb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Shared;
use super::positions::bot_id;
use crate::error::{ApiError, Backend, ErrorBody};
use crate::view::ledger::{self as lv, Subsidy};

/// Subsidy of every slot plus totals.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SubsidySummary {
    /// The bot.
    pub bot_id: String,
    /// One entry per slot that ever had subsidy activity.
    pub slots: Vec<Subsidy>,
    /// Sums over all slots (`slot_id` 0).
    pub total: Option<Subsidy>,
}

/// The ledger's subsidy summary.
///
/// # Errors
/// The RPC's failure.
pub async fn fetch_summary(state: &Shared, bot: &str) -> Result<SubsidySummary, ApiError> {
    let b = &state.backends;
    let request = b.request(lpb::GetSubsidySummaryRequest {
        bot_id: bot.to_owned(),
    });
    let r = b
        .call(
            Backend::Ledger,
            "GetSubsidySummary",
            b.ledger().get_subsidy_summary(request),
        )
        .await?;
    Ok(SubsidySummary {
        bot_id: bot.to_owned(),
        slots: r.slots.iter().map(lv::subsidy).collect(),
        total: r.total.as_ref().map(lv::subsidy),
    })
}

/// Per-slot subsidy balance and where it was earned and spent.
#[utoipa::path(
    get, path = "/api/v1/subsidy", tag = "subsidy",
    responses(
        (status = 200, description = "Subsidy per slot", body = SubsidySummary),
        (status = 503, description = "Ledger (or, without BOT_ID, trader) unreachable", body = ErrorBody),
        (status = 504, description = "A backend did not answer in time", body = ErrorBody),
    )
)]
pub async fn get_subsidy(State(state): State<Shared>) -> Result<Json<SubsidySummary>, ApiError> {
    let bot = bot_id(&state).await?;
    Ok(Json(fetch_summary(&state, &bot).await?))
}
