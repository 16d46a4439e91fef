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

/// Serves the gateway on `listener` until `shutdown` resolves, then lets
/// the requests in flight finish.
///
/// Its own accept loop rather than `axum::serve`: a client must send its
/// request headers within [`limits::RequestLimits::client_timeout`] or the
/// connection is closed (a slow-headers client would otherwise hold it
/// forever), which needs hyper's timer. The body's deadline and size are
/// the router's ([`limits::guard`]).
///
/// # Errors
/// Never in practice: a failed accept is logged and retried.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt;

    let header_timeout = state.limits.client_timeout;
    let app = router(state);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(app.clone().map_request(
            |r: axum::http::Request<hyper::body::Incoming>| r.map(axum::body::Body::new),
        ));
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
