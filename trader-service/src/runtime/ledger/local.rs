//! [`LocalLedger`]: the ledger library in-process, for backtests and tests.
//!
//! Behind the `local-ledger` feature: `trader-service run` talks to the
//! ledger service over gRPC and links none of the ledger's code.

use healgrid_proto::ledger::v1 as pb;
use healgrid_proto::ledger::v1::ledger_service_server::LedgerService;
use ledger_service::{LedgerGrpc, Store};
use tonic::{Request, Status};

use super::LedgerApi;

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

    async fn append_bot_journal(
        &self,
        req: pb::AppendBotJournalRequest,
    ) -> Result<pb::AppendBotJournalResponse, Status> {
        Ok(
            LedgerService::append_bot_journal(&self.service, Request::new(req))
                .await?
                .into_inner(),
        )
    }
}
