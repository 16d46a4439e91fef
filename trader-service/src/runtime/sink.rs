//! The outbox [`Sink`] over a [`LedgerApi`]: turns a queued
//! [`LedgerWriteRequest`] into the ledger's proto request, resolves
//! `open_key -> position_id`, and classifies failures.
//!
//! The position id of an open is persisted in the store's metadata
//! (`position:<open_key>`) *before* the outbox marks the open delivered, so
//! a later close (always delivered after its open: the outbox is strictly
//! ordered) can always resolve it, across restarts too.

use healgrid_proto::convert::format_decimal;
use healgrid_proto::ledger::v1 as pb;
use rust_decimal::Decimal;
use tonic::{Code, Status};

use crate::engine::TradeId;
use crate::runtime::entry::OutboxEntry;
use crate::runtime::ledger::LedgerApi;
use crate::runtime::outbox::{DeliveryError, Sink};
use crate::runtime::store::TraderStore;
use crate::runtime::writes::{
    BotActionKind, BotJournalWrite, ChurnerProfitWrite, CloseKind, CloseWrite, HandedOverWrite,
    LedgerWriteRequest, OpenWrite, OperatorWrite, OverPerformanceWrite, RepriceWrite, SlotModeKind,
};

/// Metadata key prefix of the `open_key -> position_id` map.
pub const POSITION_META_PREFIX: &str = "position:";

/// The metadata key holding the ledger position id of `open_key`.
#[must_use]
pub fn position_meta_key(open_key: &str) -> String {
    format!("{POSITION_META_PREFIX}{open_key}")
}

/// What the ledger acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerAck {
    /// A position is open; the runtime feeds `PositionOpened` to the engine.
    Opened {
        /// Its open key.
        open_key: String,
        /// The engine exit working it (`None` for legacy imports).
        exit_order_id: Option<String>,
        /// The ledger's id.
        position_id: String,
        /// True if the ledger had recorded it already (a retry).
        replayed: bool,
    },
    /// A position is closed.
    Closed {
        /// Its open key.
        open_key: String,
    },
    /// A journal event was appended.
    Journaled {
        /// Its open key.
        open_key: String,
    },
    /// A bot-journal row was appended.
    BotJournaled {
        /// The operator request it records.
        request_id: String,
    },
}

/// Classifies a ledger status: transport and server trouble is retried,
/// a refusal of the request itself is parked (retrying cannot fix it).
#[must_use]
pub fn classify_status(status: &Status) -> DeliveryError {
    let msg = format!("{:?}: {}", status.code(), status.message());
    match status.code() {
        Code::InvalidArgument
        | Code::FailedPrecondition
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::Unauthenticated
        | Code::Unimplemented
        | Code::OutOfRange => DeliveryError::Rejected(msg),
        // UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED, UNKNOWN,
        // RESOURCE_EXHAUSTED, INTERNAL, ABORTED, DATA_LOSS, OK(?)
        _ => DeliveryError::Retryable(msg),
    }
}

/// Delivers outbox entries to a ledger.
#[derive(Debug)]
pub struct LedgerSink<'a, L> {
    ledger: &'a L,
    store: &'a TraderStore,
    bot_id: &'a str,
}

impl<'a, L: LedgerApi> LedgerSink<'a, L> {
    /// A sink for `bot_id` over `ledger`, resolving ids through `store`.
    #[must_use]
    pub fn new(ledger: &'a L, store: &'a TraderStore, bot_id: &'a str) -> Self {
        Self {
            ledger,
            store,
            bot_id,
        }
    }

    async fn position_id(&self, open_key: &str) -> Result<u64, DeliveryError> {
        let stored = self
            .store
            .get_meta(&position_meta_key(open_key))
            .await
            .map_err(|e| DeliveryError::Retryable(format!("store: {e}")))?;
        let Some(id) = stored else {
            return Err(DeliveryError::Rejected(format!(
                "no ledger position for open key {open_key} (its open was parked?)"
            )));
        };
        id.parse()
            .map_err(|_| DeliveryError::Rejected(format!("corrupt position id {id:?}")))
    }

    async fn open(&self, w: &OpenWrite) -> Result<LedgerAck, DeliveryError> {
        let resp = self
            .ledger
            .open_position(open_request(self.bot_id, w))
            .await
            .map_err(|s| classify_status(&s))?;
        let position_id = resp
            .position
            .map(|p| p.position_id.to_string())
            .ok_or_else(|| DeliveryError::Retryable("open ack without position".into()))?;
        self.store
            .put_meta(&position_meta_key(&w.open_key), &position_id)
            .await
            .map_err(|e| DeliveryError::Retryable(format!("store: {e}")))?;
        tracing::info!(open_key = %w.open_key, position_id = %position_id, slot = w.slot,
            migration = w.migration, replayed = resp.replayed, "ledger position opened");
        Ok(LedgerAck::Opened {
            open_key: w.open_key.clone(),
            exit_order_id: w.exit_order_id.clone(),
            position_id,
            replayed: resp.replayed,
        })
    }

    async fn close(&self, w: &CloseWrite, key: &str) -> Result<LedgerAck, DeliveryError> {
        let position_id = self.position_id(&w.open_key).await?;
        let resp = self
            .ledger
            .close_position(close_request(position_id, key, w))
            .await
            .map_err(|s| classify_status(&s))?;
        tracing::info!(open_key = %w.open_key, position_id, reason = ?w.reason,
            net = ?w.net_profit, replayed = resp.replayed, "ledger position closed");
        Ok(LedgerAck::Closed {
            open_key: w.open_key.clone(),
        })
    }

    async fn over_performance(
        &self,
        w: &OverPerformanceWrite,
        key: &str,
    ) -> Result<LedgerAck, DeliveryError> {
        let position_id = self.position_id(&w.open_key).await?;
        self.ledger
            .journal_event(over_performance_request(position_id, key, w))
            .await
            .map_err(|s| classify_status(&s))?;
        tracing::info!(open_key = %w.open_key, position_id, excess = %w.excess,
            "over-performance credited");
        Ok(LedgerAck::Journaled {
            open_key: w.open_key.clone(),
        })
    }
}

impl<L: LedgerApi> LedgerSink<'_, L> {
    async fn bot_journal(
        &self,
        w: &BotJournalWrite,
        key: &str,
    ) -> Result<LedgerAck, DeliveryError> {
        let resp = self
            .ledger
            .append_bot_journal(bot_journal_request(self.bot_id, key, w))
            .await
            .map_err(|s| classify_status(&s))?;
        tracing::info!(action = ?w.action, request_id = %w.request_id, detail = %w.detail,
            replayed = resp.replayed, "operator action journaled on the bot");
        Ok(LedgerAck::BotJournaled {
            request_id: w.request_id.clone(),
        })
    }

    async fn reprice(&self, w: &RepriceWrite, key: &str) -> Result<LedgerAck, DeliveryError> {
        let position_id = self.position_id(&w.open_key).await?;
        let resp = self
            .ledger
            .reprice_position(reprice_request(position_id, key, w))
            .await
            .map_err(|s| classify_status(&s))?;
        tracing::info!(open_key = %w.open_key, position_id, kind = w.kind.as_str(),
            old_price = %w.old_price, new_price = %w.new_price,
            subsidy_consumed = %w.subsidy_consumed, replayed = resp.replayed,
            "ledger position repriced");
        Ok(LedgerAck::Journaled {
            open_key: w.open_key.clone(),
        })
    }
}

impl<L: LedgerApi> Sink for LedgerSink<'_, L> {
    type Ack = LedgerAck;

    async fn deliver(&self, entry: &OutboxEntry) -> Result<LedgerAck, DeliveryError> {
        let write: LedgerWriteRequest = serde_json::from_value(entry.payload.clone())
            .map_err(|e| DeliveryError::Rejected(format!("undecodable payload: {e}")))?;
        match &write {
            LedgerWriteRequest::Open(w) => self.open(w).await,
            LedgerWriteRequest::Close(w) => self.close(w, entry.key.as_str()).await,
            LedgerWriteRequest::OverPerformance(w) => {
                self.over_performance(w, entry.key.as_str()).await
            }
            LedgerWriteRequest::Reprice(w) => self.reprice(w, entry.key.as_str()).await,
            LedgerWriteRequest::BotJournal(w) => self.bot_journal(w, entry.key.as_str()).await,
            LedgerWriteRequest::Operator(w) => {
                let position_id = self.position_id(&w.open_key).await?;
                self.ledger
                    .journal_event(operator_request(position_id, entry.key.as_str(), w))
                    .await
                    .map_err(|s| classify_status(&s))?;
                tracing::info!(open_key = %w.open_key, position_id, action = %w.action,
                    request_id = %w.request_id, "operator action journaled");
                Ok(LedgerAck::Journaled {
                    open_key: w.open_key.clone(),
                })
            }
            LedgerWriteRequest::ChurnerProfit(w) => {
                let position_id = self.position_id(&w.open_key).await?;
                self.ledger
                    .journal_event(churner_profit_request(position_id, entry.key.as_str(), w))
                    .await
                    .map_err(|s| classify_status(&s))?;
                tracing::info!(open_key = %w.open_key, position_id, net = %w.net_profit,
                    churner = %w.churner_open_key, "churner profit credited to its parent");
                Ok(LedgerAck::Journaled {
                    open_key: w.open_key.clone(),
                })
            }
            LedgerWriteRequest::HandedOver(w) => {
                let position_id = self.position_id(&w.open_key).await?;
                self.ledger
                    .journal_event(handed_over_request(position_id, entry.key.as_str(), w))
                    .await
                    .map_err(|s| classify_status(&s))?;
                tracing::info!(open_key = %w.open_key, position_id, age_seconds = w.age_seconds,
                    "churner round trip handed over to its slot");
                Ok(LedgerAck::Journaled {
                    open_key: w.open_key.clone(),
                })
            }
        }
    }
}

fn ts(secs: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: secs,
        nanos: 0,
    })
}

fn opt(d: Option<Decimal>) -> String {
    d.map(format_decimal).unwrap_or_default()
}

fn trade_pb(t: TradeId) -> pb::TradeId {
    match t {
        TradeId::A => pb::TradeId::A,
        TradeId::B => pb::TradeId::B,
    }
}

/// The proto request of an open.
#[must_use]
pub fn open_request(bot_id: &str, w: &OpenWrite) -> pb::OpenPositionRequest {
    pb::OpenPositionRequest {
        bot_id: bot_id.to_owned(),
        slot_id: Some(w.slot),
        trade_id: trade_pb(w.trade) as i32,
        slot_mode: match w.slot_mode {
            SlotModeKind::Sticky => pb::SlotMode::Sticky,
            SlotModeKind::Legacy => pb::SlotMode::Legacy,
            SlotModeKind::Churner => pb::SlotMode::Churner,
        } as i32,
        cycle: w.cycle,
        open_key: w.open_key.clone(),
        entry_price: format_decimal(w.entry_price),
        entry_cost: format_decimal(w.entry_cost),
        entry_fee: format_decimal(w.entry_fee),
        entry_volume: format_decimal(w.entry_volume),
        entry_time: ts(w.entry_time),
        // No regime detector yet: never counts as ranging.
        entry_regime: pb::Regime::Unknown as i32,
        entry_volatility: "0".into(),
        original_exit_price: format_decimal(w.exit_price),
        target_profit_pct: format_decimal(w.target_profit_pct),
        exit_txid: w.exit_txid.clone().unwrap_or_default(),
        migration: w.migration,
    }
}

/// The proto request of a close.
#[must_use]
pub fn close_request(position_id: u64, key: &str, w: &CloseWrite) -> pb::ClosePositionRequest {
    pb::ClosePositionRequest {
        position_id,
        event_key: key.to_owned(),
        close_reason: match w.reason {
            CloseKind::Filled => pb::CloseReason::Filled,
            CloseKind::ExchangeCancelled => pb::CloseReason::ExchangeCancelled,
            CloseKind::WrittenOff => pb::CloseReason::WrittenOff,
        } as i32,
        exit_price: opt(w.exit_price),
        exit_cost: opt(w.exit_cost),
        exit_fee: opt(w.exit_fee),
        exit_time: ts(w.exit_time),
        exit_regime: pb::Regime::Unknown as i32,
        net_profit: opt(w.net_profit),
        reason: w.note.clone(),
        exit_txid: w.exit_txid.clone().unwrap_or_default(),
    }
}

/// The proto request of a reprice. A loss-funded move spends subsidy like
/// any subsidized one, so the ledger's reason is `subsidy` for both.
#[must_use]
pub fn reprice_request(
    position_id: u64,
    key: &str,
    w: &RepriceWrite,
) -> pb::RepricePositionRequest {
    use crate::engine::RepriceKind;
    pb::RepricePositionRequest {
        position_id,
        event_key: key.to_owned(),
        new_price: format_decimal(w.new_price),
        new_txid: w.new_txid.clone().unwrap_or_default(),
        reason: match w.kind {
            RepriceKind::Tighten => pb::RepriceReason::Tighten,
            RepriceKind::Subsidy | RepriceKind::LossFunded => pb::RepriceReason::Subsidy,
            RepriceKind::Operator => pb::RepriceReason::Operator,
        } as i32,
        subsidy_consumed: if w.kind == RepriceKind::Tighten {
            String::new()
        } else {
            format_decimal(w.subsidy_consumed)
        },
        at: ts(w.at),
    }
}

/// The proto request of an over-performance credit.
#[must_use]
pub fn over_performance_request(
    position_id: u64,
    key: &str,
    w: &OverPerformanceWrite,
) -> pb::JournalEventRequest {
    pb::JournalEventRequest {
        position_id,
        event_key: key.to_owned(),
        at: ts(w.at),
        event_type: pb::EventType::OverPerformance as i32,
        details: Some(pb::EventDetails {
            kind: Some(pb::event_details::Kind::OverPerformance(
                pb::OverPerformanceDetails {
                    expected_profit: format_decimal(w.expected_profit),
                    actual_profit: format_decimal(w.actual_profit),
                    excess: format_decimal(w.excess),
                },
            )),
        }),
    }
}

/// The proto request of a churner profit credit on its parent.
#[must_use]
pub fn churner_profit_request(
    position_id: u64,
    key: &str,
    w: &ChurnerProfitWrite,
) -> pb::JournalEventRequest {
    pb::JournalEventRequest {
        position_id,
        event_key: key.to_owned(),
        at: ts(w.at),
        event_type: pb::EventType::ChurnerProfit as i32,
        details: Some(pb::EventDetails {
            kind: Some(pb::event_details::Kind::ChurnerProfit(
                pb::ChurnerProfitDetails {
                    net_profit: format_decimal(w.net_profit),
                    churner_cycle_id: w.churner_open_key.clone(),
                },
            )),
        }),
    }
}

/// The proto request of a hand-over journal event.
#[must_use]
pub fn handed_over_request(
    position_id: u64,
    key: &str,
    w: &HandedOverWrite,
) -> pb::JournalEventRequest {
    pb::JournalEventRequest {
        position_id,
        event_key: key.to_owned(),
        at: ts(w.at),
        event_type: pb::EventType::HandedOver as i32,
        details: Some(pb::EventDetails {
            kind: Some(pb::event_details::Kind::HandedOver(pb::HandedOverDetails {
                reason: "churner exit timeout".into(),
                age_seconds: w.age_seconds,
            })),
        }),
    }
}

/// The proto request of an operator action on the bot as a whole.
#[must_use]
pub fn bot_journal_request(
    bot_id: &str,
    key: &str,
    w: &BotJournalWrite,
) -> pb::AppendBotJournalRequest {
    pb::AppendBotJournalRequest {
        bot_id: bot_id.to_owned(),
        event_key: key.to_owned(),
        at: ts(w.at),
        action: match w.action {
            BotActionKind::RegimeOverride => pb::BotAction::RegimeOverride,
            BotActionKind::RegimeOverrideCleared => pb::BotAction::RegimeOverrideCleared,
            BotActionKind::ChurnerReserve => pb::BotAction::ChurnerReserve,
            BotActionKind::ChurnerSpawn => pb::BotAction::ChurnerSpawn,
            BotActionKind::ChurnerKill => pb::BotAction::ChurnerKill,
        } as i32,
        detail: w.detail.clone(),
        reason: w.reason.clone(),
        operator: w.operator.clone(),
    }
}

/// The proto request of an operator action: `keep_holding` with its end
/// for a hold, `operator_action` otherwise.
#[must_use]
pub fn operator_request(position_id: u64, key: &str, w: &OperatorWrite) -> pb::JournalEventRequest {
    let (event_type, kind) = match w.hold_until {
        Some(until) => (
            pb::EventType::KeepHolding,
            pb::event_details::Kind::KeepHolding(pb::KeepHoldingDetails {
                hold_until: ts(until),
                reason: w.reason.clone(),
            }),
        ),
        None => (
            pb::EventType::OperatorAction,
            pb::event_details::Kind::OperatorAction(pb::OperatorActionDetails {
                action: w.action.clone(),
                reason: w.reason.clone(),
                operator: w.operator.clone(),
            }),
        ),
    };
    pb::JournalEventRequest {
        position_id,
        event_key: key.to_owned(),
        at: ts(w.at),
        event_type: event_type as i32,
        details: Some(pb::EventDetails { kind: Some(kind) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves: transport/server trouble is retried, refusals are parked,
    /// exactly as the brief lists the codes.
    #[test]
    fn status_codes_map_to_retry_or_park() {
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Cancelled,
            Code::Unknown,
            Code::ResourceExhausted,
            Code::Internal,
        ] {
            assert!(
                matches!(
                    classify_status(&Status::new(code, "x")),
                    DeliveryError::Retryable(_)
                ),
                "{code:?}"
            );
        }
        for code in [
            Code::InvalidArgument,
            Code::FailedPrecondition,
            Code::NotFound,
            Code::AlreadyExists,
        ] {
            assert!(
                matches!(
                    classify_status(&Status::new(code, "x")),
                    DeliveryError::Rejected(_)
                ),
                "{code:?}"
            );
        }
    }
}
