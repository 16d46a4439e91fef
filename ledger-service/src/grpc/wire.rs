//! Translation between `healgrid.ledger.v1` messages and domain types.
//!
//! Parsing here is purely syntactic (decimal strings, enums, timestamps,
//! oneofs) and names the field at fault; the semantic rules (signs, sizes,
//! time bounds) are applied by the domain commands, so in-process callers
//! get them too.

use healgrid_proto::{
    convert::{format_decimal, format_opt_decimal, utc_to_timestamp},
    ledger::v1 as pb,
};
use rust_decimal::Decimal;

use crate::domain::{
    BotAction, BotJournalCommand, BotJournalEntry, EventDetails, EventType, JournalEntry,
    LedgerError, Position, RepriceReason, SlotSubsidy,
    journal::{
        CancelledDetails, ChurnerProfitDetails, EventCommand, HandedOverDetails,
        KeepHoldingDetails, OperatorActionDetails, OverPerformanceDetails, RepriceCommand,
        WrittenOffDetails,
    },
    position::{
        CloseCommand, CloseReason, Entry, OpenCommand, Outcome, PositionStatus, Regime, SlotMode,
        TradeId,
    },
    validate,
};

/// Maps a wire enum to a domain value: 0 (unspecified) is "missing",
/// numbers outside the enum are "unknown".
fn required_enum<P, T>(
    field: &'static str,
    raw: i32,
    map: impl FnOnce(P) -> Option<T>,
) -> Result<T, LedgerError>
where
    P: TryFrom<i32>,
{
    if raw == 0 {
        return Err(LedgerError::invalid(field, "is required"));
    }
    P::try_from(raw)
        .ok()
        .and_then(map)
        .ok_or_else(|| LedgerError::invalid(field, format!("unknown enum value {raw}")))
}

fn trade_id(raw: i32) -> Result<TradeId, LedgerError> {
    required_enum("trade_id", raw, |v: pb::TradeId| match v {
        pb::TradeId::A => Some(TradeId::A),
        pb::TradeId::B => Some(TradeId::B),
        pb::TradeId::Unspecified => None,
    })
}

fn slot_mode(raw: i32) -> Result<SlotMode, LedgerError> {
    required_enum("slot_mode", raw, |v: pb::SlotMode| match v {
        pb::SlotMode::Legacy => Some(SlotMode::Legacy),
        pb::SlotMode::Sticky => Some(SlotMode::Sticky),
        pb::SlotMode::Churner => Some(SlotMode::Churner),
        pb::SlotMode::Unspecified => None,
    })
}

fn regime(field: &'static str, raw: i32) -> Result<Regime, LedgerError> {
    required_enum(field, raw, |v: pb::Regime| match v {
        pb::Regime::Unknown => Some(Regime::Unknown),
        pb::Regime::Bearish => Some(Regime::Bearish),
        pb::Regime::Ranging => Some(Regime::Ranging),
        pb::Regime::Bullish => Some(Regime::Bullish),
        pb::Regime::Unspecified => None,
    })
}

fn close_reason(raw: i32) -> Result<CloseReason, LedgerError> {
    required_enum("close_reason", raw, |v: pb::CloseReason| match v {
        pb::CloseReason::Filled => Some(CloseReason::Filled),
        pb::CloseReason::WrittenOff => Some(CloseReason::WrittenOff),
        pb::CloseReason::SoftClosed => Some(CloseReason::SoftClosed),
        pb::CloseReason::Cancelled => Some(CloseReason::Cancelled),
        pb::CloseReason::ExchangeCancelled => Some(CloseReason::ExchangeCancelled),
        pb::CloseReason::Unspecified => None,
    })
}

fn reprice_reason(raw: i32) -> Result<RepriceReason, LedgerError> {
    required_enum("reason", raw, |v: pb::RepriceReason| match v {
        pb::RepriceReason::Tighten => Some(RepriceReason::Tighten),
        pb::RepriceReason::Subsidy => Some(RepriceReason::Subsidy),
        pb::RepriceReason::Operator => Some(RepriceReason::Operator),
        pb::RepriceReason::Unspecified => None,
    })
}

fn event_type(raw: i32) -> Result<EventType, LedgerError> {
    required_enum("event_type", raw, |v: pb::EventType| {
        Some(match v {
            pb::EventType::Unspecified => return None,
            pb::EventType::Created => EventType::Created,
            pb::EventType::Repriced => EventType::Repriced,
            pb::EventType::Filled => EventType::Filled,
            pb::EventType::WrittenOff => EventType::WrittenOff,
            pb::EventType::Cancelled => EventType::Cancelled,
            pb::EventType::ChurnerProfit => EventType::ChurnerProfit,
            pb::EventType::OverPerformance => EventType::OverPerformance,
            pb::EventType::OperatorAction => EventType::OperatorAction,
            pb::EventType::KeepHolding => EventType::KeepHolding,
            pb::EventType::HandedOver => EventType::HandedOver,
            pb::EventType::SoftClosed => EventType::SoftClosed,
            pb::EventType::ExchangeCancelled => EventType::ExchangeCancelled,
        })
    })
}

/// A required slot id (proto3 `optional`, so 0 is a real slot).
pub fn slot_id(value: Option<u32>) -> Result<u32, LedgerError> {
    value.ok_or_else(|| LedgerError::invalid("slot_id", "is required"))
}

/// Parses `OpenPosition`.
pub fn open_command(r: pb::OpenPositionRequest) -> Result<OpenCommand, LedgerError> {
    Ok(OpenCommand {
        slot_id: slot_id(r.slot_id)?,
        trade_id: trade_id(r.trade_id)?,
        slot_mode: slot_mode(r.slot_mode)?,
        cycle: r.cycle,
        entry: Entry {
            price: validate::decimal("entry_price", &r.entry_price)?,
            cost: validate::decimal("entry_cost", &r.entry_cost)?,
            fee: validate::decimal("entry_fee", &r.entry_fee)?,
            volume: validate::decimal("entry_volume", &r.entry_volume)?,
            time: validate::timestamp("entry_time", r.entry_time.as_ref())?,
            regime: regime("entry_regime", r.entry_regime)?,
            volatility: validate::decimal("entry_volatility", &r.entry_volatility)?,
        },
        original_exit_price: validate::decimal("original_exit_price", &r.original_exit_price)?,
        target_profit_pct: validate::decimal("target_profit_pct", &r.target_profit_pct)?,
        bot_id: r.bot_id,
        open_key: r.open_key,
        exit_txid: r.exit_txid,
        migration: r.migration,
    })
}

/// Parses `RepricePosition`.
pub fn reprice_command(r: pb::RepricePositionRequest) -> Result<RepriceCommand, LedgerError> {
    Ok(RepriceCommand {
        position_id: r.position_id,
        new_price: validate::decimal("new_price", &r.new_price)?,
        reason: reprice_reason(r.reason)?,
        subsidy_consumed: validate::opt_decimal("subsidy_consumed", &r.subsidy_consumed)?
            .unwrap_or(Decimal::ZERO),
        at: validate::timestamp("at", r.at.as_ref())?,
        event_key: r.event_key,
        new_txid: r.new_txid,
    })
}

/// Parses `ClosePosition`.
pub fn close_command(r: pb::ClosePositionRequest) -> Result<CloseCommand, LedgerError> {
    Ok(CloseCommand {
        position_id: r.position_id,
        outcome: Outcome {
            close_reason: close_reason(r.close_reason)?,
            exit_price: validate::opt_decimal("exit_price", &r.exit_price)?,
            exit_cost: validate::opt_decimal("exit_cost", &r.exit_cost)?,
            exit_fee: validate::opt_decimal("exit_fee", &r.exit_fee)?,
            exit_time: validate::timestamp("exit_time", r.exit_time.as_ref())?,
            exit_regime: regime("exit_regime", r.exit_regime)?,
            net_profit: validate::opt_decimal("net_profit", &r.net_profit)?,
        },
        event_key: r.event_key,
        reason: r.reason,
        exit_txid: r.exit_txid,
    })
}

/// Parses `JournalEvent`; the details variant must match `event_type`.
pub fn event_command(r: pb::JournalEventRequest) -> Result<EventCommand, LedgerError> {
    use pb::event_details::Kind;
    let event_type = event_type(r.event_type)?;
    let kind = r
        .details
        .and_then(|d| d.kind)
        .ok_or_else(|| LedgerError::invalid("details", "is required"))?;
    let details = match (event_type, kind) {
        (EventType::ChurnerProfit, Kind::ChurnerProfit(d)) => {
            EventDetails::ChurnerProfit(ChurnerProfitDetails {
                net_profit: validate::decimal("details.churner_profit.net_profit", &d.net_profit)?,
                churner_cycle_id: d.churner_cycle_id,
            })
        }
        (EventType::OverPerformance, Kind::OverPerformance(d)) => {
            EventDetails::OverPerformance(OverPerformanceDetails {
                expected_profit: validate::decimal(
                    "details.over_performance.expected_profit",
                    &d.expected_profit,
                )?,
                actual_profit: validate::decimal(
                    "details.over_performance.actual_profit",
                    &d.actual_profit,
                )?,
                excess: validate::decimal("details.over_performance.excess", &d.excess)?,
            })
        }
        (EventType::OperatorAction, Kind::OperatorAction(d)) => {
            EventDetails::OperatorAction(OperatorActionDetails {
                action: d.action,
                reason: d.reason,
                operator: d.operator,
            })
        }
        (EventType::KeepHolding, Kind::KeepHolding(d)) => {
            EventDetails::KeepHolding(KeepHoldingDetails {
                hold_until: validate::timestamp(
                    "details.keep_holding.hold_until",
                    d.hold_until.as_ref(),
                )?,
                reason: d.reason,
            })
        }
        (EventType::HandedOver, Kind::HandedOver(d)) => {
            EventDetails::HandedOver(HandedOverDetails {
                reason: d.reason,
                age_seconds: d.age_seconds,
            })
        }
        (
            EventType::Created
            | EventType::Repriced
            | EventType::Filled
            | EventType::WrittenOff
            | EventType::Cancelled
            | EventType::SoftClosed
            | EventType::ExchangeCancelled,
            _,
        ) => {
            return Err(LedgerError::invalid(
                "event_type",
                format!("{event_type} cannot be journaled directly; use its own RPC"),
            ));
        }
        (_, _) => {
            return Err(LedgerError::invalid(
                "details",
                format!("variant does not match event_type {event_type}"),
            ));
        }
    };
    Ok(EventCommand {
        position_id: r.position_id,
        at: validate::timestamp("at", r.at.as_ref())?,
        event_key: r.event_key,
        details,
    })
}

fn regime_to_pb(r: Regime) -> pb::Regime {
    match r {
        Regime::Unknown => pb::Regime::Unknown,
        Regime::Bearish => pb::Regime::Bearish,
        Regime::Ranging => pb::Regime::Ranging,
        Regime::Bullish => pb::Regime::Bullish,
    }
}

fn slot_mode_to_pb(m: SlotMode) -> pb::SlotMode {
    match m {
        SlotMode::Legacy => pb::SlotMode::Legacy,
        SlotMode::Sticky => pb::SlotMode::Sticky,
        SlotMode::Churner => pb::SlotMode::Churner,
    }
}

fn reprice_reason_to_pb(r: RepriceReason) -> pb::RepriceReason {
    match r {
        RepriceReason::Tighten => pb::RepriceReason::Tighten,
        RepriceReason::Subsidy => pb::RepriceReason::Subsidy,
        RepriceReason::Operator => pb::RepriceReason::Operator,
    }
}

fn close_reason_to_pb(r: CloseReason) -> pb::CloseReason {
    match r {
        CloseReason::Filled => pb::CloseReason::Filled,
        CloseReason::WrittenOff => pb::CloseReason::WrittenOff,
        CloseReason::SoftClosed => pb::CloseReason::SoftClosed,
        CloseReason::Cancelled => pb::CloseReason::Cancelled,
        CloseReason::ExchangeCancelled => pb::CloseReason::ExchangeCancelled,
    }
}

fn event_type_to_pb(t: EventType) -> pb::EventType {
    match t {
        EventType::Created => pb::EventType::Created,
        EventType::Repriced => pb::EventType::Repriced,
        EventType::Filled => pb::EventType::Filled,
        EventType::WrittenOff => pb::EventType::WrittenOff,
        EventType::Cancelled => pb::EventType::Cancelled,
        EventType::ChurnerProfit => pb::EventType::ChurnerProfit,
        EventType::OverPerformance => pb::EventType::OverPerformance,
        EventType::OperatorAction => pb::EventType::OperatorAction,
        EventType::KeepHolding => pb::EventType::KeepHolding,
        EventType::HandedOver => pb::EventType::HandedOver,
        EventType::SoftClosed => pb::EventType::SoftClosed,
        EventType::ExchangeCancelled => pb::EventType::ExchangeCancelled,
    }
}

/// A position for the wire.
pub fn position_to_pb(p: Position) -> pb::Position {
    let outcome = p.outcome.as_ref();
    pb::Position {
        position_id: p.position_id,
        slot_id: p.slot_id,
        trade_id: match p.trade_id {
            TradeId::A => pb::TradeId::A,
            TradeId::B => pb::TradeId::B,
        } as i32,
        slot_mode: slot_mode_to_pb(p.slot_mode) as i32,
        cycle: p.cycle,
        entry_price: format_decimal(p.entry.price),
        entry_cost: format_decimal(p.entry.cost),
        entry_fee: format_decimal(p.entry.fee),
        entry_volume: format_decimal(p.entry.volume),
        entry_time: Some(utc_to_timestamp(p.entry.time)),
        entry_regime: regime_to_pb(p.entry.regime) as i32,
        entry_volatility: format_decimal(p.entry.volatility),
        current_exit_price: format_decimal(p.current_exit_price),
        original_exit_price: format_decimal(p.original_exit_price),
        target_profit_pct: format_decimal(p.target_profit_pct),
        times_repriced: p.times_repriced,
        status: match p.status {
            PositionStatus::Open => pb::PositionStatus::Open,
            PositionStatus::Closed => pb::PositionStatus::Closed,
        } as i32,
        exit_price: format_opt_decimal(outcome.and_then(|o| o.exit_price)),
        exit_cost: format_opt_decimal(outcome.and_then(|o| o.exit_cost)),
        exit_fee: format_opt_decimal(outcome.and_then(|o| o.exit_fee)),
        exit_time: outcome.map(|o| utc_to_timestamp(o.exit_time)),
        exit_regime: outcome.map_or(0, |o| regime_to_pb(o.exit_regime) as i32),
        net_profit: format_opt_decimal(outcome.and_then(|o| o.net_profit)),
        close_reason: outcome.map_or(0, |o| close_reason_to_pb(o.close_reason) as i32),
        bot_id: p.bot_id,
        open_key: p.open_key,
        exit_txid: p.exit_txid,
    }
}

fn written_off_to_pb(d: WrittenOffDetails) -> pb::WrittenOffDetails {
    pb::WrittenOffDetails {
        close_price: format_decimal(d.close_price),
        realized_loss: format_decimal(d.realized_loss),
        reason: d.reason,
    }
}

fn cancelled_to_pb(d: CancelledDetails) -> pb::CancelledDetails {
    pb::CancelledDetails {
        reason: d.reason,
        age_seconds: d.age_seconds,
    }
}

fn details_to_pb(d: EventDetails) -> pb::EventDetails {
    use pb::event_details::Kind;
    let kind = match d {
        EventDetails::Created(c) => Kind::Created(pb::CreatedDetails {
            entry_price: format_decimal(c.entry_price),
            exit_price: format_decimal(c.exit_price),
            regime: regime_to_pb(c.regime) as i32,
            slot_mode: slot_mode_to_pb(c.slot_mode) as i32,
            migration: c.migration,
        }),
        EventDetails::Repriced(r) => Kind::Repriced(pb::RepricedDetails {
            old_price: format_decimal(r.old_price),
            new_price: format_decimal(r.new_price),
            old_txid: r.old_txid,
            new_txid: r.new_txid,
            reason: reprice_reason_to_pb(r.reason) as i32,
            subsidy_consumed: format_decimal(r.subsidy_consumed),
        }),
        EventDetails::Filled(f) => Kind::Filled(pb::FilledDetails {
            fill_price: format_decimal(f.fill_price),
            fill_cost: format_decimal(f.fill_cost),
            fill_fee: format_decimal(f.fill_fee),
            net_profit: format_decimal(f.net_profit),
        }),
        EventDetails::WrittenOff(w) | EventDetails::SoftClosed(w) => {
            Kind::WrittenOff(written_off_to_pb(w))
        }
        EventDetails::Cancelled(c) | EventDetails::ExchangeCancelled(c) => {
            Kind::Cancelled(cancelled_to_pb(c))
        }
        EventDetails::ChurnerProfit(c) => Kind::ChurnerProfit(pb::ChurnerProfitDetails {
            net_profit: format_decimal(c.net_profit),
            churner_cycle_id: c.churner_cycle_id,
        }),
        EventDetails::OverPerformance(o) => Kind::OverPerformance(pb::OverPerformanceDetails {
            expected_profit: format_decimal(o.expected_profit),
            actual_profit: format_decimal(o.actual_profit),
            excess: format_decimal(o.excess),
        }),
        EventDetails::OperatorAction(o) => Kind::OperatorAction(pb::OperatorActionDetails {
            action: o.action,
            reason: o.reason,
            operator: o.operator,
        }),
        EventDetails::KeepHolding(k) => Kind::KeepHolding(pb::KeepHoldingDetails {
            hold_until: Some(utc_to_timestamp(k.hold_until)),
            reason: k.reason,
        }),
        EventDetails::HandedOver(h) => Kind::HandedOver(pb::HandedOverDetails {
            reason: h.reason,
            age_seconds: h.age_seconds,
        }),
    };
    pb::EventDetails { kind: Some(kind) }
}

/// A journal row for the wire.
pub fn entry_to_pb(e: JournalEntry) -> pb::JournalEntry {
    pb::JournalEntry {
        journal_id: e.journal_id,
        position_id: e.position_id,
        slot_id: e.slot_id,
        at: Some(utc_to_timestamp(e.at)),
        event_type: event_type_to_pb(e.details.event_type()) as i32,
        details: Some(details_to_pb(e.details)),
        bot_id: e.bot_id,
        event_key: e.event_key,
    }
}

fn bot_action(raw: i32) -> Result<BotAction, LedgerError> {
    required_enum("action", raw, |v: pb::BotAction| match v {
        pb::BotAction::RegimeOverride => Some(BotAction::RegimeOverride),
        pb::BotAction::RegimeOverrideCleared => Some(BotAction::RegimeOverrideCleared),
        pb::BotAction::ChurnerReserve => Some(BotAction::ChurnerReserve),
        pb::BotAction::ChurnerSpawn => Some(BotAction::ChurnerSpawn),
        pb::BotAction::ChurnerKill => Some(BotAction::ChurnerKill),
        pb::BotAction::Unspecified => None,
    })
}

fn bot_action_to_pb(a: BotAction) -> pb::BotAction {
    match a {
        BotAction::RegimeOverride => pb::BotAction::RegimeOverride,
        BotAction::RegimeOverrideCleared => pb::BotAction::RegimeOverrideCleared,
        BotAction::ChurnerReserve => pb::BotAction::ChurnerReserve,
        BotAction::ChurnerSpawn => pb::BotAction::ChurnerSpawn,
        BotAction::ChurnerKill => pb::BotAction::ChurnerKill,
    }
}

/// Parses `AppendBotJournal`.
pub fn bot_journal_command(
    r: pb::AppendBotJournalRequest,
) -> Result<BotJournalCommand, LedgerError> {
    Ok(BotJournalCommand {
        action: bot_action(r.action)?,
        at: validate::timestamp("at", r.at.as_ref())?,
        bot_id: r.bot_id,
        event_key: r.event_key,
        detail: r.detail,
        reason: r.reason,
        operator: r.operator,
    })
}

/// A bot-journal row for the wire.
pub fn bot_entry_to_pb(e: BotJournalEntry) -> pb::BotJournalEntry {
    pb::BotJournalEntry {
        bot_journal_id: e.bot_journal_id,
        at: Some(utc_to_timestamp(e.at)),
        action: bot_action_to_pb(e.action) as i32,
        bot_id: e.bot_id,
        detail: e.detail,
        reason: e.reason,
        operator: e.operator,
        event_key: e.event_key,
    }
}

/// A slot's subsidy for the wire.
pub fn subsidy_to_pb(s: SlotSubsidy) -> pb::SubsidyBalance {
    let t = s.totals;
    pb::SubsidyBalance {
        slot_id: s.slot_id,
        balance: format_decimal(t.balance()),
        earned: format_decimal(t.earned()),
        consumed: format_decimal(t.consumed()),
        earned_churner_profit: format_decimal(t.churner_profit),
        earned_over_performance: format_decimal(t.over_performance),
        consumed_subsidy: format_decimal(t.subsidy),
        consumed_operator: format_decimal(t.operator),
        bot_id: s.bot_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_and_reason(e: LedgerError) -> (&'static str, String) {
        match e {
            LedgerError::Invalid { field, reason } => (field, reason),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn enums_distinguish_missing_from_unknown() {
        assert_eq!(
            field_and_reason(trade_id(0).unwrap_err()),
            ("trade_id", "is required".into())
        );
        let (field, reason) = field_and_reason(regime("exit_regime", 17).unwrap_err());
        assert_eq!(field, "exit_regime");
        assert!(reason.contains("17"), "{reason}");
        assert_eq!(
            close_reason(pb::CloseReason::SoftClosed as i32).unwrap(),
            CloseReason::SoftClosed
        );
    }

    #[test]
    fn details_must_match_the_event_type() {
        let request = pb::JournalEventRequest {
            position_id: 1,
            event_key: "k".into(),
            at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            event_type: pb::EventType::KeepHolding as i32,
            details: Some(pb::EventDetails {
                kind: Some(pb::event_details::Kind::HandedOver(pb::HandedOverDetails {
                    reason: "timeout".into(),
                    age_seconds: 5,
                })),
            }),
        };
        assert_eq!(
            field_and_reason(event_command(request).unwrap_err()).0,
            "details"
        );
    }

    #[test]
    fn close_events_keep_their_own_type_on_the_wire() {
        let entry = JournalEntry {
            journal_id: 9,
            position_id: 1,
            bot_id: "b".into(),
            slot_id: 0,
            at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            details: EventDetails::SoftClosed(WrittenOffDetails {
                close_price: Decimal::new(1000, 4),
                realized_loss: Decimal::new(5, 2),
                reason: "operator".into(),
            }),
            event_key: "k".into(),
        };
        let wire = entry_to_pb(entry);
        assert_eq!(wire.event_type, pb::EventType::SoftClosed as i32);
        match wire.details.unwrap().kind.unwrap() {
            pb::event_details::Kind::WrittenOff(d) => assert_eq!(d.close_price, "0.1"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
