//! The operator dashboard: server-rendered HTML (maud), with a small
//! embedded script that re-fetches the panels fragment every few seconds
//! and swaps it in (no full reload), and runs the confirm-with-reason
//! dialog of actions against the REST API. All rendering happens here in
//! Rust, so the page and its refreshes cannot disagree; there is no JS
//! build and nothing is fetched from elsewhere.

mod axis;
mod chart;
mod panels;
mod position;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::get;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::api::derived::{fetch_candles, fetch_cleanup_queue};
use crate::api::status::fetch_status;
use crate::api::subsidy::{SubsidySummary, fetch_summary};
use crate::api::{API_VERSION, Shared, parse_id};
use crate::error::ApiError;
use crate::view::operator::{self as ov, Candles, Churners, CleanupEntry};
use crate::view::status::{self as sv, Status};

const CSS: &str = include_str!("../../assets/app.css");
const JS: &str = include_str!("../../assets/app.js");

/// Dashboard routes (not part of the OpenAPI document: they serve HTML).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(dashboard))
        .route("/ui/panels", get(panels_fragment))
        .route("/ui/positions/{id}", get(position_page))
        .route("/assets/app.css", get(css))
        .route("/assets/app.js", get(js))
}

/// What one refresh of the dashboard shows; each part may have failed on
/// its own (a down backend blanks its panels only).
pub struct Snapshot {
    /// The trader's status.
    pub status: Result<Status, ApiError>,
    /// The ledger's subsidy.
    pub subsidy: Result<SubsidySummary, ApiError>,
    /// The trader's cleanup queue.
    pub queue: Result<Vec<CleanupEntry>, ApiError>,
    /// The trader's recent price bars, for the price chart's history.
    pub candles: Result<Candles, ApiError>,
    /// The churner section of the status (absent when the status failed or
    /// the trader predates it).
    pub churners: Option<Churners>,
}

/// Reads everything the panels show. The trader's three reads do not
/// depend on each other and run together, each under the backends'
/// deadline, so a trader that hangs costs one deadline, not three.
async fn snapshot(state: &Shared) -> Snapshot {
    let (raw_status, queue, candles) = tokio::join!(
        fetch_status(state),
        fetch_cleanup_queue(state),
        fetch_candles(state, None),
    );
    let churners = raw_status.as_ref().ok().and_then(|r| ov::churners(r));
    let status = raw_status.map(|r| sv::status(&r));
    let bot = match (&state.bot_id, &status) {
        (Some(b), _) => Ok(b.clone()),
        (None, Ok(s)) => Ok(s.bot_id.clone()),
        (None, Err(e)) => Err(ApiError::NotFound(format!(
            "the bot id is unknown while the trader is unreachable ({}); set BOT_ID to read the ledger anyway",
            e.message()
        ))),
    };
    let subsidy = match bot {
        Ok(b) => fetch_summary(state, &b).await,
        Err(e) => Err(e),
    };
    Snapshot {
        status,
        subsidy,
        queue,
        candles,
        churners,
    }
}

fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="stylesheet" href="/assets/app.css";
            }
            body data-api-version=(API_VERSION) {
                header.top {
                    a.brand href="/" { "healgrid" }
                    span #live { "live" }
                    span #version-warning hidden { "the gateway API changed: reload the page" }
                }
                main { (body) }
                dialog #confirm {
                    form method="dialog" {
                        h3 #confirm-title { "Confirm" }
                        label { "Reason " textarea #confirm-reason name="reason" rows="3" maxlength="500" required {} }
                        menu {
                            button value="cancel" formnovalidate { "Cancel" }
                            button #confirm-ok value="ok" { "Confirm" }
                        }
                    }
                }
                div #toast role="status" aria-live="polite" {}
                script src="/assets/app.js" {}
            }
        }
    }
}

async fn dashboard(State(state): State<Shared>) -> Markup {
    let snap = snapshot(&state).await;
    page(
        "healgrid dashboard",
        html! { div #panels data-refresh="/ui/panels" { (panels::all(&snap)) } },
    )
}

async fn panels_fragment(State(state): State<Shared>) -> impl IntoResponse {
    let snap = snapshot(&state).await;
    ([(CACHE_CONTROL, "no-store")], panels::all(&snap))
}

async fn position_page(
    State(state): State<Shared>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Markup, ApiError> {
    let id = parse_id("position id", id)?;
    let detail = crate::api::positions::fetch_detail(&state, id).await;
    Ok(page(
        &format!("position {id}"),
        position::render(id, detail),
    ))
}

async fn css() -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/css; charset=utf-8")], CSS)
}

async fn js() -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/javascript; charset=utf-8")], JS)
}

/// A panel that could not be filled, naming the unreachable backend.
fn unavailable(e: &ApiError) -> Markup {
    let who = e
        .backend()
        .map_or_else(|| "data".to_owned(), |b| b.to_string());
    html! {
        p.down { strong { (who) " unavailable" } ": " (e.message()) }
    }
}

/// Raw markup (for SVG built as text).
fn raw(s: String) -> Markup {
    PreEscaped(s)
}
