//! healgrid gateway: the REST API (`/api/v1`) and the operator dashboard
//! (`/`) in front of the trader's and the ledger's gRPC APIs.
//!
//! It is stateless apart from a small in-memory cache of action answers (so
//! a retried `Idempotency-Key` returns the first answer) and the request
//! metrics: every read goes to the backends, every action is one RPC. It
//! starts while a backend is down and says which one is unreachable.
//!
//! # Layout
//! - [`config`]: flags and environment, and the action [`auth`] policy
//!   they imply.
//! - [`clients`]: lazy gRPC clients with deadlines; every RPC goes through
//!   one call helper.
//! - [`error`]: the one [`error::ApiError`], mapped once to HTTP and the
//!   `{"error": {"code", "message"}}` shape; gRPC status codes are mapped
//!   there and only there.
//! - [`view`]: pure conversions from wire messages to the JSON views and
//!   the aggregates (bands, heat map, cleanup queue) both the API and the
//!   dashboard show.
//! - [`api`]: REST handlers grouped by resource, and the router whose
//!   OpenAPI document is generated from those handlers.
//! - [`ui`]: the server-rendered dashboard.
//! - [`metrics`], [`idempotency`]: request metrics and the action answer
//!   cache.
//! - [`limits`]: the request body's size limit and arrival deadline.

pub mod api;
pub mod auth;
pub mod clients;
pub mod config;
pub mod error;
pub mod idempotency;
pub mod limits;
pub mod metrics;
pub mod single_flight;
pub mod ui;
pub mod view;

use std::sync::Arc;

pub use api::{AppState, router};

/// Serves the gateway on `listener` until `shutdown` resolves.
///
/// # Errors
/// When the HTTP server fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
