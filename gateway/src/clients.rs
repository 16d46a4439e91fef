//! gRPC clients of the trader and the ledger.
//!
//! Channels connect lazily, so the gateway starts (and answers 503 naming
//! the backend) while a backend is down, and reconnects by itself when it
//! comes back. Every RPC goes through [`Backends::call`], which puts the
//! deadline on the request (so the server can give up too) and enforces it
//! on the client side, and turns a failure into [`ApiError`] once.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use healgrid_proto::auth::{AuthChannel, ClientAuth, ServiceToken};
use healgrid_proto::tls::{ClientTls, error_chain};
use tonic::service::interceptor::InterceptedService;

use healgrid_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use healgrid_proto::trader::v1::trader_service_client::TraderServiceClient;
use tonic::transport::Endpoint;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

use crate::config::BackendSecurityArgs;
use crate::error::{ApiError, Backend};

/// Time allowed to open a TCP connection to a backend.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// A backend URL that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{backend} URL {url:?} is not valid: {source}")]
pub struct BadUrl {
    /// Which backend.
    pub backend: Backend,
    /// The URL as given.
    pub url: String,
    /// Why.
    pub source: tonic::transport::Error,
}

/// Why the backend clients cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BackendSetupError {
    /// A URL does not parse.
    #[error(transparent)]
    Url(#[from] BadUrl),
    /// The TLS settings of a backend cannot be used.
    #[error("{backend} TLS: {message}")]
    Tls {
        /// Which backend.
        backend: Backend,
        /// What is wrong.
        message: String,
    },
}

/// The trader and ledger clients plus the deadline of every call.
#[derive(Debug, Clone)]
pub struct Backends {
    trader: TraderServiceClient<AuthChannel>,
    ledger: LedgerServiceClient<AuthChannel>,
    trader_health: HealthClient<AuthChannel>,
    ledger_health: HealthClient<AuthChannel>,
    deadline: Duration,
}

/// A lazily connected channel to `backend` at `url`, over TLS for
/// `https://` (trusting `ca` when given), whose calls carry `token`.
fn lazy_channel(
    backend: Backend,
    url: &str,
    ca: Option<&Path>,
    token: Option<&ServiceToken>,
) -> Result<AuthChannel, BackendSetupError> {
    let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|source| BadUrl {
        backend,
        url: url.to_owned(),
        source,
    })?;
    let tls_error = |message: String| BackendSetupError::Tls { backend, message };
    let setting = match backend {
        Backend::Trader => "--trader-tls-ca",
        Backend::Ledger => "--ledger-tls-ca",
    };
    let tls = ClientTls::new(setting, ca).map_err(|e| tls_error(e.to_string()))?;
    tls.check_url(url).map_err(|e| tls_error(e.to_string()))?;
    let endpoint = endpoint.connect_timeout(CONNECT_TIMEOUT).tcp_nodelay(true);
    let channel = tls
        .apply(endpoint, None)
        .map_err(|e| tls_error(error_chain(&e)))?
        .connect_lazy();
    Ok(InterceptedService::new(channel, ClientAuth::new(token)))
}

impl Backends {
    /// Clients for both backends; nothing is connected yet.
    ///
    /// # Errors
    /// [`BackendSetupError::Url`] when a URL does not parse.
    pub fn new(
        trader_url: &str,
        ledger_url: &str,
        deadline: Duration,
    ) -> Result<Self, BackendSetupError> {
        Self::secured(
            trader_url,
            ledger_url,
            deadline,
            &BackendSecurityArgs::default(),
        )
    }

    /// [`Self::new`] with the tokens and CAs of `security`.
    ///
    /// # Errors
    /// [`BackendSetupError`] when a URL does not parse or a CA is unusable.
    pub fn secured(
        trader_url: &str,
        ledger_url: &str,
        deadline: Duration,
        security: &BackendSecurityArgs,
    ) -> Result<Self, BackendSetupError> {
        let trader = lazy_channel(
            Backend::Trader,
            trader_url,
            security.trader_tls_ca.as_deref(),
            security.trader_token.as_ref(),
        )?;
        let ledger = lazy_channel(
            Backend::Ledger,
            ledger_url,
            security.ledger_tls_ca.as_deref(),
            security.ledger_token.as_ref(),
        )?;
        Ok(Self {
            trader: TraderServiceClient::new(trader.clone()),
            ledger: LedgerServiceClient::new(ledger.clone()),
            trader_health: HealthClient::new(trader),
            ledger_health: HealthClient::new(ledger),
            deadline,
        })
    }

    /// A trader client (cheap clone of the shared channel).
    #[must_use]
    pub fn trader(&self) -> TraderServiceClient<AuthChannel> {
        self.trader.clone()
    }

    /// A ledger client (cheap clone of the shared channel).
    #[must_use]
    pub fn ledger(&self) -> LedgerServiceClient<AuthChannel> {
        self.ledger.clone()
    }

    /// Whether `backend` answers `grpc.health.v1` with SERVING.
    ///
    /// # Errors
    /// The RPC's failure, or [`ApiError::BadAnswer`] when it is not serving.
    pub async fn health(&self, backend: Backend) -> Result<(), ApiError> {
        let mut client = match backend {
            Backend::Trader => self.trader_health.clone(),
            Backend::Ledger => self.ledger_health.clone(),
        };
        let request = self.request(HealthCheckRequest {
            service: String::new(),
        });
        let r = self
            .call(backend, "Health/Check", client.check(request))
            .await?;
        if r.status == ServingStatus::Serving as i32 {
            Ok(())
        } else {
            Err(ApiError::BadAnswer {
                backend,
                rpc: "Health/Check",
                message: format!("health status {}", r.status),
            })
        }
    }

    /// A request carrying the gRPC deadline header.
    #[must_use]
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        r.set_timeout(self.deadline);
        r
    }

    /// Runs one RPC under the deadline and maps its failure.
    ///
    /// # Errors
    /// [`ApiError::Backend`] with the gRPC code, or [`ApiError::Deadline`].
    pub async fn call<T>(
        &self,
        backend: Backend,
        rpc: &'static str,
        fut: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, ApiError> {
        let start = std::time::Instant::now();
        match tokio::time::timeout(self.deadline, fut).await {
            Ok(Ok(r)) => Ok(r.into_inner()),
            // tonic enforces the request's grpc-timeout itself and reports
            // its expiry as CANCELLED ("Timeout expired"): that is our
            // deadline, not a cancellation.
            Ok(Err(status))
                if status.code() == tonic::Code::Cancelled && start.elapsed() >= self.deadline =>
            {
                Err(ApiError::Deadline {
                    backend,
                    rpc,
                    deadline_ms: self.deadline.as_millis(),
                })
            }
            Ok(Err(status)) => Err(ApiError::Backend {
                backend,
                rpc,
                code: status.code(),
                message: status.message().to_owned(),
            }),
            Err(_) => Err(ApiError::Deadline {
                backend,
                rpc,
                deadline_ms: self.deadline.as_millis(),
            }),
        }
    }
}
