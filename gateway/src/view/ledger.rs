//! Ledger positions, journal rows and subsidy as JSON.

use healgrid_proto::ledger::v1 as pb;
use healgrid_proto::ledger::v1::event_details::Kind;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::status::Band;
use super::{non_empty, rfc3339};

/// A ledger position.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Position {
    /// Ledger id.
    pub position_id: u64,
    /// Slot.
    pub slot_id: u32,
    /// `a` or `b`.
    pub trade: String,
    /// `legacy`, `sticky`, `churner` or `unknown`.
    pub slot_mode: String,
    /// Cycle.
    pub cycle: u64,
    /// `open` or `closed`.
    pub status: String,
    /// Age band from the trader's status (open positions only; absent when
    /// the trader is unreachable or does not know the position).
    pub band: Option<Band>,
    /// Decimal string.
    pub entry_price: String,
    /// Decimal string.
    pub entry_cost: String,
    /// Decimal string.
    pub entry_fee: String,
    /// Decimal string.
    pub entry_volume: String,
    /// RFC 3339.
    pub entry_time: Option<String>,
    /// Regime at entry.
    pub entry_regime: String,
    /// Current exit price (decimal string).
    pub current_exit_price: String,
    /// First exit price (decimal string).
    pub original_exit_price: String,
    /// Target profit, percent (decimal string).
    pub target_profit_pct: String,
    /// Times the exit was repriced.
    pub times_repriced: u32,
    /// Outcome: exit price (closed only).
    pub exit_price: Option<String>,
    /// Outcome: exit time (closed only).
    pub exit_time: Option<String>,
    /// Outcome: net profit, may be negative (closed only).
    pub net_profit: Option<String>,
    /// Outcome: why it closed (closed only).
    pub close_reason: Option<String>,
}

/// One journal row.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JournalEntry {
    /// Row id (ascending in time).
    pub journal_id: u64,
    /// Position.
    pub position_id: u64,
    /// RFC 3339.
    pub at: Option<String>,
    /// `created`, `repriced`, `filled`, ...
    pub event_type: String,
    /// Typed details of the event (fields depend on `event_type`).
    #[schema(value_type = Object)]
    pub details: Value,
}

/// Subsidy of one slot (or the totals, with `slot_id` 0).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Subsidy {
    /// Slot.
    pub slot_id: u32,
    /// earned - consumed (decimal string).
    pub balance: String,
    /// Lifetime credits.
    pub earned: String,
    /// Lifetime debits.
    pub consumed: String,
    /// Credits from churner profit.
    pub earned_churner_profit: String,
    /// Credits from exits that beat their target.
    pub earned_over_performance: String,
    /// Debits by subsidy reprices.
    pub consumed_subsidy: String,
    /// Debits by operator reprices.
    pub consumed_operator: String,
}

fn slot_mode(v: i32) -> &'static str {
    match pb::SlotMode::try_from(v) {
        Ok(pb::SlotMode::Legacy) => "legacy",
        Ok(pb::SlotMode::Sticky) => "sticky",
        Ok(pb::SlotMode::Churner) => "churner",
        _ => "unknown",
    }
}

fn regime(v: i32) -> &'static str {
    match pb::Regime::try_from(v) {
        Ok(pb::Regime::Bearish) => "bearish",
        Ok(pb::Regime::Ranging) => "ranging",
        Ok(pb::Regime::Bullish) => "bullish",
        _ => "unknown",
    }
}

fn close_reason(v: i32) -> Option<String> {
    let s = match pb::CloseReason::try_from(v) {
        Ok(pb::CloseReason::Filled) => "filled",
        Ok(pb::CloseReason::WrittenOff) => "written_off",
        Ok(pb::CloseReason::SoftClosed) => "soft_closed",
        Ok(pb::CloseReason::Cancelled) => "cancelled",
        Ok(pb::CloseReason::ExchangeCancelled) => "exchange_cancelled",
        _ => return None,
    };
    Some(s.into())
}

/// The JSON view of a ledger position; `band` comes from the trader.
#[must_use]
pub fn position(p: &pb::Position, band: Option<Band>) -> Position {
    let open = p.status == pb::PositionStatus::Open as i32;
    Position {
        position_id: p.position_id,
        slot_id: p.slot_id,
        trade: match pb::TradeId::try_from(p.trade_id) {
            Ok(pb::TradeId::A) => "a",
            Ok(pb::TradeId::B) => "b",
            _ => "unknown",
        }
        .into(),
        slot_mode: slot_mode(p.slot_mode).into(),
        cycle: p.cycle,
        status: if open { "open" } else { "closed" }.into(),
        band: if open { band } else { None },
        entry_price: p.entry_price.clone(),
        entry_cost: p.entry_cost.clone(),
        entry_fee: p.entry_fee.clone(),
        entry_volume: p.entry_volume.clone(),
        entry_time: rfc3339(p.entry_time.as_ref()),
        entry_regime: regime(p.entry_regime).into(),
        current_exit_price: p.current_exit_price.clone(),
        original_exit_price: p.original_exit_price.clone(),
        target_profit_pct: p.target_profit_pct.clone(),
        times_repriced: p.times_repriced,
        exit_price: non_empty(&p.exit_price),
        exit_time: rfc3339(p.exit_time.as_ref()),
        net_profit: non_empty(&p.net_profit),
        close_reason: close_reason(p.close_reason),
    }
}

fn event_type(v: i32) -> &'static str {
    use pb::EventType as E;
    match E::try_from(v) {
        Ok(E::Created) => "created",
        Ok(E::Repriced) => "repriced",
        Ok(E::Filled) => "filled",
        Ok(E::WrittenOff) => "written_off",
        Ok(E::Cancelled) => "cancelled",
        Ok(E::ChurnerProfit) => "churner_profit",
        Ok(E::OverPerformance) => "over_performance",
        Ok(E::OperatorAction) => "operator_action",
        Ok(E::KeepHolding) => "keep_holding",
        Ok(E::HandedOver) => "handed_over",
        Ok(E::SoftClosed) => "soft_closed",
        Ok(E::ExchangeCancelled) => "exchange_cancelled",
        _ => "unknown",
    }
}

fn reprice_reason(v: i32) -> &'static str {
    match pb::RepriceReason::try_from(v) {
        Ok(pb::RepriceReason::Tighten) => "tighten",
        Ok(pb::RepriceReason::Subsidy) => "subsidy",
        Ok(pb::RepriceReason::Operator) => "operator",
        _ => "unknown",
    }
}

/// Typed event details as a JSON object (`{}` when absent).
#[must_use]
pub fn details(d: Option<&pb::EventDetails>) -> Value {
    let Some(kind) = d.and_then(|d| d.kind.as_ref()) else {
        return json!({});
    };
    match kind {
        Kind::Created(c) => json!({
            "entry_price": c.entry_price, "exit_price": c.exit_price,
            "regime": regime(c.regime), "slot_mode": slot_mode(c.slot_mode),
            "migration": c.migration,
        }),
        Kind::Repriced(r) => json!({
            "old_price": r.old_price, "new_price": r.new_price,
            "old_txid": r.old_txid, "new_txid": r.new_txid,
            "reason": reprice_reason(r.reason), "subsidy_consumed": r.subsidy_consumed,
        }),
        Kind::Filled(f) => json!({
            "fill_price": f.fill_price, "fill_cost": f.fill_cost,
            "fill_fee": f.fill_fee, "net_profit": f.net_profit,
        }),
        Kind::WrittenOff(w) => json!({
            "close_price": w.close_price, "realized_loss": w.realized_loss, "reason": w.reason,
        }),
        Kind::Cancelled(c) => json!({"reason": c.reason, "age_seconds": c.age_seconds}),
        Kind::ChurnerProfit(c) => json!({
            "net_profit": c.net_profit, "churner_cycle_id": c.churner_cycle_id,
        }),
        Kind::OverPerformance(o) => json!({
            "expected_profit": o.expected_profit, "actual_profit": o.actual_profit,
            "excess": o.excess,
        }),
        Kind::OperatorAction(o) => json!({
            "action": o.action, "reason": o.reason, "operator": o.operator,
        }),
        Kind::KeepHolding(k) => json!({
            "hold_until": rfc3339(k.hold_until.as_ref()), "reason": k.reason,
        }),
        Kind::HandedOver(h) => json!({"reason": h.reason, "age_seconds": h.age_seconds}),
    }
}

/// The JSON view of a journal row.
#[must_use]
pub fn journal_entry(e: &pb::JournalEntry) -> JournalEntry {
    JournalEntry {
        journal_id: e.journal_id,
        position_id: e.position_id,
        at: rfc3339(e.at.as_ref()),
        event_type: event_type(e.event_type).into(),
        details: details(e.details.as_ref()),
    }
}

/// The JSON view of a subsidy balance.
#[must_use]
pub fn subsidy(s: &pb::SubsidyBalance) -> Subsidy {
    Subsidy {
        slot_id: s.slot_id,
        balance: s.balance.clone(),
        earned: s.earned.clone(),
        consumed: s.consumed.clone(),
        earned_churner_profit: s.earned_churner_profit.clone(),
        earned_over_performance: s.earned_over_performance.clone(),
        consumed_subsidy: s.consumed_subsidy.clone(),
        consumed_operator: s.consumed_operator.clone(),
    }
}

/// One point of a position's exit price history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExitPricePoint {
    /// When (RFC 3339).
    pub at: Option<String>,
    /// Exit price from then on (decimal string).
    pub price: String,
    /// `created`, or the reprice reason (`tighten`, `subsidy`, `operator`).
    pub reason: String,
    /// Subsidy spent on this move (decimal string; reprices only).
    pub subsidy_consumed: Option<String>,
}

/// The exit price over time: the first price from `created`, then every
/// `repriced` row, in journal order.
#[must_use]
pub fn exit_price_history(journal: &[JournalEntry]) -> Vec<ExitPricePoint> {
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    journal
        .iter()
        .filter_map(|e| match e.event_type.as_str() {
            "created" => Some(ExitPricePoint {
                at: e.at.clone(),
                price: text(&e.details, "exit_price"),
                reason: "created".into(),
                subsidy_consumed: None,
            }),
            "repriced" => Some(ExitPricePoint {
                at: e.at.clone(),
                price: text(&e.details, "new_price"),
                reason: text(&e.details, "reason"),
                subsidy_consumed: non_empty(&text(&e.details, "subsidy_consumed")),
            }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves: open and closed positions convert (band only for open ones,
    /// outcome only for closed ones) and details keep their variant's
    /// fields.
    #[test]
    fn converts_positions_and_details() {
        let mut p = pb::Position {
            position_id: 7,
            status: pb::PositionStatus::Open as i32,
            slot_mode: pb::SlotMode::Sticky as i32,
            ..Default::default()
        };
        let v = position(&p, Some(Band::Stale));
        assert_eq!(
            (v.status.as_str(), v.band, v.slot_mode.as_str()),
            ("open", Some(Band::Stale), "sticky")
        );
        assert!(v.exit_price.is_none() && v.close_reason.is_none());
        p.status = pb::PositionStatus::Closed as i32;
        p.close_reason = pb::CloseReason::Filled as i32;
        p.net_profit = "-0.5".into();
        let v = position(&p, Some(Band::Stale));
        assert_eq!(v.band, None);
        assert_eq!(
            (v.close_reason.as_deref(), v.net_profit.as_deref()),
            (Some("filled"), Some("-0.5"))
        );

        let d = pb::EventDetails {
            kind: Some(Kind::Repriced(pb::RepricedDetails {
                new_price: "0.1".into(),
                reason: pb::RepriceReason::Subsidy as i32,
                ..Default::default()
            })),
        };
        let j = details(Some(&d));
        assert_eq!(
            (j["new_price"].as_str(), j["reason"].as_str()),
            (Some("0.1"), Some("subsidy"))
        );
        assert_eq!(details(None), json!({}));
    }

    /// Proves: the history starts at the created exit price and follows
    /// each reprice, ignoring other events.
    #[test]
    fn exit_history_follows_reprices() {
        let row = |t: &str, d: Value| JournalEntry {
            journal_id: 1,
            position_id: 1,
            at: None,
            event_type: t.into(),
            details: d,
        };
        let h = exit_price_history(&[
            row("created", json!({"exit_price": "0.2"})),
            row("churner_profit", json!({"net_profit": "0.1"})),
            row(
                "repriced",
                json!({"new_price": "0.19", "reason": "subsidy", "subsidy_consumed": "0.05"}),
            ),
        ]);
        assert_eq!(h.len(), 2);
        assert_eq!((h[0].price.as_str(), h[1].price.as_str()), ("0.2", "0.19"));
        assert_eq!(h[1].subsidy_consumed.as_deref(), Some("0.05"));
    }
}
