//! [`LedgerApi`]: the ledger calls the trader makes, over the ledger's own
//! proto request/response types, with two implementations:
//!
//! - [`GrpcLedger`]: the production gRPC client, with a per-call deadline so
//!   a hung ledger turns into a retryable `DEADLINE_EXCEEDED` instead of a
//!   stalled trading loop, balanced and failing over across the ledger's
//!   replicas ([`super::ledger_replicas`]);
//! - `LocalLedger` (feature `local-ledger`): calls the ledger's gRPC
//!   *service* implementation in-process (no network), so backtests and
//!   tests go through exactly the same request validation and status
//!   mapping as production.
//!
//! Errors are plain [`tonic::Status`]: the sink classifies them by code.

use std::future::Future;
use std::time::Duration;

use healgrid_proto::auth::{ClientAuth, ServiceToken};
use healgrid_proto::ledger::v1 as pb;
use healgrid_proto::tls::{ClientTls, error_chain};
use tonic::{Request, Status};

#[cfg(feature = "local-ledger")]
mod local;
#[cfg(feature = "local-ledger")]
pub use local::LocalLedger;

use super::ledger_replicas::{
    LedgerReplicas, LedgerUrlError, ReplicaPolicy, parse_ledger_urls, system_resolver,
};

/// The ledger operations the trader runtime uses.
pub trait LedgerApi: Send + Sync {
    /// Records a filled entry as an open position (idempotent on
    /// `(bot_id, open_key)`).
    fn open_position(
        &self,
        req: pb::OpenPositionRequest,
    ) -> impl Future<Output = Result<pb::OpenPositionResponse, Status>> + Send;

    /// Closes a position with its outcome (idempotent on `event_key`).
    fn close_position(
        &self,
        req: pb::ClosePositionRequest,
    ) -> impl Future<Output = Result<pb::ClosePositionResponse, Status>> + Send;

    /// Appends a journal event (idempotent on `event_key`).
    fn journal_event(
        &self,
        req: pb::JournalEventRequest,
    ) -> impl Future<Output = Result<pb::JournalEventResponse, Status>> + Send;

    /// Moves an exit's price (reprice; used by self-healing).
    fn reprice_position(
        &self,
        req: pb::RepricePositionRequest,
    ) -> impl Future<Output = Result<pb::RepricePositionResponse, Status>> + Send;

    /// Open positions of a bot (reconciliation).
    fn list_open_positions(
        &self,
        req: pb::ListOpenPositionsRequest,
    ) -> impl Future<Output = Result<pb::ListOpenPositionsResponse, Status>> + Send;

    /// Subsidy balance of one slot.
    fn get_subsidy_balance(
        &self,
        req: pb::GetSubsidyBalanceRequest,
    ) -> impl Future<Output = Result<pb::GetSubsidyBalanceResponse, Status>> + Send;

    /// Journals an operator action on the bot as a whole (idempotent on
    /// `event_key`).
    fn append_bot_journal(
        &self,
        req: pb::AppendBotJournalRequest,
    ) -> impl Future<Output = Result<pb::AppendBotJournalResponse, Status>> + Send;
}

/// Default per-call deadline of [`GrpcLedger`].
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the gRPC ledger client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LedgerConnectError {
    /// `LEDGER_URL` is not one or more valid URLs.
    #[error("invalid ledger url {url}: {source}")]
    InvalidUrl {
        /// The value given.
        url: String,
        /// What is wrong with it.
        source: LedgerUrlError,
    },
    /// The TLS settings for the ledger cannot be used.
    #[error("ledger TLS: {0}")]
    Tls(String),
}

/// The production ledger client.
#[derive(Debug, Clone)]
pub struct GrpcLedger {
    replicas: LedgerReplicas,
    timeout: Duration,
}

impl GrpcLedger {
    /// A client that connects lazily: the trader starts (and trades) even
    /// when the ledger is down; calls fail `UNAVAILABLE` until it is up.
    /// `urls` is `LEDGER_URL`: one URL or several, comma-separated, each
    /// host possibly resolving to several replicas.
    ///
    /// # Errors
    /// [`LedgerConnectError::InvalidUrl`] for a malformed URL.
    pub fn connect_lazy(urls: &str, timeout: Duration) -> Result<Self, LedgerConnectError> {
        Self::with_replicas(urls, timeout, ReplicaPolicy::default())
    }

    /// [`Self::connect_lazy`] with a given re-resolution and back-off
    /// policy.
    ///
    /// # Errors
    /// [`LedgerConnectError::InvalidUrl`] for a malformed URL.
    pub fn with_replicas(
        urls: &str,
        timeout: Duration,
        policy: ReplicaPolicy,
    ) -> Result<Self, LedgerConnectError> {
        Self::secured(urls, timeout, policy, ClientTls::default(), None)
    }

    /// [`Self::with_replicas`] over TLS for `https://` URLs (trusting
    /// `tls`'s CA) and sending `token` with every call.
    ///
    /// # Errors
    /// [`LedgerConnectError`] for a malformed URL or unusable TLS settings.
    pub fn secured(
        urls: &str,
        timeout: Duration,
        policy: ReplicaPolicy,
        tls: ClientTls,
        token: Option<&ServiceToken>,
    ) -> Result<Self, LedgerConnectError> {
        let targets = parse_ledger_urls(urls).map_err(|source| LedgerConnectError::InvalidUrl {
            url: urls.to_owned(),
            source,
        })?;
        for target in &targets {
            let url = target.url();
            tls.check_url(&url)
                .map_err(|e| LedgerConnectError::Tls(e.to_string()))?;
            if let Ok(endpoint) = tonic::transport::Endpoint::from_shared(url) {
                tls.apply(endpoint, None)
                    .map_err(|e| LedgerConnectError::Tls(error_chain(&e)))?;
            }
        }
        let security = (tls, ClientAuth::new(token));
        Ok(Self {
            replicas: LedgerReplicas::secured(
                targets,
                system_resolver(),
                timeout,
                policy,
                security,
            ),
            timeout,
        })
    }

    /// The replicas known now, and whether each is up.
    #[must_use]
    pub fn replicas(&self) -> Vec<(std::net::SocketAddr, bool)> {
        self.replicas.replicas()
    }

    fn request<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        r.set_timeout(self.timeout);
        r
    }
}

impl LedgerApi for GrpcLedger {
    async fn open_position(
        &self,
        req: pb::OpenPositionRequest,
    ) -> Result<pb::OpenPositionResponse, Status> {
        self.replicas
            .call(|mut c| {
                let req = self.request(req.clone());
                async move { c.open_position(req).await.map(tonic::Response::into_inner) }
            })
            .await
    }

    async fn close_position(
        &self,
        req: pb::ClosePositionRequest,
    ) -> Result<pb::ClosePositionResponse, Status> {
        self.replicas
            .call(|mut c| {
                let req = self.request(req.clone());
                async move { c.close_position(req).await.map(tonic::Response::into_inner) }
            })
            .await
    }

    async fn journal_event(
        &self,
        req: pb::JournalEventRequest,
    ) -> Result<pb::JournalEventResponse, Status> {
        self.replicas
            .call(|mut c| {
                let req = self.request(req.clone());
                async move { c.journal_event(req).await.map(tonic::Response::into_inner) }
            })
            .await
    }

    async fn reprice_position(
        &self,
        req: pb::RepricePositionRequest,
    ) -> Result<pb::RepricePositionResponse, Status> {
        self.replicas
            .call(|mut c| {
                let req = self.request(req.clone());
                async move {
                    c.reprice_position(req)
                        .await
                        .map(tonic::Response::into_inner)
                }
            })
            .await
    }

    async fn list_open_positions(
        &self,
        req: pb::ListOpenPositionsRequest,
    ) -> Result<pb::ListOpenPositionsResponse, Status> {
        self.replicas
            .call(|mut c| {
                let req = self.request(req.clone());
                async move {
                    c.list_open_positions(req)
                        .await
                        .map(tonic::Response::into_inner)
                }
            })
            .await
    }

    async fn get_subsidy_balance(
        &self,
        req: pb::GetSubsidyBalanceRequest,
    ) -> Result<pb::GetSubsidyBalanceResponse, Status> {
        self.replicas
            .call(|mut c| {
                let req = self.request(req.clone());
                async move {
                    c.get_subsidy_balance(req)
                        .await
                        .map(tonic::Response::into_inner)
                }
            })
            .await
    }

    async fn append_bot_journal(
        &self,
        req: pb::AppendBotJournalRequest,
    ) -> Result<pb::AppendBotJournalResponse, Status> {
        self.replicas
            .call(|mut c| {
                let req = self.request(req.clone());
                async move {
                    c.append_bot_journal(req)
                        .await
                        .map(tonic::Response::into_inner)
                }
            })
            .await
    }
}

impl<T: LedgerApi> LedgerApi for std::sync::Arc<T> {
    fn open_position(
        &self,
        req: pb::OpenPositionRequest,
    ) -> impl Future<Output = Result<pb::OpenPositionResponse, Status>> + Send {
        (**self).open_position(req)
    }

    fn close_position(
        &self,
        req: pb::ClosePositionRequest,
    ) -> impl Future<Output = Result<pb::ClosePositionResponse, Status>> + Send {
        (**self).close_position(req)
    }

    fn journal_event(
        &self,
        req: pb::JournalEventRequest,
    ) -> impl Future<Output = Result<pb::JournalEventResponse, Status>> + Send {
        (**self).journal_event(req)
    }

    fn reprice_position(
        &self,
        req: pb::RepricePositionRequest,
    ) -> impl Future<Output = Result<pb::RepricePositionResponse, Status>> + Send {
        (**self).reprice_position(req)
    }

    fn list_open_positions(
        &self,
        req: pb::ListOpenPositionsRequest,
    ) -> impl Future<Output = Result<pb::ListOpenPositionsResponse, Status>> + Send {
        (**self).list_open_positions(req)
    }

    fn get_subsidy_balance(
        &self,
        req: pb::GetSubsidyBalanceRequest,
    ) -> impl Future<Output = Result<pb::GetSubsidyBalanceResponse, Status>> + Send {
        (**self).get_subsidy_balance(req)
    }

    fn append_bot_journal(
        &self,
        req: pb::AppendBotJournalRequest,
    ) -> impl Future<Output = Result<pb::AppendBotJournalResponse, Status>> + Send {
        (**self).append_bot_journal(req)
    }
}
