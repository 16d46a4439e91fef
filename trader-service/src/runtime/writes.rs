//! The outbox payload: ledger writes derived from engine actions.
//!
//! Writes name their position by `open_key` (the entry's exchange txid, or
//! `legacy:<txid>` for an imported exit), never by ledger position id: during
//! a ledger outage the id is not known yet, and the write must still be
//! committed in the same step as the state change that implies it. The sink
//! resolves `open_key -> position_id` at delivery time (the open is always
//! delivered first, because the outbox is strictly ordered).
//!
//! Every idempotency key is derived from the `open_key` alone
//! (`open:`, `close:`, `overperf:`), or from the operator's request id
//! (`operator:`), so recomputing a write after a crash yields the same key
//! and the ledger applies it once. An operator action on the bot as a whole
//! ([`BotJournalWrite`]) names no position and goes to the bot journal.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::engine::{CycleBooking, PositionIntent, TradeId};
use crate::runtime::entry::{IdempotencyKey, LedgerWrite, NewOutboxEntry};

/// How the slot that opened a position runs (the ledger's `slot_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotModeKind {
    /// A normal sticky grid slot of this engine.
    Sticky,
    /// An exit imported from a pre-ledger run (SPEC §9).
    Legacy,
    /// A churner round trip (SPEC §6).
    Churner,
}

impl SlotModeKind {
    /// The mode of an open position this trader holds: a churner round
    /// trip handed over to its slot, else the slot's own (sticky) trade
    /// cycle. The one place the status and the cleanup queue get it from.
    #[must_use]
    pub fn of_open(churner: bool) -> Self {
        if churner { Self::Churner } else { Self::Sticky }
    }
}

/// Why a position closed (the subset of the ledger's reasons the runtime
/// produces today).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseKind {
    /// The exit filled completely.
    Filled,
    /// The exit left the exchange without filling and nobody re-placed it.
    ExchangeCancelled,
    /// Closed at market by the operator or the write-off policy, with the
    /// realized loss.
    WrittenOff,
}

/// `OpenPosition`: a filled entry whose exit now works the position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenWrite {
    /// The ledger's open key (entry txid, or `legacy:<exit txid>`).
    pub open_key: String,
    /// Local id of the exit working the position, fed back with the ack as
    /// `PositionOpened`; `None` for legacy positions (not engine-managed).
    pub exit_order_id: Option<String>,
    /// Slot.
    pub slot: u32,
    /// Trade.
    pub trade: TradeId,
    /// Cycle.
    pub cycle: u64,
    /// Sticky or legacy.
    pub slot_mode: SlotModeKind,
    /// Volume-weighted entry price.
    pub entry_price: Decimal,
    /// Entry cost as reported.
    pub entry_cost: Decimal,
    /// Entry fee as reported.
    pub entry_fee: Decimal,
    /// Position volume.
    pub entry_volume: Decimal,
    /// Entry time, unix seconds.
    pub entry_time: i64,
    /// First exit price.
    pub exit_price: Decimal,
    /// Profit target of the exit.
    pub target_profit_pct: Decimal,
    /// Txid of the exit working the position: set when the exit reaches the
    /// exchange (or, for legacy imports, the imported exit's txid); `None`
    /// only if the exchange refused the exit.
    pub exit_txid: Option<String>,
    /// True for imports from a pre-ledger run.
    pub migration: bool,
}

/// `ClosePosition` of the position opened under `open_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseWrite {
    /// Which position.
    pub open_key: String,
    /// Why it closed.
    pub reason: CloseKind,
    /// Volume-weighted exit fill price (filled only).
    pub exit_price: Option<Decimal>,
    /// Exit cost as reported (filled only).
    pub exit_cost: Option<Decimal>,
    /// Exit fee as reported (filled only).
    pub exit_fee: Option<Decimal>,
    /// When, unix seconds.
    pub exit_time: i64,
    /// Net profit after both fees (filled only; may be negative).
    pub net_profit: Option<Decimal>,
    /// Free text for the close event.
    pub note: String,
    /// Exchange id of the order whose fill closed it; the ledger records
    /// it as the position's exit txid (absent: an exchange cancel, or a
    /// write queued before the field existed).
    #[serde(default)]
    pub exit_txid: Option<String>,
}

/// `JournalEvent over_performance`: the exit filled better than its price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverPerformanceWrite {
    /// Which position.
    pub open_key: String,
    /// When, unix seconds.
    pub at: i64,
    /// Gross profit had the exit filled at its price.
    pub expected_profit: Decimal,
    /// Gross profit of the real fill.
    pub actual_profit: Decimal,
    /// `|fill - target| x volume`: the subsidy credit.
    pub excess: Decimal,
}

/// One queued ledger write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "write", rename_all = "snake_case")]
pub enum LedgerWriteRequest {
    /// Open a position.
    Open(OpenWrite),
    /// Close a position.
    Close(CloseWrite),
    /// Credit over-performance to a position's slot.
    OverPerformance(OverPerformanceWrite),
    /// Move a position's exit (may debit subsidy).
    Reprice(RepriceWrite),
    /// An operator's accepted action on a position (SPEC §8).
    Operator(OperatorWrite),
    /// Credit a churner round trip's profit to the parent it works for.
    ChurnerProfit(ChurnerProfitWrite),
    /// Journal that a churner round trip was handed over to its slot.
    HandedOver(HandedOverWrite),
    /// An operator's accepted action on the bot as a whole (bot journal).
    BotJournal(BotJournalWrite),
}

/// What an operator did to the bot as a whole (the ledger's `BotAction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BotActionKind {
    /// A regime was forced until a deadline.
    RegimeOverride,
    /// The forced regime was lifted.
    RegimeOverrideCleared,
    /// The churner reserve was set.
    ChurnerReserve,
    /// A slot's churner was spawned on a slot without an open position.
    ChurnerSpawn,
    /// A slot's churner was killed on a slot without an open position.
    ChurnerKill,
}

/// `AppendBotJournal`: an operator action the runtime accepted that no
/// position carries (a regime override or its clearing, the churner
/// reserve, a churner command on a slot without an open position). Keyed by the request id, so a retried request never journals
/// twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotJournalWrite {
    /// The operator's idempotency key.
    pub request_id: String,
    /// What was done.
    pub action: BotActionKind,
    /// What was set (regime and expiry, reserve amount).
    pub detail: String,
    /// The operator's reason.
    pub reason: String,
    /// Who.
    pub operator: String,
    /// When it was accepted, unix seconds.
    pub at: i64,
}

/// `JournalEvent operator_action` (or `keep_holding` for a hold): an
/// operator action the runtime accepted, with the operator's reason. Keyed
/// by the request id, so a retried request never journals twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorWrite {
    /// The position.
    pub open_key: String,
    /// The operator's idempotency key.
    pub request_id: String,
    /// Action name (`reprice_to_breakeven`, `keep_holding`, ...).
    pub action: String,
    /// The operator's reason.
    pub reason: String,
    /// Who.
    pub operator: String,
    /// End of the hold (a `keep_holding` event), unix seconds.
    pub hold_until: Option<i64>,
    /// When it was accepted, unix seconds.
    pub at: i64,
}

/// `JournalEvent churner_profit` on the parent (SPEC §6 profit routing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChurnerProfitWrite {
    /// The parent position credited.
    pub open_key: String,
    /// The round trip that earned it (its own open key: unique, so the
    /// idempotency key is too).
    pub churner_open_key: String,
    /// When, unix seconds.
    pub at: i64,
    /// The credit (positive).
    pub net_profit: Decimal,
}

/// `JournalEvent handed_over` on a churner round trip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandedOverWrite {
    /// The round trip.
    pub open_key: String,
    /// When, unix seconds.
    pub at: i64,
    /// Seconds since its entry filled.
    pub age_seconds: i64,
}

/// A reprice that took effect (SPEC §5): journaled as `repriced`, debiting
/// `subsidy_consumed` from the slot's balance atomically in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepriceWrite {
    /// The position.
    pub open_key: String,
    /// Slot (whose subsidy pays).
    pub slot: u32,
    /// Local id of the replacement exit: unique per reprice, so the
    /// idempotency key survives a crash and a retry never debits twice.
    pub new_order_id: String,
    /// Price before.
    pub old_price: Decimal,
    /// Price after.
    pub new_price: Decimal,
    /// Volume moved.
    pub volume: Decimal,
    /// Why.
    pub kind: crate::engine::RepriceKind,
    /// Subsidy spent.
    pub subsidy_consumed: Decimal,
    /// When it took effect.
    pub at: i64,
    /// Exchange id of the replacement exit, once placed (`None` when the
    /// exchange refused it; the retry is not journaled again).
    #[serde(default)]
    pub new_txid: Option<String>,
}

impl RepriceWrite {
    /// The write of a reprice the engine booked for `open_key`.
    #[must_use]
    pub fn of(b: &crate::engine::RepriceBooking, open_key: &str) -> Self {
        Self {
            open_key: open_key.to_owned(),
            slot: b.slot,
            new_order_id: b.new_order_id.to_string(),
            old_price: b.old_price,
            new_price: b.new_price,
            volume: b.volume,
            kind: b.kind,
            subsidy_consumed: b.subsidy_consumed,
            at: b.at,
            new_txid: None,
        }
    }
}

impl LedgerWriteRequest {
    /// The position this write is about; `None` for a bot-journal write.
    #[must_use]
    pub fn open_key(&self) -> Option<&str> {
        match self {
            Self::Open(w) => Some(&w.open_key),
            Self::Close(w) => Some(&w.open_key),
            Self::OverPerformance(w) => Some(&w.open_key),
            Self::Reprice(w) => Some(&w.open_key),
            Self::Operator(w) => Some(&w.open_key),
            Self::ChurnerProfit(w) => Some(&w.open_key),
            Self::HandedOver(w) => Some(&w.open_key),
            Self::BotJournal(_) => None,
        }
    }

    /// The deterministic idempotency key (`open:`, `close:`, `overperf:`
    /// + open key).
    #[must_use]
    pub fn key_string(&self) -> String {
        match self {
            Self::Open(w) => format!("open:{}", w.open_key),
            Self::Close(w) => format!("close:{}", w.open_key),
            Self::OverPerformance(w) => format!("overperf:{}", w.open_key),
            Self::Reprice(w) => format!("reprice:{}:{}", w.open_key, w.new_order_id),
            Self::Operator(w) => format!("operator:{}", w.request_id),
            Self::BotJournal(w) => format!("operator:{}", w.request_id),
            Self::ChurnerProfit(w) => format!("churnprofit:{}", w.churner_open_key),
            Self::HandedOver(w) => format!("handover:{}", w.open_key),
        }
    }

    /// Which ledger RPC carries it.
    #[must_use]
    pub fn kind(&self) -> LedgerWrite {
        match self {
            Self::Open(_) => LedgerWrite::OpenPosition,
            Self::Close(_) => LedgerWrite::ClosePosition,
            Self::OverPerformance(_) => LedgerWrite::JournalEvent,
            Self::Reprice(_) => LedgerWrite::RepricePosition,
            Self::Operator(_) => LedgerWrite::JournalEvent,
            Self::ChurnerProfit(_) | Self::HandedOver(_) => LedgerWrite::JournalEvent,
            Self::BotJournal(_) => LedgerWrite::AppendBotJournal,
        }
    }

    /// The outbox entry for this write.
    #[must_use]
    pub fn to_entry(&self) -> NewOutboxEntry {
        let key = IdempotencyKey::new(self.key_string())
            .unwrap_or_else(|_| unreachable!("keys always carry a prefix"));
        NewOutboxEntry {
            key,
            kind: self.kind(),
            payload: serde_json::to_value(self)
                .unwrap_or_else(|_| unreachable!("plain data always serialises")),
        }
    }
}

/// What the runtime remembers about an open position until it closes, so a
/// `BookCycle` (which carries no open key or exit price) can be mapped to
/// its ledger writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedPosition {
    /// The ledger open key.
    pub open_key: String,
    /// Trade (decides which direction of fill is "better").
    pub trade: TradeId,
    /// The exit's price when the position opened (the target).
    pub exit_target: Decimal,
    /// Why the position is being closed at market (operator or policy),
    /// set when the close is accepted; the booking's close then carries it.
    #[serde(default)]
    pub close_note: Option<CloseNote>,
}

/// Why a position is being closed at market.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseNote {
    /// For the ledger's close event.
    pub text: String,
    /// By the write-off policy (stage E), not an operator.
    pub policy: bool,
}

/// The open key of a position: the entry's exchange txid when known (it
/// always is once the entry filled), else the entry's local id.
#[must_use]
pub fn open_key_of(intent: &PositionIntent) -> String {
    intent
        .entry_txid
        .clone()
        .unwrap_or_else(|| intent.open_key.clone())
}

/// `OpenPosition` for an engine intent.
#[must_use]
pub fn open_write(intent: &PositionIntent) -> OpenWrite {
    OpenWrite {
        open_key: open_key_of(intent),
        exit_order_id: Some(intent.exit_order_id.to_string()),
        slot: intent.slot,
        trade: intent.trade,
        cycle: intent.cycle,
        slot_mode: SlotModeKind::Sticky,
        entry_price: intent.entry_price,
        entry_cost: intent.entry_cost,
        entry_fee: intent.entry_fee,
        entry_volume: intent.entry_volume,
        entry_time: intent.entry_time,
        exit_price: intent.exit_price,
        target_profit_pct: intent.target_profit_pct,
        exit_txid: None,
        migration: false,
    }
}

/// The writes of a completed cycle: `ClosePosition filled` with the real
/// fill, then `over_performance` when the fill beat the exit's price (a buy
/// exit below it, a sell exit above it).
#[must_use]
pub fn cycle_writes(booking: &CycleBooking, pos: &TrackedPosition) -> Vec<LedgerWriteRequest> {
    if booking.written_off {
        // A close at market: the real fill, the realized loss, no credit.
        return vec![LedgerWriteRequest::Close(CloseWrite {
            open_key: pos.open_key.clone(),
            reason: CloseKind::WrittenOff,
            exit_price: Some(booking.exit_price),
            exit_cost: Some(booking.exit_cost),
            exit_fee: Some(booking.exit_fee),
            exit_time: booking.exit_time,
            net_profit: Some(booking.net),
            note: pos.close_note.as_ref().map_or_else(
                || format!("closed at market by {}", booking.exit_order_id),
                |n| n.text.clone(),
            ),
            exit_txid: booking.exit_txid.clone(),
        })];
    }
    let mut out = vec![LedgerWriteRequest::Close(CloseWrite {
        open_key: pos.open_key.clone(),
        reason: CloseKind::Filled,
        exit_price: Some(booking.exit_price),
        exit_cost: Some(booking.exit_cost),
        exit_fee: Some(booking.exit_fee),
        exit_time: booking.exit_time,
        net_profit: Some(booking.net),
        note: format!("exit {} filled", booking.exit_order_id),
        exit_txid: booking.exit_txid.clone(),
    })];
    let target = pos.exit_target;
    let fill = booking.exit_price;
    let beat = match pos.trade {
        TradeId::A => fill < target,
        TradeId::B => fill > target,
    };
    if beat {
        let excess = (fill - target).abs() * booking.volume;
        let expected = match pos.trade {
            TradeId::A => (booking.entry_price - target) * booking.volume,
            TradeId::B => (target - booking.entry_price) * booking.volume,
        };
        out.push(LedgerWriteRequest::OverPerformance(OverPerformanceWrite {
            open_key: pos.open_key.clone(),
            at: booking.exit_time,
            expected_profit: expected,
            actual_profit: booking.gross,
            excess,
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{OrderId, OrderRole};
    use rust_decimal_macros::dec;

    fn booking(trade: TradeId, entry: Decimal, exit: Decimal, vol: Decimal) -> CycleBooking {
        let gross = match trade {
            TradeId::A => (entry - exit) * vol,
            TradeId::B => (exit - entry) * vol,
        };
        CycleBooking {
            slot: 1,
            trade,
            cycle: 3,
            position_id: None,
            exit_order_id: OrderId {
                slot: 1,
                trade,
                cycle: 3,
                role: OrderRole::Exit,
                seq: 9,
            },
            entry_price: entry,
            exit_price: exit,
            volume: vol,
            exit_cost: exit * vol,
            gross,
            entry_fee: dec!(0.01),
            exit_fee: dec!(0.02),
            fees: dec!(0.03),
            net: gross - dec!(0.03),
            entry_time: 100,
            exit_time: 200,
            target_profit_pct: dec!(1),
            written_off: false,
            exit_txid: Some("OEXIT-9".into()),
        }
    }

    /// Proves: a fill exactly at the exit's price closes `filled` with the
    /// real fill and net and the filling order's txid, under the
    /// deterministic key, and credits nothing.
    #[test]
    fn fill_at_target_is_one_close() {
        let pos = TrackedPosition {
            close_note: None,
            open_key: "OTX-1".into(),
            trade: TradeId::B,
            exit_target: dec!(0.101),
        };
        let w = cycle_writes(&booking(TradeId::B, dec!(0.1), dec!(0.101), dec!(20)), &pos);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].key_string(), "close:OTX-1");
        assert_eq!(w[0].kind(), LedgerWrite::ClosePosition);
        let LedgerWriteRequest::Close(c) = &w[0] else {
            panic!("close expected")
        };
        assert_eq!(c.reason, CloseKind::Filled);
        assert_eq!(c.exit_price, Some(dec!(0.101)));
        assert_eq!(c.net_profit, Some(dec!(0.02) - dec!(0.03)));
        assert_eq!(c.exit_txid.as_deref(), Some("OEXIT-9"));
        assert_eq!(
            crate::runtime::sink::close_request(7, "close:OTX-1", c).exit_txid,
            "OEXIT-9"
        );
    }

    /// Proves: a sell exit filled above its price, and a buy exit filled
    /// below it, credit `excess = |fill - target| x volume` under
    /// `overperf:<open_key>`, with actual = expected + excess.
    #[test]
    fn better_fill_credits_excess_both_directions() {
        let pos_b = TrackedPosition {
            close_note: None,
            open_key: "OTX-B".into(),
            trade: TradeId::B,
            exit_target: dec!(0.101),
        };
        let w = cycle_writes(
            &booking(TradeId::B, dec!(0.1), dec!(0.1035), dec!(20)),
            &pos_b,
        );
        assert_eq!(w.len(), 2);
        assert_eq!(w[1].key_string(), "overperf:OTX-B");
        assert_eq!(w[1].kind(), LedgerWrite::JournalEvent);
        let LedgerWriteRequest::OverPerformance(o) = &w[1] else {
            panic!("over-performance expected")
        };
        assert_eq!(o.excess, dec!(0.0025) * dec!(20));
        assert_eq!(o.expected_profit, dec!(0.001) * dec!(20));
        assert_eq!(o.actual_profit, o.expected_profit + o.excess);

        let pos_a = TrackedPosition {
            close_note: None,
            open_key: "OTX-A".into(),
            trade: TradeId::A,
            exit_target: dec!(0.099),
        };
        let w = cycle_writes(
            &booking(TradeId::A, dec!(0.1), dec!(0.098), dec!(10)),
            &pos_a,
        );
        let LedgerWriteRequest::OverPerformance(o) = &w[1] else {
            panic!("over-performance expected")
        };
        assert_eq!(o.excess, dec!(0.01));
        // A worse fill (buy exit above its price) credits nothing.
        let w = cycle_writes(
            &booking(TradeId::A, dec!(0.1), dec!(0.0995), dec!(10)),
            &pos_a,
        );
        assert_eq!(w.len(), 1);
    }

    /// Proves: a bot-journal write names no position, is keyed by the
    /// operator's request id, goes to `AppendBotJournal`, and round-trips
    /// through the outbox's JSON.
    #[test]
    fn bot_journal_write_is_keyed_by_request() {
        let w = LedgerWriteRequest::BotJournal(BotJournalWrite {
            request_id: "rg-1".into(),
            action: BotActionKind::RegimeOverride,
            detail: "regime=bullish until=1700003600 ttl_sec=3600".into(),
            reason: "news".into(),
            operator: "alice".into(),
            at: 1_700_000_000,
        });
        assert_eq!(w.open_key(), None);
        assert_eq!(w.key_string(), "operator:rg-1");
        assert_eq!(w.kind(), LedgerWrite::AppendBotJournal);
        let back: LedgerWriteRequest = serde_json::from_value(w.to_entry().payload).unwrap();
        assert_eq!(back, w);
    }

    /// Proves: the open key is the entry txid when known, else the local id,
    /// and the outbox entry round-trips through JSON.
    #[test]
    fn open_key_and_entry_round_trip() {
        let exit_id = OrderId {
            slot: 0,
            trade: TradeId::A,
            cycle: 1,
            role: OrderRole::Exit,
            seq: 2,
        };
        let mut intent = PositionIntent {
            slot: 0,
            trade: TradeId::A,
            cycle: 1,
            open_key: "0:A:1:en:1".into(),
            exit_order_id: exit_id,
            entry_txid: Some("OTX-9".into()),
            entry_price: dec!(0.1),
            entry_cost: dec!(2),
            entry_fee: dec!(0.005),
            entry_volume: dec!(20),
            entry_time: 1_700_000_000,
            exit_side: crate::pair::Side::Buy,
            exit_price: dec!(0.099),
            target_profit_pct: dec!(1),
        };
        let w = LedgerWriteRequest::Open(open_write(&intent));
        assert_eq!(w.key_string(), "open:OTX-9");
        let e = w.to_entry();
        let back: LedgerWriteRequest = serde_json::from_value(e.payload).unwrap();
        assert_eq!(back, w);
        intent.entry_txid = None;
        assert_eq!(open_key_of(&intent), "0:A:1:en:1");
    }
}
