//! Per-slot subsidy from the ledger.

use axum::Json;
use axum::extract::State;
use healgrid_proto::ledger::v1 as lpb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Shared;
use super::positions::bot_id;
use super::status::fetch_status;
use crate::error::{ApiError, Backend, ErrorBody};
use crate::view::ledger::{self as lv, Subsidy};
use crate::view::status as sv;

/// Subsidy of every slot plus totals.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SubsidySummary {
    /// The bot.
    pub bot_id: String,
    /// One entry per slot that ever had subsidy activity.
    pub slots: Vec<Subsidy>,
    /// Sums over all slots (`slot_id` 0).
    pub total: Option<Subsidy>,
    /// What the trader still needs and when it expects to have earned it;
    /// absent when the trader did not answer (the ledger's figures stand
    /// on their own).
    pub pending: Option<PendingNeed>,
}

/// The trader's pending subsidy need and its ETA (SPEC §7).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PendingNeed {
    /// Sum over slots (decimal string, USD).
    pub total: String,
    /// Per slot (decimal strings), by slot id.
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub by_slot: std::collections::BTreeMap<u32, String>,
    /// Churner net of the last 24 h (decimal string, USD): the ETA's rate.
    pub churner_net_24h_usd: String,
    /// Seconds to earn `total` at that rate; absent (unknown) while the
    /// rate is not positive, 0 when nothing is needed.
    pub eta_seconds: Option<i64>,
}

impl From<&crate::view::status::Healing> for PendingNeed {
    fn from(h: &crate::view::status::Healing) -> Self {
        Self {
            total: h.pending_need_total.clone(),
            by_slot: h.pending_need.clone(),
            churner_net_24h_usd: h.churner_net_24h_usd.clone(),
            eta_seconds: h.eta_seconds,
        }
    }
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
        pending: None,
    })
}

/// Per-slot subsidy balance and where it was earned and spent (ledger),
/// with the trader's pending need and ETA when the trader answers.
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
    let mut summary = fetch_summary(&state, &bot).await?;
    summary.pending = match fetch_status(&state).await {
        Ok(r) => r
            .healing
            .as_ref()
            .map(|h| PendingNeed::from(&sv::healing(h))),
        Err(e) => {
            tracing::warn!(error = %e, "trader unreachable: subsidy shown without its pending need");
            None
        }
    };
    Ok(Json(summary))
}
