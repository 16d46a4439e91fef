//! [`LedgerApi`]: the ledger calls the trader makes, over the ledger's own
//! proto request/response types, with two implementations:
//!
//! - [`GrpcLedger`]: the production gRPC client, with a per-call deadline so
//!   a hung ledger turns into a retryable `DEADLINE_EXCEEDED` instead of a
//!   stalled trading loop;
//! - [`LocalLedger`]: calls the ledger's gRPC *service* implementation
//!   in-process (no network), so backtests and tests go through exactly the
//!   same request validation and status mapping as production.
//!
//! Errors are plain [`tonic::Status`]: the sink classifies them by code.

use std::future::Future;
use std::time::Duration;

use healgrid_proto::ledger::v1 as pb;
use healgrid_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use healgrid_proto::ledger::v1::ledger_service_server::LedgerService;
use ledger_service::grpc::LedgerGrpc;
use ledger_service::store::Store;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

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
}

/// Default per-call deadline of [`GrpcLedger`].
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the gRPC ledger client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LedgerConnectError {
    /// The URL is not a valid endpoint.
    #[error("invalid ledger url {url}: {source}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// The parser's error.
        source: tonic::transport::Error,
    },
}

/// The production ledger client.
#[derive(Debug, Clone)]
pub struct GrpcLedger {
    client: LedgerServiceClient<Channel>,
    timeout: Duration,
}

impl GrpcLedger {
    /// A client that connects lazily: the trader starts (and trades) even
    /// when the ledger is down; calls fail `UNAVAILABLE` until it is up.
    ///
    /// # Errors
    /// [`LedgerConnectError::InvalidUrl`] for a malformed URL.
    pub fn connect_lazy(url: &str, timeout: Duration) -> Result<Self, LedgerConnectError> {
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|source| LedgerConnectError::InvalidUrl {
                url: url.to_owned(),
                source,
            })?
            .connect_timeout(timeout);
        Ok(Self {
            client: LedgerServiceClient::new(endpoint.connect_lazy()),
            timeout,
        })
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
        let mut c = self.client.clone();
        Ok(c.open_position(self.request(req)).await?.into_inner())
    }

    async fn close_position(
        &self,
        req: pb::ClosePositionRequest,
    ) -> Result<pb::ClosePositionResponse, Status> {
        let mut c = self.client.clone();
        Ok(c.close_position(self.request(req)).await?.into_inner())
    }

    async fn journal_event(
        &self,
        req: pb::JournalEventRequest,
    ) -> Result<pb::JournalEventResponse, Status> {
        let mut c = self.client.clone();
        Ok(c.journal_event(self.request(req)).await?.into_inner())
    }

    async fn reprice_position(
        &self,
        req: pb::RepricePositionRequest,
    ) -> Result<pb::RepricePositionResponse, Status> {
        let mut c = self.client.clone();
        Ok(c.reprice_position(self.request(req)).await?.into_inner())
    }

    async fn list_open_positions(
        &self,
        req: pb::ListOpenPositionsRequest,
    ) -> Result<pb::ListOpenPositionsResponse, Status> {
        let mut c = self.client.clone();
        Ok(c.list_open_positions(self.request(req)).await?.into_inner())
    }

    async fn get_subsidy_balance(
        &self,
        req: pb::GetSubsidyBalanceRequest,
    ) -> Result<pb::GetSubsidyBalanceResponse, Status> {
        let mut c = self.client.clone();
        Ok(c.get_subsidy_balance(self.request(req)).await?.into_inner())
    }
}

/// The ledger library in-process, through its gRPC service implementation
/// (same validation and status codes as production, no network).
#[derive(Debug, Clone)]
pub struct LocalLedger<S> {
    service: LedgerGrpc<S>,
}

impl<S: Store> LocalLedger<S> {
    /// Wraps a ledger.
    #[must_use]
    pub fn new(ledger: ledger_service::Ledger<S>) -> Self {
        Self {
            service: LedgerGrpc::new(ledger),
        }
    }
}

impl<S: Store> LedgerApi for LocalLedger<S> {
    async fn open_position(
        &self,
        req: pb::OpenPositionRequest,
    ) -> Result<pb::OpenPositionResponse, Status> {
        Ok(
            LedgerService::open_position(&self.service, Request::new(req))
                .await?
                .into_inner(),
        )
    }

    async fn close_position(
        &self,
        req: pb::ClosePositionRequest,
    ) -> Result<pb::ClosePositionResponse, Status> {
        Ok(
            LedgerService::close_position(&self.service, Request::new(req))
                .await?
                .into_inner(),
        )
    }

    async fn journal_event(
        &self,
        req: pb::JournalEventRequest,
    ) -> Result<pb::JournalEventResponse, Status> {
        Ok(
            LedgerService::journal_event(&self.service, Request::new(req))
                .await?
                .into_inner(),
        )
    }

    async fn reprice_position(
        &self,
        req: pb::RepricePositionRequest,
    ) -> Result<pb::RepricePositionResponse, Status> {
        Ok(
            LedgerService::reprice_position(&self.service, Request::new(req))
                .await?
                .into_inner(),
        )
    }

    async fn list_open_positions(
        &self,
        req: pb::ListOpenPositionsRequest,
    ) -> Result<pb::ListOpenPositionsResponse, Status> {
        Ok(
            LedgerService::list_open_positions(&self.service, Request::new(req))
                .await?
                .into_inner(),
        )
    }

    async fn get_subsidy_balance(
        &self,
        req: pb::GetSubsidyBalanceRequest,
    ) -> Result<pb::GetSubsidyBalanceResponse, Status> {
        Ok(
            LedgerService::get_subsidy_balance(&self.service, Request::new(req))
                .await?
                .into_inner(),
        )
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
}
