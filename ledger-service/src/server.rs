//! The gRPC server: the ledger service plus `grpc.health.v1` and server
//! reflection (v1 and v1alpha, covering the health service too), so
//! `grpcurl list`, `describe` and calls work without `.proto` files.
//!
//! # Draining
//! When asked to stop, the server first reports `NOT_SERVING` (overall and
//! for `healgrid.ledger.v1.LedgerService`) for a drain grace while it goes
//! on answering every call, so health checkers and clients move to another
//! replica before this one closes; then it stops accepting connections and
//! finishes the calls in flight. A rolling restart therefore loses no call.

use std::future::Future;
use std::time::Duration;

use healgrid_proto::ledger::v1::ledger_service_server::LedgerServiceServer;
use healgrid_proto::tls::ServerSecurity;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tracing::info;

use std::sync::Arc;

use crate::{
    Ledger,
    grpc::LedgerGrpc,
    ledger::Batching,
    metrics::LedgerMetrics,
    store::{MemoryStore, PgStore, SqliteStore, Store, StoreError},
};

/// Largest request accepted; ledger messages are small, anything bigger is
/// refused before it is decoded.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Opening or migrating the database failed.
    #[error("opening the ledger database failed: {0}")]
    Store(#[from] StoreError),
    /// The reflection service could not be built from the descriptors.
    #[error("building the reflection service failed: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The transport failed.
    #[error("gRPC transport failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A ledger on whichever backend a database URL names, or the in-memory
/// one.
#[derive(Debug, Clone)]
pub enum AnyLedger {
    /// `sqlite:...`
    Sqlite(Ledger<SqliteStore>),
    /// `postgres://...` or `postgresql://...`
    Postgres(Ledger<PgStore>),
    /// The non-durable in-memory backend. No URL names it (a server must
    /// never lose its ledger by a typo), so it is only built in code, by
    /// [`AnyLedger::memory`]: for tests and in-process backtests.
    Memory(Ledger<MemoryStore>),
}

impl AnyLedger {
    /// Opens the backend named by `url` and runs its migrations.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(Ledger::open_sqlite(url).await?))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(
                Ledger::open_postgres(url, max_connections).await?,
            ))
        } else {
            Err(StoreError::UnsupportedUrl(crate::config::redact_url(url)))
        }
    }

    /// A fresh, empty in-memory ledger (see [`Ledger::memory`]).
    pub fn memory() -> Self {
        Self::Memory(Ledger::memory())
    }

    /// Sets how the ledger groups writes (see [`Ledger::with_batching`]).
    pub fn with_batching(self, batching: Batching) -> Self {
        match self {
            Self::Sqlite(l) => Self::Sqlite(l.with_batching(batching)),
            Self::Postgres(l) => Self::Postgres(l.with_batching(batching)),
            Self::Memory(l) => Self::Memory(l.with_batching(batching)),
        }
    }

    /// Short backend name for logs.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
            Self::Memory(_) => "memory",
        }
    }

    /// Serves this ledger with no drain grace; see [`serve`].
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServerError> {
        self.serve_draining(listener, shutdown, Duration::ZERO)
            .await
    }

    /// Serves this ledger; once `shutdown` resolves, reports `NOT_SERVING`
    /// and keeps answering calls for `grace`, then finishes the calls in
    /// flight.
    pub async fn serve_draining(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
        grace: Duration,
    ) -> Result<(), ServerError> {
        self.serve_secured(
            listener,
            shutdown,
            grace,
            &ServerSecurity::default(),
            LedgerMetrics::new(),
        )
        .await
    }

    /// [`Self::serve_draining`] behind `security` (token check, TLS; health
    /// and, as configured, reflection stay open), recording every call and
    /// write into `metrics`.
    pub async fn serve_secured(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
        grace: Duration,
        security: &ServerSecurity,
        metrics: Arc<LedgerMetrics>,
    ) -> Result<(), ServerError> {
        match self {
            Self::Sqlite(l) => serve_secured(l, listener, shutdown, grace, security, metrics).await,
            Self::Postgres(l) => {
                serve_secured(l, listener, shutdown, grace, security, metrics).await
            }
            Self::Memory(l) => serve_secured(l, listener, shutdown, grace, security, metrics).await,
        }
    }
}

/// Serves `ledger` on `listener` until `shutdown` resolves, then finishes
/// in-flight requests and returns (health turns `NOT_SERVING` first, with
/// no grace). Tests pass a listener bound to port 0.
pub async fn serve<S: Store>(
    ledger: Ledger<S>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    serve_draining(ledger, listener, shutdown, Duration::ZERO).await
}

/// Serves `ledger` on `listener`; once `shutdown` resolves, reports
/// `NOT_SERVING` and keeps answering calls for `grace` (see the module
/// docs), then finishes in-flight requests and returns.
pub async fn serve_draining<S: Store>(
    ledger: Ledger<S>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
) -> Result<(), ServerError> {
    serve_secured(
        ledger,
        listener,
        shutdown,
        grace,
        &ServerSecurity::default(),
        LedgerMetrics::new(),
    )
    .await
}

/// [`serve_draining`] with TLS and the token check of `security` in front
/// of every service (health and, as configured, reflection stay open),
/// recording every call (method, code, latency) and every write into
/// `metrics`, which the caller may serve on its own listener
/// ([`healgrid_metrics::serve`]).
pub async fn serve_secured<S: Store>(
    ledger: Ledger<S>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
    security: &ServerSecurity,
    metrics: Arc<LedgerMetrics>,
) -> Result<(), ServerError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<LedgerServiceServer<LedgerGrpc<S>>>()
        .await;
    let drain = async move {
        shutdown.await;
        health
            .set_not_serving::<LedgerServiceServer<LedgerGrpc<S>>>()
            .await;
        health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        info!(
            grace_ms = grace.as_millis(),
            "draining: health reports NOT_SERVING, calls are still answered"
        );
        tokio::time::sleep(grace).await;
        info!("drain grace over; closing the listener and finishing calls in flight");
    };
    let (reflection_v1, reflection_v1alpha) =
        healgrid_proto::reflection::services(healgrid_proto::LEDGER_FILE_DESCRIPTOR_SET)?;
    let ledger_service =
        LedgerServiceServer::new(LedgerGrpc::with_metrics(ledger, metrics.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let addr = listener.local_addr().ok();
    info!(
        ?addr,
        transport = security.transport(),
        token_required = security.auth.is_enabled(),
        "ledger gRPC server listening"
    );
    security
        .server_with(metrics.rpc_layer())?
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(ledger_service)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), drain)
        .await?;
    info!("ledger gRPC server stopped");
    Ok(())
}
