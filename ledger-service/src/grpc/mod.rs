//! The `healgrid.ledger.v1.LedgerService` gRPC adapter.
//!
//! Each RPC parses its request ([`wire`]), calls [`Ledger`], and converts
//! the result back. Errors map to gRPC status codes in exactly one place,
//! [`status_of`].

pub mod wire;

use std::sync::Arc;

use healgrid_proto::ledger::v1::{self as pb, ledger_service_server::LedgerService};
use tonic::{Request, Response, Status};
use tracing::{error, warn};

use crate::{
    Ledger, LedgerError, domain::validate, ledger::JournalScope, metrics::LedgerMetrics,
    store::Store,
};

/// The gRPC service over a ledger.
#[derive(Debug, Clone)]
pub struct LedgerGrpc<S> {
    ledger: Ledger<S>,
    metrics: Arc<LedgerMetrics>,
}

impl<S: Store> LedgerGrpc<S> {
    /// Wraps a ledger (its metrics are kept but not served).
    pub fn new(ledger: Ledger<S>) -> Self {
        Self::with_metrics(ledger, LedgerMetrics::new())
    }

    /// Wraps a ledger, counting its writes into `metrics`.
    pub fn with_metrics(ledger: Ledger<S>, metrics: Arc<LedgerMetrics>) -> Self {
        Self { ledger, metrics }
    }

    /// Counts the journal row a write appended (none when replayed).
    fn appended(&self, write: &str, replayed: bool) {
        if !replayed {
            self.metrics.journal_row_appended(write);
        }
    }

    /// [`fail`] for a write, counting a refused subsidy debit.
    fn write_failed(&self, e: LedgerError) -> Status {
        if matches!(e, LedgerError::InsufficientSubsidy { .. }) {
            self.metrics.subsidy_debit_refused();
        }
        fail(e)
    }
}

/// The one mapping from ledger errors to gRPC statuses (SPEC §3.4).
pub fn status_of(e: LedgerError) -> Status {
    match &e {
        LedgerError::Invalid { .. } => Status::invalid_argument(e.to_string()),
        LedgerError::PositionNotFound { .. } => Status::not_found(e.to_string()),
        LedgerError::PositionClosed { .. }
        | LedgerError::InsufficientSubsidy { .. }
        | LedgerError::KeyConflict { .. }
        | LedgerError::KeyCompacted { .. }
        | LedgerError::Precondition(_) => Status::failed_precondition(e.to_string()),
        LedgerError::Store(store) => {
            error!(error = %store, "storage failure");
            if store.is_transient() {
                Status::unavailable("ledger storage is unavailable; retry")
            } else {
                Status::internal("ledger storage failure")
            }
        }
    }
}

fn fail(e: LedgerError) -> Status {
    if !matches!(e, LedgerError::Store(_)) {
        warn!(error = %e, "request refused");
    }
    status_of(e)
}

#[tonic::async_trait]
impl<S: Store> LedgerService for LedgerGrpc<S> {
    async fn open_position(
        &self,
        request: Request<pb::OpenPositionRequest>,
    ) -> Result<Response<pb::OpenPositionResponse>, Status> {
        let cmd = wire::open_command(request.into_inner()).map_err(fail)?;
        let out = self
            .ledger
            .open_position(cmd)
            .await
            .map_err(|e| self.write_failed(e))?;
        self.appended("open", out.replayed);
        Ok(Response::new(pb::OpenPositionResponse {
            position: Some(wire::position_to_pb(out.position)),
            journal_id: out.journal_id,
            replayed: out.replayed,
        }))
    }

    async fn journal_event(
        &self,
        request: Request<pb::JournalEventRequest>,
    ) -> Result<Response<pb::JournalEventResponse>, Status> {
        let cmd = wire::event_command(request.into_inner()).map_err(fail)?;
        let out = self
            .ledger
            .journal_event(cmd)
            .await
            .map_err(|e| self.write_failed(e))?;
        self.appended("event", out.replayed);
        Ok(Response::new(pb::JournalEventResponse {
            entry: Some(wire::entry_to_pb(out.entry)),
            subsidy: Some(wire::subsidy_to_pb(out.subsidy)),
            replayed: out.replayed,
        }))
    }

    async fn close_position(
        &self,
        request: Request<pb::ClosePositionRequest>,
    ) -> Result<Response<pb::ClosePositionResponse>, Status> {
        let cmd = wire::close_command(request.into_inner()).map_err(fail)?;
        let out = self
            .ledger
            .close_position(cmd)
            .await
            .map_err(|e| self.write_failed(e))?;
        self.appended("close", out.replayed);
        Ok(Response::new(pb::ClosePositionResponse {
            position: Some(wire::position_to_pb(out.position)),
            entry: Some(wire::entry_to_pb(out.entry)),
            replayed: out.replayed,
        }))
    }

    async fn reprice_position(
        &self,
        request: Request<pb::RepricePositionRequest>,
    ) -> Result<Response<pb::RepricePositionResponse>, Status> {
        let cmd = wire::reprice_command(request.into_inner()).map_err(fail)?;
        let out = self
            .ledger
            .reprice_position(cmd)
            .await
            .map_err(|e| self.write_failed(e))?;
        self.appended("reprice", out.replayed);
        Ok(Response::new(pb::RepricePositionResponse {
            position: Some(wire::position_to_pb(out.position)),
            entry: Some(wire::entry_to_pb(out.entry)),
            subsidy: Some(wire::subsidy_to_pb(out.subsidy)),
            replayed: out.replayed,
        }))
    }

    async fn get_position(
        &self,
        request: Request<pb::GetPositionRequest>,
    ) -> Result<Response<pb::GetPositionResponse>, Status> {
        let position = self
            .ledger
            .position(request.into_inner().position_id)
            .await
            .map_err(fail)?;
        Ok(Response::new(pb::GetPositionResponse {
            position: Some(wire::position_to_pb(position)),
        }))
    }

    async fn list_open_positions(
        &self,
        request: Request<pb::ListOpenPositionsRequest>,
    ) -> Result<Response<pb::ListOpenPositionsResponse>, Status> {
        let r = request.into_inner();
        let positions = self
            .ledger
            .open_positions(&r.bot_id, r.slot_id)
            .await
            .map_err(fail)?;
        Ok(Response::new(pb::ListOpenPositionsResponse {
            positions: positions.into_iter().map(wire::position_to_pb).collect(),
        }))
    }

    async fn get_position_history(
        &self,
        request: Request<pb::GetPositionHistoryRequest>,
    ) -> Result<Response<pb::GetPositionHistoryResponse>, Status> {
        let r = request.into_inner();
        if let Some(position_id) = r.position_id {
            let (position, page) = self
                .ledger
                .position_history_of(&r.bot_id, position_id)
                .await
                .map_err(fail)?;
            return Ok(Response::new(pb::GetPositionHistoryResponse {
                positions: vec![wire::position_to_pb(position)],
                journal: page.entries.into_iter().map(wire::entry_to_pb).collect(),
            }));
        }
        let positions = self
            .ledger
            .position_history(&r.bot_id, r.slot_id, r.limit)
            .await
            .map_err(fail)?;
        Ok(Response::new(pb::GetPositionHistoryResponse {
            positions: positions.into_iter().map(wire::position_to_pb).collect(),
            journal: Vec::new(),
        }))
    }

    async fn get_journal(
        &self,
        request: Request<pb::GetJournalRequest>,
    ) -> Result<Response<pb::GetJournalResponse>, Status> {
        use pb::get_journal_request::Scope;
        let r = request.into_inner();
        let scope = match r.scope {
            Some(Scope::PositionId(id)) => JournalScope::Position(id),
            Some(Scope::Slot(s)) => JournalScope::Slot {
                bot_id: s.bot_id,
                slot_id: s.slot_id,
            },
            None => {
                return Err(fail(LedgerError::invalid(
                    "scope",
                    "one of position_id or slot is required",
                )));
            }
        };
        let page = self
            .ledger
            .journal(&scope, r.after_journal_id, r.limit)
            .await
            .map_err(fail)?;
        Ok(Response::new(pb::GetJournalResponse {
            entries: page.entries.into_iter().map(wire::entry_to_pb).collect(),
            next_after_journal_id: page.next_after_journal_id.unwrap_or(0),
        }))
    }

    async fn get_subsidy_balance(
        &self,
        request: Request<pb::GetSubsidyBalanceRequest>,
    ) -> Result<Response<pb::GetSubsidyBalanceResponse>, Status> {
        let r = request.into_inner();
        validate::id("bot_id", &r.bot_id).map_err(fail)?;
        let slot_id = wire::slot_id(r.slot_id).map_err(fail)?;
        let subsidy = self
            .ledger
            .subsidy_balance(&r.bot_id, slot_id)
            .await
            .map_err(fail)?;
        Ok(Response::new(pb::GetSubsidyBalanceResponse {
            subsidy: Some(wire::subsidy_to_pb(subsidy)),
        }))
    }

    async fn get_subsidy_summary(
        &self,
        request: Request<pb::GetSubsidySummaryRequest>,
    ) -> Result<Response<pb::GetSubsidySummaryResponse>, Status> {
        let r = request.into_inner();
        let summary = self.ledger.subsidy_summary(&r.bot_id).await.map_err(fail)?;
        let total = wire::subsidy_to_pb(crate::domain::SlotSubsidy {
            bot_id: r.bot_id,
            slot_id: 0,
            totals: summary.total,
        });
        Ok(Response::new(pb::GetSubsidySummaryResponse {
            slots: summary.slots.into_iter().map(wire::subsidy_to_pb).collect(),
            total: Some(total),
        }))
    }

    /// Journals an operator action on a bot as a whole.
    async fn append_bot_journal(
        &self,
        request: Request<pb::AppendBotJournalRequest>,
    ) -> Result<Response<pb::AppendBotJournalResponse>, Status> {
        let cmd = wire::bot_journal_command(request.into_inner()).map_err(fail)?;
        let out = self
            .ledger
            .append_bot_journal(cmd)
            .await
            .map_err(|e| self.write_failed(e))?;
        self.appended("bot_journal", out.replayed);
        Ok(Response::new(pb::AppendBotJournalResponse {
            entry: Some(wire::bot_entry_to_pb(out.entry)),
            replayed: out.replayed,
        }))
    }

    /// Pages through one bot's journal, oldest first.
    async fn get_bot_journal(
        &self,
        request: Request<pb::GetBotJournalRequest>,
    ) -> Result<Response<pb::GetBotJournalResponse>, Status> {
        let r = request.into_inner();
        let page = self
            .ledger
            .bot_journal(&r.bot_id, r.after_bot_journal_id, r.limit)
            .await
            .map_err(fail)?;
        Ok(Response::new(pb::GetBotJournalResponse {
            entries: page
                .entries
                .into_iter()
                .map(wire::bot_entry_to_pb)
                .collect(),
            next_after_bot_journal_id: page.next_after_bot_journal_id.unwrap_or(0),
        }))
    }

    async fn compact(
        &self,
        request: Request<pb::CompactRequest>,
    ) -> Result<Response<pb::CompactResponse>, Status> {
        let r = request.into_inner();
        let cutoff = validate::timestamp("cutoff", r.cutoff.as_ref()).map_err(fail)?;
        let report = self.ledger.compact(&r.bot_id, cutoff).await.map_err(fail)?;
        Ok(Response::new(pb::CompactResponse {
            positions_compacted: report.positions_compacted,
            rows_folded: report.rows_folded,
            slots_touched: report.slots_touched,
        }))
    }
}
