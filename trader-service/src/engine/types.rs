//! Engine state: slots, their two trades and the orders they hold.
//!
//! The types are shaped so that wrong states cannot be written down:
//! - a trade holds *either* an entry, *or* an exit, *or* nothing together
//!   with the reason it is idle ([`TradeWork`]), so "entry and exit of the
//!   same trade" or "no order and no reason" cannot exist;
//! - the phase of a slot is derived from its orders ([`SlotState::phase`]),
//!   never stored;
//! - an [`ExitOrder`] always carries the entry it closes and the profit target
//!   it was placed with, and an `Option` position id until the ledger assigns
//!   one;
//! - every "since"/"until" stamp lives inside the variant it belongs to, so
//!   removing the order or leaving the idle state drops the stamp with it.

use crate::engine::life::TradeLife;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::engine::events::PlaceFailReason;
use crate::engine::invariants::Violation;
use crate::pair::Side;

/// Index of a slot (0-based, `0..SLOTS`).
pub type SlotId = u32;

/// One of the two trades every slot runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TradeId {
    /// Short leg: sell entry above market, then buy exit below the fill.
    A,
    /// Long leg: buy entry below market, then sell exit above the fill.
    B,
}

impl TradeId {
    /// Both trades in a fixed order, so iteration is deterministic.
    pub const ALL: [TradeId; 2] = [TradeId::A, TradeId::B];

    /// Side of this trade's entry (A sells, B buys).
    #[must_use]
    pub fn entry_side(self) -> Side {
        match self {
            Self::A => Side::Sell,
            Self::B => Side::Buy,
        }
    }

    /// Side of this trade's exit: always the opposite of its entry.
    #[must_use]
    pub fn exit_side(self) -> Side {
        self.entry_side().opposite()
    }

    /// One-letter spelling used in order ids and the ledger's `trade_id`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::B => "B",
        }
    }
}

/// Whether an order opens (entry) or closes (exit) a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum OrderRole {
    /// Opens a position when filled.
    Entry,
    /// Closes the position of its trade and cycle when filled.
    Exit,
}

impl OrderRole {
    fn as_str(self) -> &'static str {
        match self {
            Self::Entry => "en",
            Self::Exit => "ex",
        }
    }
}

/// Engine-assigned local order id, `slot:trade:cycle:role:seq`.
///
/// Deterministic (derived from the slot's sequence counter, never from a
/// clock or RNG), so a restarted engine reproduces the same ids and the
/// runtime can use them as idempotency keys / Kraken `userref`-style client
/// ids. Because the id encodes slot and trade, routing an event to its order
/// is a map lookup, not a scan. It is `Copy`, so events carry it without
/// allocating; it serialises as its string form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct OrderId {
    /// Slot that owns the order.
    pub slot: SlotId,
    /// Trade of the slot that owns the order.
    pub trade: TradeId,
    /// Cycle (round trip number) of the trade; entry and exit share it.
    pub cycle: u64,
    /// Entry or exit.
    pub role: OrderRole,
    /// Per-slot sequence number: unique within the slot, strictly increasing.
    pub seq: u64,
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}:{}",
            self.slot,
            self.trade.as_str(),
            self.cycle,
            self.role.as_str(),
            self.seq
        )
    }
}

/// Why a string is not a valid [`OrderId`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("malformed order id {0:?}: expected slot:trade:cycle:role:seq")]
pub struct OrderIdParseError(pub String);

impl FromStr for OrderId {
    type Err = OrderIdParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || OrderIdParseError(s.to_owned());
        let mut parts = s.split(':');
        let mut next = || parts.next().ok_or_else(bad);
        let slot = next()?.parse().map_err(|_| bad())?;
        let trade = match next()? {
            "A" => TradeId::A,
            "B" => TradeId::B,
            _ => return Err(bad()),
        };
        let cycle = next()?.parse().map_err(|_| bad())?;
        let role = match next()? {
            "en" => OrderRole::Entry,
            "ex" => OrderRole::Exit,
            _ => return Err(bad()),
        };
        let seq = next()?.parse().map_err(|_| bad())?;
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Self {
            slot,
            trade,
            cycle,
            role,
            seq,
        })
    }
}

impl From<OrderId> for String {
    fn from(id: OrderId) -> Self {
        id.to_string()
    }
}

impl TryFrom<String> for OrderId {
    type Error = OrderIdParseError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// Running totals of the executions of one order, exactly as reported by the
/// exchange (fees and costs are never estimated).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FillTotals {
    /// Executed base volume.
    pub volume: Decimal,
    /// Executed quote cost as reported.
    pub cost: Decimal,
    /// Fees as reported.
    pub fee: Decimal,
    /// Sum of `price x volume` over executions; the volume-weighted average
    /// price is `notional / volume`.
    pub notional: Decimal,
    /// Time of the first execution.
    pub first_at: Option<i64>,
    /// Time of the last execution.
    pub last_at: Option<i64>,
}

impl FillTotals {
    /// Adds one execution.
    pub fn add(&mut self, price: Decimal, volume: Decimal, cost: Decimal, fee: Decimal, at: i64) {
        self.volume += volume;
        self.cost += cost;
        self.fee += fee;
        self.notional += price * volume;
        self.first_at = Some(self.first_at.map_or(at, |t| t.min(at)));
        self.last_at = Some(self.last_at.map_or(at, |t| t.max(at)));
    }

    /// Volume-weighted average execution price, `None` before any fill.
    #[must_use]
    pub fn avg_price(&self) -> Option<Decimal> {
        if self.volume.is_zero() {
            None
        } else {
            Some((self.notional / self.volume).normalize())
        }
    }

    /// Whether anything executed yet.
    #[must_use]
    pub fn any(&self) -> bool {
        !self.volume.is_zero()
    }
}

/// A resting (or about to rest) entry order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryOrder {
    /// Local id.
    pub id: OrderId,
    /// Limit price (on the tick grid).
    pub price: Decimal,
    /// Ordered volume (on the lot grid, meets the pair minimums).
    pub volume: Decimal,
    /// Exchange id once [`crate::engine::Event::Placed`] (or a fill) told us.
    pub txid: Option<String>,
    /// When the engine asked for the placement.
    pub placed_at: i64,
    /// Executions so far. A partially filled entry is already "in position"
    /// for the filled part; it turns into an exit for exactly the filled
    /// volume once fully filled or gone (a refresh cancel included).
    pub fills: FillTotals,
    /// Set once the engine asked the exchange to cancel it (refresh); the
    /// entry stays tracked until [`crate::engine::Event::OrderGone`] so a
    /// racing fill is never lost.
    pub cancel_requested: bool,
}

impl EntryOrder {
    /// Volume still resting on the book.
    #[must_use]
    pub fn remaining(&self) -> Decimal {
        self.volume - self.fills.volume
    }
}

/// Facts about the entry that opened a position, write-once (SPEC §3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryFacts {
    /// Local id of the entry order.
    pub order_id: OrderId,
    /// Exchange id of the entry order, if known.
    pub txid: Option<String>,
    /// Volume-weighted average fill price.
    pub price: Decimal,
    /// Executed quote cost as reported.
    pub cost: Decimal,
    /// Entry fee as reported.
    pub fee: Decimal,
    /// Filled volume: the position's volume.
    pub volume: Decimal,
    /// Time of the last entry execution (when the position became complete).
    pub time: i64,
}

/// Where an exit stands with the exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitPlacement {
    /// Requested, not yet acknowledged.
    Pending,
    /// Resting on the book.
    Live {
        /// Exchange id.
        txid: String,
    },
    /// The exchange refused it; the exit stays tracked (sticky exits are never
    /// dropped) and is re-placed from `at + place_retry_sec`, except after
    /// [`PlaceFailReason::BelowMinimum`] (a dust position from a tiny partial
    /// entry), where retrying cannot help: it waits for the operator.
    Failed {
        /// Why it failed.
        reason: PlaceFailReason,
        /// When the failure was reported.
        at: i64,
    },
}

/// An exit working a position: one filled entry of a trade and cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitOrder {
    /// Local id (a re-placement gets a new `seq`, same trade and cycle).
    pub id: OrderId,
    /// Current limit price (on the tick grid).
    pub price: Decimal,
    /// Position volume: exactly the entry's filled volume.
    pub volume: Decimal,
    /// The entry this exit closes.
    pub entry: EntryFacts,
    /// Profit target (percent) the exit was placed with: the position's
    /// `target_profit_pct`.
    pub target_profit_pct: Decimal,
    /// Price the exit was first placed at (`original_exit_price`).
    pub original_price: Decimal,
    /// Ledger position id, `None` until [`crate::engine::Event::PositionOpened`].
    pub position_id: Option<String>,
    /// Exchange status of the current placement.
    pub placement: ExitPlacement,
    /// When the current placement was requested.
    pub placed_at: i64,
    /// Executions so far (across re-placements).
    pub fills: FillTotals,
    /// Self-healing facts of the position (SPEC §5), persisted with it.
    #[serde(default)]
    pub heal: Box<HealFacts>,
    /// A reprice waiting for the cancel of the current placement to be
    /// confirmed; the exit is re-placed at `new_price` once it is gone.
    #[serde(default)]
    pub reprice: Option<Box<PendingReprice>>,
    /// An operator's close at market in progress (SPEC §8).
    #[serde(default)]
    pub close: Option<Box<MarketClose>>,
}

/// An operator's close at market of an exit: first the limit placement is
/// cancelled, then the remaining volume is placed as a market order (under
/// a new local id, so an ambiguous answer is looked up by client id like
/// any placement and never sent twice). A market order the exchange refuses
/// or that leaves unfilled restores the limit exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketClose {
    /// When the operator's close was accepted.
    pub requested_at: i64,
    /// The current placement is the market order (else the limit exit is
    /// still being cancelled).
    pub market_order: bool,
}

impl ExitOrder {
    /// A cancel of the current placement is wanted (a reprice, or the
    /// first half of a close at market).
    #[must_use]
    pub fn cancel_wanted(&self) -> bool {
        self.reprice.is_some() || self.close.as_ref().is_some_and(|c| !c.market_order)
    }

    /// The pending placement is a market order (a close at market).
    #[must_use]
    pub fn is_market_close(&self) -> bool {
        self.close.as_ref().is_some_and(|c| c.market_order)
    }
}

/// What self-healing has done to a position: persisted facts, never
/// re-derived from a journal that compaction may trim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealFacts {
    /// The free tighten reprice happened (it happens once per position).
    pub tightened: bool,
    /// When the last subsidized (or loss-funded) reprice took effect: the
    /// per-position cooldown runs from here.
    pub last_subsidy_reprice_at: Option<i64>,
    /// Reprices that took effect.
    pub times_repriced: u32,
    /// An operator hold: no automatic reprice before this time.
    pub hold_until: Option<i64>,
}

impl HealFacts {
    /// Whether an operator hold is in force at `now`: no automatic reprice
    /// and out of the cleanup queue, whoever holds the exit.
    #[must_use]
    pub fn held(&self, now: i64) -> bool {
        self.hold_until.is_some_and(|until| now < until)
    }

    /// Records a reprice of `kind` that took effect at `at`: a tighten
    /// happens once, a paid move starts the per-position cooldown.
    pub fn record(&mut self, kind: RepriceKind, at: i64) {
        self.times_repriced += 1;
        match kind {
            RepriceKind::Tighten => self.tightened = true,
            RepriceKind::Subsidy | RepriceKind::LossFunded | RepriceKind::Operator => {
                self.last_subsidy_reprice_at = Some(at);
            }
        }
    }
}

/// A reprice the engine accepted: the old placement is being cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReprice {
    /// Price of the replacement (on the tick grid, never past fillable).
    pub new_price: Decimal,
    /// Why.
    pub kind: RepriceKind,
    /// Subsidy per unit of volume moved: `|old - new|` when subsidy pays,
    /// zero for a tighten. The consumed amount is this times the volume
    /// still open when the old placement is gone.
    pub subsidized: bool,
    /// Whether the move reaches the fillable price.
    #[serde(default)]
    pub full: bool,
    /// Most subsidy the move may consume; `None`: the whole distance.
    #[serde(default)]
    pub subsidy_cap: Option<Decimal>,
    /// When it was requested.
    pub requested_at: i64,
}

impl PendingReprice {
    /// Subsidy the move consumes from `old_price` at the `volume` still
    /// open once the old placement is gone: the whole distance when subsidy
    /// pays (at most the cap), nothing for a tighten.
    #[must_use]
    pub fn consumed(&self, old_price: Decimal, volume: Decimal) -> Decimal {
        if !self.subsidized {
            return Decimal::ZERO;
        }
        let moved = (old_price - self.new_price).abs() * volume;
        self.subsidy_cap
            .map_or(moved, |cap| moved.min(cap.max(Decimal::ZERO)))
    }
}

/// Why an exit was repriced (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepriceKind {
    /// Free: toward the profit target in force, once per position.
    Tighten,
    /// Paid by subsidy, at or above breakeven.
    Subsidy,
    /// Paid by subsidy below breakeven (`SUBSIDY_ALLOW_LOSS`).
    LossFunded,
    /// An operator's move to breakeven (SPEC §8): subsidy pays what the
    /// slot has, reduced profit covers the rest.
    Operator,
}

impl RepriceKind {
    /// Lower-case name for logs and counters.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tighten => "tighten",
            Self::Subsidy => "subsidy",
            Self::LossFunded => "loss_funded",
            Self::Operator => "operator",
        }
    }
}

impl ExitOrder {
    /// Volume not yet executed: what a (re-)placement puts on the book.
    #[must_use]
    pub fn remaining(&self) -> Decimal {
        self.volume - self.fills.volume
    }

    /// Exchange id of the current placement, if live.
    #[must_use]
    pub fn txid(&self) -> Option<&str> {
        match &self.placement {
            ExitPlacement::Live { txid } => Some(txid),
            _ => None,
        }
    }
}

/// Why a trade has no order: every one of these is a *legal degraded shape*
/// (SPEC §2), not an invariant violation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdleReason {
    /// No market price seen yet.
    Bootstrap,
    /// Re-entry cooldown after a losing cycle.
    Cooldown {
        /// No entry before this time.
        until: i64,
    },
    /// The order size yields less than `ordermin` / `costmin` at the current
    /// price; retried every tick, never auto-upsized.
    BelowMinimum,
    /// The exchange refused the entry (e.g. insufficient funds: the slot runs
    /// one-sided until the retry time).
    PlaceFailed {
        /// Why.
        reason: PlaceFailReason,
        /// No retry before this time.
        retry_at: i64,
    },
    /// The market moves steadily against this entry
    /// ([`crate::engine::EntryHold`]); it is placed when the hold lifts.
    TrendHold,
}

/// What a trade currently does. Exactly one of: idle (with its reason), an
/// entry, or an exit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TradeWork {
    /// No order; the reason says why and when that changes.
    Idle(IdleReason),
    /// Waiting to get into position.
    Entry(EntryOrder),
    /// In position, working the exit.
    Exit(ExitOrder),
}

/// Anti-chase bookkeeping of entry refreshes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshStreak {
    /// Direction of the streak: `Some(true)` when the market had moved above
    /// the refreshed entry, `Some(false)` below, `None` before any refresh.
    pub up: Option<bool>,
    /// Consecutive refreshes in that direction.
    pub count: u32,
    /// While set and in the future, refreshes of this trade are suspended.
    pub cooldown_until: Option<i64>,
}

/// One trade (A or B) of a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeState {
    /// Which trade this is.
    pub trade: TradeId,
    /// Current cycle: the round trip the current entry/exit belongs to.
    pub cycle: u64,
    /// Losing cycles in a row (drives the back-off and the long cooldown).
    pub consecutive_losses: u32,
    /// Net of the trade's cycles since its last close at market, and how
    /// many of those lives in a row lost money (drives the release wait).
    #[serde(default)]
    pub life: TradeLife,
    /// Refresh streak for anti-chase.
    pub refresh: RefreshStreak,
    /// The order, or why there is none.
    pub work: TradeWork,
}

impl TradeState {
    /// A fresh trade waiting for the first market price.
    #[must_use]
    pub fn new(trade: TradeId) -> Self {
        Self {
            trade,
            cycle: 1,
            consecutive_losses: 0,
            life: TradeLife::default(),
            refresh: RefreshStreak::default(),
            work: TradeWork::Idle(IdleReason::Bootstrap),
        }
    }

    /// The exit, if the trade is in position.
    #[must_use]
    pub fn exit(&self) -> Option<&ExitOrder> {
        match &self.work {
            TradeWork::Exit(x) => Some(x),
            _ => None,
        }
    }

    /// The entry, if the trade is waiting to get in.
    #[must_use]
    pub fn entry(&self) -> Option<&EntryOrder> {
        match &self.work {
            TradeWork::Entry(e) => Some(e),
            _ => None,
        }
    }
}

/// Whether the engine still manages a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SlotStatus {
    /// Normal operation.
    Active,
    /// A real invariant violation stopped this slot (only this one); its
    /// orders are left as they are for the operator / reconciliation.
    Halted {
        /// What broke.
        violation: Violation,
        /// When.
        at: i64,
    },
}

/// Phase of a slot, derived from its orders (SPEC §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// No exits: entries only (possibly one-sided or none while degraded).
    S0,
    /// Trade A in position: a buy exit (B may hold its entry).
    S1a,
    /// Trade B in position: a sell exit (A may hold its entry).
    S1b,
    /// Both trades in position: two exits, no entries.
    S2,
}

/// One independent grid unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotState {
    /// Index of the slot.
    pub slot_id: SlotId,
    /// Active or halted.
    pub status: SlotStatus,
    /// Short leg.
    pub trade_a: TradeState,
    /// Long leg.
    pub trade_b: TradeState,
    /// Next order sequence number; strictly above every id ever issued.
    pub next_seq: u64,
}

impl SlotState {
    /// A new slot waiting for the first price.
    #[must_use]
    pub fn new(slot_id: SlotId) -> Self {
        Self {
            slot_id,
            status: SlotStatus::Active,
            trade_a: TradeState::new(TradeId::A),
            trade_b: TradeState::new(TradeId::B),
            next_seq: 1,
        }
    }

    /// The given trade.
    #[must_use]
    pub fn trade(&self, t: TradeId) -> &TradeState {
        match t {
            TradeId::A => &self.trade_a,
            TradeId::B => &self.trade_b,
        }
    }

    /// The given trade, mutably.
    pub fn trade_mut(&mut self, t: TradeId) -> &mut TradeState {
        match t {
            TradeId::A => &mut self.trade_a,
            TradeId::B => &mut self.trade_b,
        }
    }

    /// Phase derived from the orders (never stored, so it cannot go stale).
    #[must_use]
    pub fn phase(&self) -> Phase {
        match (self.trade_a.exit().is_some(), self.trade_b.exit().is_some()) {
            (false, false) => Phase::S0,
            (true, false) => Phase::S1a,
            (false, true) => Phase::S1b,
            (true, true) => Phase::S2,
        }
    }

    /// Since when the slot has been in S2: the later of its two positions'
    /// entry times. Derived from the orders, so no stamp can outlive the
    /// phase (the S2 timer of SPEC §2); `None` outside S2.
    #[must_use]
    pub fn s2_since(&self) -> Option<i64> {
        match (self.trade_a.exit(), self.trade_b.exit()) {
            (Some(a), Some(b)) => Some(a.entry.time.max(b.entry.time)),
            _ => None,
        }
    }

    /// Whether the slot is halted.
    #[must_use]
    pub fn is_halted(&self) -> bool {
        matches!(self.status, SlotStatus::Halted { .. })
    }

    /// Issues the next local order id for a trade's current cycle.
    pub fn issue_id(&mut self, trade: TradeId, role: OrderRole) -> OrderId {
        let seq = self.next_seq;
        self.next_seq += 1;
        OrderId {
            slot: self.slot_id,
            trade,
            cycle: self.trade(trade).cycle,
            role,
            seq,
        }
    }
}

/// The whole engine: every slot plus the last market price and clock seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineState {
    /// Slots by id (a `BTreeMap` so iteration and serialisation are
    /// deterministic).
    pub slots: std::collections::BTreeMap<SlotId, SlotState>,
    /// Last market price seen, `None` before the first tick.
    pub market: Option<Decimal>,
    /// Latest time seen in any event (monotonic: events never move it back).
    pub now: i64,
    /// Profit target (percent) new exits are placed with, when the runtime
    /// set one ([`crate::engine::Event::ProfitTarget`]); `PROFIT_PCT`
    /// otherwise.
    #[serde(default)]
    pub profit_target_pct: Option<Decimal>,
    /// Entries held back against a sustained move, as the runtime last set
    /// it ([`crate::engine::Event::EntryHold`]).
    #[serde(default)]
    pub entry_hold: crate::engine::hold::EntryHold,
}

impl EngineState {
    /// A new engine with slots `0..slots`, all waiting for the first price.
    #[must_use]
    pub fn new(slots: u32) -> Self {
        let mut s = Self {
            slots: Default::default(),
            market: None,
            now: 0,
            profit_target_pct: None,
            entry_hold: Default::default(),
        };
        s.ensure_slots(slots);
        s
    }

    /// Adds missing slots `0..slots` (after a configuration change). Extra
    /// slots are kept: they may hold live exits, and sticky exits are never
    /// abandoned.
    pub fn ensure_slots(&mut self, slots: u32) {
        for id in 0..slots {
            self.slots.entry(id).or_insert_with(|| SlotState::new(id));
        }
    }

    /// Every open position (every exit) with its slot, in deterministic order.
    pub fn open_exits(&self) -> impl Iterator<Item = &ExitOrder> {
        self.slots
            .values()
            .flat_map(|s| [&s.trade_a, &s.trade_b])
            .filter_map(TradeState::exit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_id_round_trips_through_its_string_form() {
        let id = OrderId {
            slot: 2,
            trade: TradeId::B,
            cycle: 17,
            role: OrderRole::Exit,
            seq: 42,
        };
        assert_eq!(id.to_string(), "2:B:17:ex:42");
        assert_eq!("2:B:17:ex:42".parse::<OrderId>().unwrap(), id);
        for bad in [
            "",
            "2:B:17:ex",
            "2:C:17:ex:1",
            "2:B:x:ex:1",
            "2:B:1:xx:1",
            "2:B:1:ex:1:9",
        ] {
            assert!(bad.parse::<OrderId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn trades_have_opposite_entry_and_exit_sides() {
        assert_eq!(TradeId::A.entry_side(), Side::Sell);
        assert_eq!(TradeId::A.exit_side(), Side::Buy);
        assert_eq!(TradeId::B.entry_side(), Side::Buy);
        assert_eq!(TradeId::B.exit_side(), Side::Sell);
    }

    #[test]
    fn fill_totals_average_is_volume_weighted() {
        use rust_decimal_macros::dec;
        let mut f = FillTotals::default();
        assert_eq!(f.avg_price(), None);
        f.add(dec!(0.1), dec!(10), dec!(1), dec!(0.01), 5);
        f.add(dec!(0.2), dec!(30), dec!(6), dec!(0.02), 3);
        assert_eq!(f.avg_price(), Some(dec!(0.175)));
        assert_eq!((f.first_at, f.last_at), (Some(3), Some(5)));
        assert_eq!(f.fee, dec!(0.03));
    }

    #[test]
    fn new_slot_is_s0_and_ids_are_sequential() {
        let mut s = SlotState::new(1);
        assert_eq!(s.phase(), Phase::S0);
        let a = s.issue_id(TradeId::A, OrderRole::Entry);
        let b = s.issue_id(TradeId::B, OrderRole::Entry);
        assert_eq!((a.seq, b.seq, s.next_seq), (1, 2, 3));
    }
}
