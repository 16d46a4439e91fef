//! The reducer's inputs ([`Event`]) and outputs ([`Action`]).
//!
//! Events are what the runtime observed (prices, the clock, exchange
//! reports, ledger acknowledgements); actions are what it must do (place,
//! cancel, write to the ledger) or report. Both are plain data so a backtest
//! or a replay can feed and check them without any I/O.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::engine::invariants::Violation;
use crate::engine::types::{OrderId, OrderRole, RepriceKind, SlotId, TradeId};
use crate::pair::Side;

/// Why the exchange refused a placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlaceFailReason {
    /// `EOrder:Insufficient funds`: the slot runs one-sided (legal degraded
    /// shape) until the retry.
    InsufficientFunds,
    /// The exchange says the order is below its minimums.
    BelowMinimum,
    /// A post-only order would have crossed the book.
    WouldCross,
    /// Open-order limit of the account/pair reached.
    OrdersLimit,
    /// Anything else, with the exchange's text.
    Other(String),
}

/// Why an order left the book without (fully) filling. The engine reacts
/// the same way to all of them (re-place an unfilled entry, turn a partly
/// filled one into an exit, re-place a sticky exit); the reason is carried
/// for logs and the ledger's close reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GoneReason {
    /// The engine's own cancel (refresh) went through.
    CancelledByEngine,
    /// Cancelled by someone else (operator, exchange).
    Cancelled,
    /// Expired on the exchange.
    Expired,
}

/// Something the runtime observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// New market price (last trade / mid / candle close).
    PriceTick {
        /// Market price.
        price: Decimal,
        /// Current time.
        now: i64,
    },
    /// The loop's clock advanced (cooldowns, retries) without a new price.
    TimerTick {
        /// Current time.
        now: i64,
    },
    /// The exchange acknowledged a placement.
    Placed {
        /// Local id.
        order_id: OrderId,
        /// Exchange id.
        txid: String,
    },
    /// The exchange refused a placement.
    PlaceFailed {
        /// Local id.
        order_id: OrderId,
        /// Why.
        reason: PlaceFailReason,
    },
    /// One execution of an order (incremental, not cumulative: the runtime
    /// delivers each execution exactly once).
    Fill {
        /// Local id.
        order_id: OrderId,
        /// Exchange id of the order.
        txid: String,
        /// Execution price.
        price: Decimal,
        /// Executed volume.
        volume: Decimal,
        /// Quote cost as reported.
        cost: Decimal,
        /// Fee as reported.
        fee: Decimal,
        /// Execution time.
        at: i64,
    },
    /// The order is no longer on the book (cancelled or expired) and will not
    /// fill any more.
    OrderGone {
        /// Local id.
        order_id: OrderId,
        /// Why.
        reason: GoneReason,
    },
    /// The profit target in force changed (volatility-adjusted, SPEC §5):
    /// new exits are placed with it and record it.
    ProfitTarget {
        /// Percent.
        pct: Decimal,
    },
    /// Which entries wait against a sustained move, from now on
    /// ([`crate::engine::EntryHold`]).
    EntryHold {
        /// The hold in force.
        hold: crate::engine::hold::EntryHold,
    },
    /// Self-healing decided to move this exit to `new_price` (SPEC §5). The
    /// engine cancels the live placement and re-places the remaining volume
    /// at the new price once the cancel is confirmed; only then is the
    /// reprice booked ([`Action::Repriced`]).
    RepriceExit {
        /// Current local id of the exit.
        order_id: OrderId,
        /// New limit price (on the tick grid).
        new_price: Decimal,
        /// Why.
        kind: RepriceKind,
        /// Whether subsidy pays for the move.
        subsidized: bool,
        /// Whether the move reaches the fillable price (for counters).
        full: bool,
        /// Most subsidy the move may consume (an operator's breakeven move
        /// spends what the slot has and accepts reduced profit for the
        /// rest); `None`: the whole distance moved, as planned.
        subsidy_cap: Option<Decimal>,
    },
    /// An operator's close at market of an exit (SPEC §8): cancel the limit
    /// placement, then place the remaining volume as a market order.
    CloseAtMarket {
        /// Current local id of the exit.
        order_id: OrderId,
    },
    /// An operator hold on an exit: no automatic reprice before `until`
    /// (`None` releases the hold).
    HoldExit {
        /// Current local id of the exit.
        order_id: OrderId,
        /// End of the hold, unix seconds.
        until: Option<i64>,
    },
    /// The ledger assigned a position id to the position worked by this exit
    /// (any id of the same slot, trade and cycle matches).
    PositionOpened {
        /// Local id of the exit (or of a previous placement of it).
        order_id: OrderId,
        /// Ledger id.
        position_id: String,
    },
}

impl Event {
    /// The exchange's answer to a placement, if this event is one: the
    /// order and its txid (`None`: refused).
    #[must_use]
    pub fn placement_answer(&self) -> Option<(OrderId, Option<&str>)> {
        match self {
            Self::Placed { order_id, txid } => Some((*order_id, Some(txid))),
            Self::PlaceFailed { order_id, .. } => Some((*order_id, None)),
            _ => None,
        }
    }
}

/// An order the runtime must place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    /// Local id, also the idempotency key / client order id.
    pub id: OrderId,
    /// Buy or sell.
    pub side: Side,
    /// Limit price on the tick grid.
    pub price: Decimal,
    /// Volume on the lot grid.
    pub volume: Decimal,
    /// Entry or exit (also in `id`, repeated for convenience).
    pub role: OrderRole,
}

/// Everything the ledger needs to open a position (SPEC §3.1) when an entry
/// fill produces an exit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionIntent {
    /// Slot.
    pub slot: SlotId,
    /// Trade (A|B).
    pub trade: TradeId,
    /// Cycle of the trade.
    pub cycle: u64,
    /// Idempotency key: the entry order's local id (stable across restarts).
    pub open_key: String,
    /// Local id of the exit that works the position.
    pub exit_order_id: OrderId,
    /// Exchange id of the entry order, if known.
    pub entry_txid: Option<String>,
    /// Volume-weighted entry fill price.
    pub entry_price: Decimal,
    /// Entry cost as reported.
    pub entry_cost: Decimal,
    /// Entry fee as reported.
    pub entry_fee: Decimal,
    /// Filled volume (the position volume).
    pub entry_volume: Decimal,
    /// Time of the last entry execution.
    pub entry_time: i64,
    /// Exit side.
    pub exit_side: Side,
    /// Exit price (`original_exit_price`).
    pub exit_price: Decimal,
    /// Profit target the exit was placed with.
    pub target_profit_pct: Decimal,
}

/// A completed round trip, booked from actual fills.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleBooking {
    /// Slot.
    pub slot: SlotId,
    /// Trade.
    pub trade: TradeId,
    /// Cycle.
    pub cycle: u64,
    /// Ledger position, if it was known by then.
    pub position_id: Option<String>,
    /// Local id of the exit order (last placement).
    pub exit_order_id: OrderId,
    /// Volume-weighted entry price.
    pub entry_price: Decimal,
    /// Volume-weighted exit price.
    pub exit_price: Decimal,
    /// Round-trip volume.
    pub volume: Decimal,
    /// Exit cost as reported.
    pub exit_cost: Decimal,
    /// Gross P&L: A `(entry - exit) x vol`, B `(exit - entry) x vol`.
    pub gross: Decimal,
    /// Entry fee as reported.
    pub entry_fee: Decimal,
    /// Exit fee as reported.
    pub exit_fee: Decimal,
    /// `entry_fee + exit_fee`.
    pub fees: Decimal,
    /// `gross - fees`.
    pub net: Decimal,
    /// Entry time.
    pub entry_time: i64,
    /// Time of the last exit execution.
    pub exit_time: i64,
    /// Profit target the exit carried.
    pub target_profit_pct: Decimal,
    /// The round trip ended by an operator's close at market (the ledger
    /// closes it `written_off` with the realized loss).
    #[serde(default)]
    pub written_off: bool,
    /// Exchange id of the order whose fill completed it: the exit as last
    /// placed, or a close at market's market order.
    pub exit_txid: Option<String>,
}

/// A reprice that took effect: the old placement is gone and the remaining
/// volume is being re-placed at the new price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepriceBooking {
    /// Slot.
    pub slot: SlotId,
    /// Trade.
    pub trade: TradeId,
    /// Cycle.
    pub cycle: u64,
    /// Local id of the replacement exit (also the reprice's idempotency
    /// key: unique per reprice, stable across restarts).
    pub new_order_id: OrderId,
    /// Price before.
    pub old_price: Decimal,
    /// Price after.
    pub new_price: Decimal,
    /// Volume re-placed (the part of the position still open).
    pub volume: Decimal,
    /// Why.
    pub kind: RepriceKind,
    /// Subsidy spent: `|old - new| x volume` when subsidized, else zero.
    pub subsidy_consumed: Decimal,
    /// Whether the move reached the fillable price.
    pub full: bool,
    /// When it took effect.
    pub at: i64,
    /// Entry time of the position (journal times never precede it).
    pub entry_time: i64,
}

/// Which order event a [`Notice`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// [`Event::Placed`].
    Placed,
    /// [`Event::PlaceFailed`].
    PlaceFailed,
    /// [`Event::Fill`].
    Fill,
    /// [`Event::OrderGone`].
    Gone,
    /// [`Event::PositionOpened`].
    PositionOpened,
    /// [`Event::RepriceExit`].
    Reprice,
    /// [`Event::HoldExit`].
    Hold,
    /// [`Event::CloseAtMarket`].
    Close,
}

/// What is wrong with an ignored event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvalidReason {
    /// A market price of zero or less.
    NonPositivePrice,
    /// A fill with a price or volume of zero or less.
    NonPositiveFill,
    /// A fill with a negative cost or fee.
    NegativeCostOrFee,
    /// A second, different position id for the same exit (the first is
    /// write-once and kept).
    PositionIdConflict,
    /// A reprice of an exit that is not live on the book, already being
    /// repriced, or to a price that is not positive or off the tick grid.
    RepriceNotApplicable,
}

/// Something worth reporting that is not an order or a ledger write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Notice {
    /// A close at market failed (the market order was refused or left
    /// unfilled): the limit exit is restored under `restored`.
    MarketCloseFailed {
        /// The market order's id.
        order_id: OrderId,
        /// The restored exit's id.
        restored: OrderId,
    },
    /// A real invariant violation halted this slot (only this slot).
    SlotHalted {
        /// Slot.
        slot: SlotId,
        /// What broke.
        violation: Violation,
    },
    /// An event named an order the engine does not hold (stale id, race with
    /// a refresh, another bot's order): no state changed.
    UnknownOrder {
        /// The id in the event.
        order_id: OrderId,
        /// Which event.
        event: EventKind,
    },
    /// An event with impossible numbers (non-positive price/volume, negative
    /// fee/cost): ignored, no state changed.
    InvalidEvent {
        /// The order it named, if any.
        order_id: Option<OrderId>,
        /// What is wrong.
        reason: InvalidReason,
    },
    /// A trade could not place its entry because the order size misses the
    /// pair minimums at this price; it waits ([`crate::engine::IdleReason::BelowMinimum`])
    /// and retries every tick. Reported once when the wait starts.
    EntryBelowMinimum {
        /// Slot.
        slot: SlotId,
        /// Trade.
        trade: TradeId,
        /// Entry price it would have used.
        price: Decimal,
        /// Which minimum it misses, with the numbers.
        detail: String,
    },
    /// The exchange reported an exit execution before its entry's: the
    /// booking uses the entry time as the exit time so the position's
    /// journal stays monotonic (the ledger refuses an exit before its entry).
    ClockSkew {
        /// The exit order.
        order_id: OrderId,
        /// Entry time (from the entry's executions).
        entry_time: i64,
        /// Exit time the exchange reported.
        reported_exit_time: i64,
    },
    /// The event was for a halted slot and was not applied.
    IgnoredHalted {
        /// Slot.
        slot: SlotId,
    },
}

/// What the runtime must do, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Place a limit order.
    Place(OrderRequest),
    /// Cancel an order; its removal is confirmed by a later
    /// [`Event::OrderGone`] (the engine keeps tracking it until then).
    Cancel {
        /// Local id.
        order_id: OrderId,
        /// Exchange id if known.
        txid: Option<String>,
    },
    /// Open a ledger position for a new exit (idempotent on `open_key`).
    OpenPosition(PositionIntent),
    /// Book a completed cycle (close the ledger position `filled`).
    BookCycle(CycleBooking),
    /// Journal a reprice that took effect (debits subsidy when paid).
    Repriced(RepriceBooking),
    /// Report something (halt, unknown order, invalid event).
    Notice(Notice),
}
