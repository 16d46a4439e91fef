//! The HTTP surface: REST handlers grouped by resource, the shared state,
//! and the router.
//!
//! Every `/api/v1` route and the probes are registered through
//! `utoipa_axum::routes!`, which records the handler's `#[utoipa::path]` in
//! the OpenAPI document as it adds the route; the document can therefore
//! not list a route the router lacks, nor miss one registered this way
//! (`tests/openapi.rs` walks the document against the running router).

pub mod actions;
pub mod derived;
pub mod operator;
pub mod positions;
pub mod status;
pub mod subsidy;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::ActionPolicy;
use crate::clients::Backends;
use crate::error::ApiError;
use crate::idempotency::IdempotencyCache;
use crate::metrics::Metrics;

/// Version of the REST API; the dashboard checks it.
pub const API_VERSION: &str = "1";

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    /// gRPC clients.
    pub backends: Backends,
    /// Who may act.
    pub policy: ActionPolicy,
    /// The ledger's bot id when configured (otherwise the trader's).
    pub bot_id: Option<String>,
    /// Answers of actions by idempotency key.
    pub idempotency: IdempotencyCache,
    /// Request metrics.
    pub metrics: Arc<Metrics>,
    /// The `GetStatus` call concurrent reads share.
    pub status_reads: status::StatusFlight,
    /// Body size and arrival limits of every request.
    pub limits: crate::limits::RequestLimits,
}

impl AppState {
    /// State over `backends` with an empty cache and fresh metrics.
    #[must_use]
    pub fn new(backends: Backends, policy: ActionPolicy, bot_id: Option<String>) -> Self {
        Self {
            backends,
            policy,
            bot_id,
            idempotency: IdempotencyCache::default(),
            metrics: Arc::new(Metrics::default()),
            status_reads: status::StatusFlight::default(),
            limits: crate::limits::RequestLimits::default(),
        }
    }

    /// The same state with other request limits.
    #[must_use]
    pub fn with_limits(self, limits: crate::limits::RequestLimits) -> Self {
        Self { limits, ..self }
    }
}

/// Shared state as handlers see it.
pub type Shared = Arc<AppState>;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "healgrid gateway",
        description = "REST API of the healgrid operator dashboard: trader status, ledger positions and subsidy, operator actions.",
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "status", description = "What the trader is doing"),
        (name = "positions", description = "Ledger positions and their journal"),
        (name = "subsidy", description = "Per-slot subsidy"),
        (name = "actions", description = "Operator actions (bearer token, Idempotency-Key)"),
        (name = "probes", description = "Health, readiness, metrics"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every documented route with its handler.
#[must_use]
pub fn api_routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(status::get_status))
        .routes(routes!(status::get_version))
        .routes(routes!(status::healthz))
        .routes(routes!(status::readyz))
        .routes(routes!(status::metrics))
        .routes(routes!(positions::list_positions))
        .routes(routes!(positions::get_position))
        .routes(routes!(positions::get_position_history))
        .routes(routes!(subsidy::get_subsidy))
        .routes(routes!(derived::cleanup_queue))
        .routes(routes!(derived::churners))
        .routes(routes!(derived::candles))
        .routes(routes!(actions::pause))
        .routes(routes!(actions::resume))
        .routes(routes!(operator::reprice_breakeven))
        .routes(routes!(operator::close_at_market))
        .routes(routes!(operator::keep_holding))
        .routes(routes!(operator::release_hold))
        .routes(routes!(operator::spawn_churner))
        .routes(routes!(operator::kill_churner))
        .routes(routes!(operator::churner_reserve))
        .routes(routes!(operator::regime_override))
}

/// The OpenAPI 3.1 document of [`api_routes`].
#[must_use]
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().split_for_parts().1
}

async fn no_route() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn wrong_method() -> impl IntoResponse {
    (
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        Json(
            ApiError::BadRequest("this route does not take that method".into())
                .body()
                .with_code("method_not_allowed"),
        ),
    )
}

/// The whole application: API, OpenAPI document, probes, dashboard, with
/// request metrics around all of it.
pub fn router(state: Shared) -> Router {
    let (api, doc) = api_routes().split_for_parts();
    let doc = Arc::new(doc);
    let metrics = state.metrics.clone();
    let limits = state.limits;
    api.route(
        "/api/v1/openapi.json",
        get(move || {
            let doc = doc.clone();
            async move { Json(doc.as_ref().clone()) }
        }),
    )
    .merge(crate::ui::routes())
    .fallback(no_route)
    .method_not_allowed_fallback(wrong_method)
    .with_state(state)
    .layer(axum::middleware::from_fn_with_state(
        limits,
        crate::limits::guard,
    ))
    .layer(axum::middleware::from_fn_with_state(
        metrics,
        crate::metrics::track,
    ))
}

/// A path parameter that must be a ledger id (a positive integer).
///
/// # Errors
/// [`ApiError::BadRequest`] otherwise.
pub fn parse_id(
    what: &str,
    raw: Result<axum::extract::Path<String>, PathRejection>,
) -> Result<u64, ApiError> {
    let axum::extract::Path(raw) = raw.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    match raw.parse::<u64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(ApiError::BadRequest(format!(
            "{what} must be a positive integer, got {raw:?}"
        ))),
    }
}

/// A path parameter that must be a slot id (0 included).
///
/// # Errors
/// [`ApiError::BadRequest`] otherwise.
pub fn parse_slot(
    what: &str,
    raw: Result<axum::extract::Path<String>, PathRejection>,
) -> Result<u64, ApiError> {
    let axum::extract::Path(raw) = raw.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    raw.parse::<u32>().map(u64::from).map_err(|_| {
        ApiError::BadRequest(format!(
            "{what} must be an integer from 0 to {}, got {raw:?}",
            u32::MAX
        ))
    })
}

/// A query string that must fit `T` (unknown fields refused).
///
/// # Errors
/// [`ApiError::BadRequest`] with the reason.
pub fn query<T>(q: Result<axum::extract::Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|axum::extract::Query(t)| t)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}
