//! The append-only journal: event types, their typed details, and which
//! events may be appended through `JournalEvent`.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{
    LedgerError,
    position::{CloseCommand, CloseReason, Position, Regime, SlotMode, require_id, text_enum},
    subsidy::SubsidyDelta,
    validate,
};

text_enum!(
    /// Kinds of journal rows.
    EventType {
        /// The position was opened.
        Created => "created",
        /// The exit moved.
        Repriced => "repriced",
        /// Closed: the exit filled.
        Filled => "filled",
        /// Closed at a loss by the write-off path.
        WrittenOff => "written_off",
        /// Closed by healgrid's cancellation.
        Cancelled => "cancelled",
        /// Subsidy credit from a churner round trip.
        ChurnerProfit => "churner_profit",
        /// Subsidy credit from an exit that beat its target.
        OverPerformance => "over_performance",
        /// An operator intervened.
        OperatorAction => "operator_action",
        /// The position is deliberately held.
        KeepHolding => "keep_holding",
        /// A timed-out churner round trip became a sticky position.
        HandedOver => "handed_over",
        /// Closed by the operator without an exchange fill.
        SoftClosed => "soft_closed",
        /// Closed because the exchange cancelled or expired the exit.
        ExchangeCancelled => "exchange_cancelled",
    }
);

text_enum!(
    /// Why an exit was repriced.
    RepriceReason {
        /// Moved towards the market at no subsidy cost.
        Tighten => "tighten",
        /// Paid for by the slot's subsidy.
        Subsidy => "subsidy",
        /// Ordered by an operator; may spend subsidy.
        Operator => "operator",
    }
);

/// Details of `created`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedDetails {
    /// Entry fill price.
    pub entry_price: Decimal,
    /// First exit price.
    pub exit_price: Decimal,
    /// Regime at entry.
    pub regime: Regime,
    /// Mode of the slot.
    pub slot_mode: SlotMode,
    /// Imported from a pre-ledger runtime.
    pub migration: bool,
}

/// Details of `repriced`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepricedDetails {
    /// Exit price before the move.
    pub old_price: Decimal,
    /// Exit price after the move.
    pub new_price: Decimal,
    /// Exit txid before the move.
    pub old_txid: String,
    /// Exit txid after the move.
    pub new_txid: String,
    /// Why it moved.
    pub reason: RepriceReason,
    /// Subsidy spent (zero for `tighten`).
    pub subsidy_consumed: Decimal,
}

/// Details of `filled`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilledDetails {
    /// Exit fill price.
    pub fill_price: Decimal,
    /// Exit fill cost.
    pub fill_cost: Decimal,
    /// Exit fee.
    pub fill_fee: Decimal,
    /// Net profit of the round trip.
    pub net_profit: Decimal,
}

/// Details of `written_off` and `soft_closed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenOffDetails {
    /// Price the position was closed at.
    pub close_price: Decimal,
    /// Loss realized (the negated net profit).
    pub realized_loss: Decimal,
    /// Free-text reason.
    pub reason: String,
}

/// Details of `cancelled` and `exchange_cancelled`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelledDetails {
    /// Free-text reason.
    pub reason: String,
    /// Seconds from entry to cancellation.
    pub age_seconds: i64,
}

/// Details of `churner_profit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChurnerProfitDetails {
    /// Credit earned; must be positive.
    pub net_profit: Decimal,
    /// Identifies the churner round trip.
    pub churner_cycle_id: String,
}

/// Details of `over_performance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverPerformanceDetails {
    /// Profit the target promised.
    pub expected_profit: Decimal,
    /// Profit realized.
    pub actual_profit: Decimal,
    /// Credit earned; must be positive.
    pub excess: Decimal,
}

/// Details of `operator_action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorActionDetails {
    /// What was done.
    pub action: String,
    /// Why.
    pub reason: String,
    /// Who did it.
    pub operator: String,
}

/// Details of `keep_holding`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeepHoldingDetails {
    /// Hold until this time.
    pub hold_until: DateTime<Utc>,
    /// Why.
    pub reason: String,
}

/// Details of `handed_over`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandedOverDetails {
    /// Why.
    pub reason: String,
    /// Seconds the churner round trip had run.
    pub age_seconds: i64,
}

/// Typed details of one journal row; the variant determines the event type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventDetails {
    /// `created`: the position was opened.
    Created(CreatedDetails),
    /// `repriced`: the exit moved.
    Repriced(RepricedDetails),
    /// `filled`: closed, the exit filled.
    Filled(FilledDetails),
    /// `written_off`: closed at a loss by the write-off path.
    WrittenOff(WrittenOffDetails),
    /// `cancelled`: closed by healgrid's cancellation.
    Cancelled(CancelledDetails),
    /// `churner_profit`: subsidy credit from a churner round trip.
    ChurnerProfit(ChurnerProfitDetails),
    /// `over_performance`: subsidy credit from an exit that beat its target.
    OverPerformance(OverPerformanceDetails),
    /// `operator_action`: an operator intervened.
    OperatorAction(OperatorActionDetails),
    /// `keep_holding`: the position is deliberately held.
    KeepHolding(KeepHoldingDetails),
    /// `handed_over`: a timed-out churner round trip became a sticky position.
    HandedOver(HandedOverDetails),
    /// `soft_closed`: closed by the operator without an exchange fill.
    SoftClosed(WrittenOffDetails),
    /// `exchange_cancelled`: closed because the exchange cancelled or expired the exit.
    ExchangeCancelled(CancelledDetails),
}

impl EventDetails {
    /// The event type these details belong to.
    pub fn event_type(&self) -> EventType {
        match self {
            Self::Created(_) => EventType::Created,
            Self::Repriced(_) => EventType::Repriced,
            Self::Filled(_) => EventType::Filled,
            Self::WrittenOff(_) => EventType::WrittenOff,
            Self::Cancelled(_) => EventType::Cancelled,
            Self::ChurnerProfit(_) => EventType::ChurnerProfit,
            Self::OverPerformance(_) => EventType::OverPerformance,
            Self::OperatorAction(_) => EventType::OperatorAction,
            Self::KeepHolding(_) => EventType::KeepHolding,
            Self::HandedOver(_) => EventType::HandedOver,
            Self::SoftClosed(_) => EventType::SoftClosed,
            Self::ExchangeCancelled(_) => EventType::ExchangeCancelled,
        }
    }

    /// How this event moves the slot's subsidy (SPEC §3.3): credits from
    /// churner profit and over-performance, debits from reprices with reason
    /// `subsidy` or `operator`.
    pub fn subsidy_delta(&self) -> SubsidyDelta {
        match self {
            Self::ChurnerProfit(d) => SubsidyDelta {
                churner_profit: d.net_profit,
                ..SubsidyDelta::default()
            },
            Self::OverPerformance(d) => SubsidyDelta {
                over_performance: d.excess,
                ..SubsidyDelta::default()
            },
            Self::Repriced(d) if d.reason == RepriceReason::Subsidy => SubsidyDelta {
                subsidy: d.subsidy_consumed,
                ..SubsidyDelta::default()
            },
            Self::Repriced(d) if d.reason == RepriceReason::Operator => SubsidyDelta {
                operator: d.subsidy_consumed,
                ..SubsidyDelta::default()
            },
            _ => SubsidyDelta::default(),
        }
    }

    /// Serializes for storage.
    pub fn to_json(&self) -> String {
        // Serializing plain structs of strings, decimals and times cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Deserializes from storage.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// One immutable journal row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Assigned by the ledger; increases with every append.
    pub journal_id: u64,
    /// Position the row belongs to.
    pub position_id: u64,
    /// Bot of the position (denormalized for per-slot queries).
    pub bot_id: String,
    /// Slot of the position (denormalized for per-slot queries).
    pub slot_id: u32,
    /// When the event happened.
    pub at: DateTime<Utc>,
    /// Typed details; the variant is the event type.
    pub details: EventDetails,
    /// Idempotency key of the write that appended it.
    pub event_key: String,
}

/// A request to append a credit, note, hold or hand-over to a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCommand {
    /// The position the event belongs to.
    pub position_id: u64,
    /// Idempotency key.
    pub event_key: String,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    pub details: EventDetails,
}

impl EventCommand {
    /// Checks fields and that the event type may be appended directly:
    /// `created`, `repriced` and close events have their own RPCs because
    /// they change the position too.
    pub fn validated(mut self, now: DateTime<Utc>) -> Result<Self, LedgerError> {
        require_id(self.position_id)?;
        validate::id("event_key", &self.event_key)?;
        self.at = validate::time("at", self.at, now)?;
        match &mut self.details {
            EventDetails::ChurnerProfit(d) => {
                validate::positive("details.churner_profit.net_profit", d.net_profit)?;
                validate::text(
                    "details.churner_profit.churner_cycle_id",
                    &d.churner_cycle_id,
                )?;
            }
            EventDetails::OverPerformance(d) => {
                validate::positive("details.over_performance.excess", d.excess)?;
            }
            EventDetails::OperatorAction(d) => {
                validate::text("details.operator_action.action", &d.action)?;
                validate::text("details.operator_action.reason", &d.reason)?;
                validate::text("details.operator_action.operator", &d.operator)?;
            }
            EventDetails::KeepHolding(d) => {
                validate::text("details.keep_holding.reason", &d.reason)?;
                d.hold_until = validate::time_any("details.keep_holding.hold_until", d.hold_until)?;
            }
            EventDetails::HandedOver(d) => {
                validate::text("details.handed_over.reason", &d.reason)?;
                if d.age_seconds < 0 {
                    return Err(LedgerError::invalid(
                        "details.handed_over.age_seconds",
                        format!("must not be negative, got {}", d.age_seconds),
                    ));
                }
            }
            other => {
                return Err(LedgerError::invalid(
                    "event_type",
                    format!(
                        "{} cannot be journaled directly; use its own RPC",
                        other.event_type()
                    ),
                ));
            }
        }
        Ok(self)
    }

    /// Checks the event against the stored position: credits and operator
    /// notes may follow a close (over-performance is only known then), holds
    /// and hand-overs need an open position.
    pub fn check_position(&self, position: &Position) -> Result<(), LedgerError> {
        match self.open_required() {
            Some(action) => position.ensure_open(action),
            None => Ok(()),
        }
    }

    /// The action to name when the event needs an open position and finds
    /// it closed; `None` for events that closed positions accept.
    pub fn open_required(&self) -> Option<&'static str> {
        match self.details {
            EventDetails::KeepHolding(_) => Some("keep_holding"),
            EventDetails::HandedOver(_) => Some("handed_over"),
            _ => None,
        }
    }
}

/// A request to move a position's exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepriceCommand {
    /// The position whose exit moves.
    pub position_id: u64,
    /// Idempotency key of the reprice.
    pub event_key: String,
    /// New exit price.
    pub new_price: Decimal,
    /// Exchange txid of the new exit order.
    pub new_txid: String,
    /// Why the exit moved.
    pub reason: RepriceReason,
    /// Subsidy spent on the move.
    pub subsidy_consumed: Decimal,
    /// When the move happened.
    pub at: DateTime<Utc>,
}

impl RepriceCommand {
    /// Checks every field; `tighten` never spends subsidy.
    pub fn validated(mut self, now: DateTime<Utc>) -> Result<Self, LedgerError> {
        require_id(self.position_id)?;
        validate::id("event_key", &self.event_key)?;
        validate::opt_id("new_txid", &self.new_txid)?;
        validate::positive("new_price", self.new_price)?;
        validate::non_negative("subsidy_consumed", self.subsidy_consumed)?;
        if self.reason == RepriceReason::Tighten && !self.subsidy_consumed.is_zero() {
            return Err(LedgerError::invalid(
                "subsidy_consumed",
                format!(
                    "must be zero when reason is tighten, got \"{}\"",
                    self.subsidy_consumed
                ),
            ));
        }
        self.at = validate::time("at", self.at, now)?;
        Ok(self)
    }
}

/// The close event of a close: derived here, beside the event types, so
/// positions need not know the journal.
impl CloseCommand {
    /// Checks the close against the stored position and derives the details
    /// of the matching close event.
    pub fn close_details(&self, position: &Position) -> Result<EventDetails, LedgerError> {
        position.ensure_open("close")?;
        let o = &self.outcome;
        if o.exit_time < position.entry.time {
            return Err(LedgerError::invalid(
                "exit_time",
                format!(
                    "is before the entry_time {} of position {}",
                    position.entry.time, position.position_id
                ),
            ));
        }
        let zero = Decimal::ZERO;
        let age_seconds = (o.exit_time - position.entry.time).num_seconds();
        let written_off = || WrittenOffDetails {
            close_price: o.exit_price.unwrap_or(zero),
            realized_loss: -o.net_profit.unwrap_or(zero),
            reason: self.reason.clone(),
        };
        let cancelled = || CancelledDetails {
            reason: self.reason.clone(),
            age_seconds,
        };
        Ok(match o.close_reason {
            CloseReason::Filled => EventDetails::Filled(FilledDetails {
                fill_price: o.exit_price.unwrap_or(zero),
                fill_cost: o.exit_cost.unwrap_or(zero),
                fill_fee: o.exit_fee.unwrap_or(zero),
                net_profit: o.net_profit.unwrap_or(zero),
            }),
            CloseReason::WrittenOff => EventDetails::WrittenOff(written_off()),
            CloseReason::SoftClosed => EventDetails::SoftClosed(written_off()),
            CloseReason::Cancelled => EventDetails::Cancelled(cancelled()),
            CloseReason::ExchangeCancelled => EventDetails::ExchangeCancelled(cancelled()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::position::{Outcome, PositionStatus, tests::open_command};
    use rust_decimal_macros::dec;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    #[test]
    fn details_round_trip_through_json() {
        let d = EventDetails::Repriced(RepricedDetails {
            old_price: dec!(0.101),
            new_price: dec!(0.1005),
            old_txid: "A".into(),
            new_txid: "B".into(),
            reason: RepriceReason::Subsidy,
            subsidy_consumed: dec!(0.05),
        });
        assert_eq!(EventDetails::from_json(&d.to_json()).unwrap(), d);
        assert!(
            d.to_json().contains("\"0.05\""),
            "decimals are stored as strings"
        );
    }

    #[test]
    fn subsidy_deltas_follow_the_spec() {
        let reprice = |reason| {
            EventDetails::Repriced(RepricedDetails {
                old_price: dec!(1),
                new_price: dec!(1),
                old_txid: String::new(),
                new_txid: String::new(),
                reason,
                subsidy_consumed: dec!(2),
            })
        };
        assert_eq!(
            reprice(RepriceReason::Subsidy).subsidy_delta().subsidy,
            dec!(2)
        );
        assert_eq!(
            reprice(RepriceReason::Operator).subsidy_delta().operator,
            dec!(2)
        );
        assert!(reprice(RepriceReason::Tighten).subsidy_delta().is_zero());
        let credit = EventDetails::OverPerformance(OverPerformanceDetails {
            expected_profit: dec!(1),
            actual_profit: dec!(1.5),
            excess: dec!(0.5),
        });
        assert_eq!(credit.subsidy_delta().over_performance, dec!(0.5));
    }

    #[test]
    fn only_side_events_are_journaled_directly() {
        let cmd = |details| EventCommand {
            position_id: 1,
            event_key: "k".into(),
            at: at(),
            details,
        };
        let filled = EventDetails::Filled(FilledDetails {
            fill_price: dec!(1),
            fill_cost: dec!(1),
            fill_fee: dec!(0),
            net_profit: dec!(0),
        });
        let e = cmd(filled).validated(Utc::now()).unwrap_err();
        assert!(e.to_string().starts_with("event_type"), "{e}");
        let zero_credit = EventDetails::ChurnerProfit(ChurnerProfitDetails {
            net_profit: dec!(0),
            churner_cycle_id: "c".into(),
        });
        let e = cmd(zero_credit).validated(Utc::now()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("details.churner_profit.net_profit"),
            "{e}"
        );
    }

    #[test]
    fn close_requires_fill_figures_and_an_open_position() {
        let now = Utc::now();
        let exit_time = DateTime::from_timestamp(1_700_000_100, 0).unwrap();
        let cmd = CloseCommand {
            position_id: 1,
            event_key: "close-1".into(),
            outcome: Outcome {
                close_reason: CloseReason::Filled,
                exit_price: Some(dec!(0.101)),
                exit_cost: Some(dec!(10.1)),
                exit_fee: Some(dec!(0.026)),
                exit_time,
                exit_regime: Regime::Ranging,
                net_profit: None,
            },
            reason: String::new(),
            exit_txid: String::new(),
        };
        let e = cmd.clone().validated(now).unwrap_err();
        assert!(e.to_string().starts_with("net_profit"), "{e}");

        let mut cancel = cmd.clone();
        cancel.outcome.close_reason = CloseReason::Cancelled;
        let cancel = cancel.validated(now).unwrap();
        let mut pos = open_command("b", 0, "k").to_position(1);
        match cancel.close_details(&pos).unwrap() {
            EventDetails::Cancelled(d) => assert_eq!(d.age_seconds, 100),
            other => panic!("unexpected {other:?}"),
        }
        pos.status = PositionStatus::Closed;
        assert!(matches!(
            cancel.close_details(&pos),
            Err(LedgerError::PositionClosed { .. })
        ));
    }

    #[test]
    fn tighten_never_spends_subsidy() {
        let cmd = RepriceCommand {
            position_id: 1,
            event_key: "r".into(),
            new_price: dec!(0.1005),
            new_txid: "TX2".into(),
            reason: RepriceReason::Tighten,
            subsidy_consumed: dec!(0.01),
            at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        };
        let e = cmd.validated(Utc::now()).unwrap_err();
        assert!(e.to_string().starts_with("subsidy_consumed"), "{e}");
    }
}
