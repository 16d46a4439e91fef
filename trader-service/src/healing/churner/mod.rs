//! The churner (SPEC §6) as pure code: per slot, a small fast round trip
//! near the market while the slot's position is stuck and the market
//! ranges; its profit is subsidy for that position.
//!
//! Shaped like the pair engine: [`ChurnBook`] is the whole state
//! (serde, persisted by the runtime in the same commit as the engine
//! step), [`plan`] decides activation, timeouts and deactivation from a
//! view of the slots, [`on_event`] folds in what the exchange reported, and
//! both return [`ChurnAction`]s the runtime carries out. Nothing here does
//! I/O or reads a clock.
//!
//! Life of one slot's churner:
//! `idle -> entry resting -> exit resting -> idle` (round trip done), with
//! `exit resting -> handed over` when the exit outlives
//! `CHURNER_EXIT_TIMEOUT_SEC`: the exit stays on the book, the round trip
//! becomes a position the slot holds like any other (it ages and healing
//! reprices it, see `handover`), and the slot's churner pauses until it
//! closes. Filled churner inventory always has an exit (never naked): no
//! rule here cancels an exit except healing's reprice of a handed-over one,
//! which places the remainder again, and an operator's close at market of
//! one, which sends the remainder as a market order (or restores the exit).
//!
//! Module map: [`config`] (tunables), [`state`] (the book, orders, reserve,
//! counters), `events` (folding the exchange's reports), `handover` (the
//! handed-over round trip as a position healing moves), `hit_rate` (the
//! cool-off when too many round trips are handed over), `close` (an
//! operator's close at market of one), `manual` (operator spawn, kill and
//! reserve), this file (the per-loop decisions), `tests`
//! beside it.

mod close;
pub mod config;
mod events;
mod handover;
mod hit_rate;
mod manual;
pub mod state;

#[cfg(test)]
mod tests;

use rust_decimal::Decimal;

use crate::engine::{AgeBand, HealFacts, SlotId};
use crate::pair::{PairSpec, Side};

pub use config::ChurnerConfig;
pub use events::{ChurnEvent, RETRY_SEC, on_event, route};
pub use handover::{
    ChurnReprice, HandedOverView, OperatorTarget, RepriceRefused, request_close, request_reprice,
};
pub use hit_rate::{HitGate, HitRecord, MAX_COOLOFF_SEC};
pub use manual::{ManualCommand, ManualError, check_reserve, manual};
pub use state::{
    CancelWhy, ChurnBook, ChurnOrder, ChurnPosition, ChurnStage, ChurnStats, Funding, ParentRef,
    PauseReason, Reserve, SlotChurn,
};

const HUNDRED: Decimal = Decimal::ONE_HUNDRED;

/// Client order id prefix of churner orders: never parses as an engine
/// order id (`slot:trade:cycle:role:seq`), so the two id spaces cannot meet.
pub const ORDER_PREFIX: &str = "ch:";

/// Ledger open key prefix of churner round trips.
pub const OPEN_KEY_PREFIX: &str = "churn:";

/// The open position a slot's churner works for, as the runtime sees it
/// this loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentView {
    /// The parent's identity.
    pub parent: ParentRef,
    /// Its age band now.
    pub band: AgeBand,
    /// A subsidized reprice moved its exit all the way to the fillable
    /// price: nothing left to earn for it.
    pub fully_repriced: bool,
}

/// One slot as the runtime sees it this loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotView {
    /// Slot.
    pub slot: SlotId,
    /// The slot's worst open position (band aging or worse), if any.
    pub parent: Option<ParentView>,
    /// Quote the slot holds idle (not in an order), USD.
    pub idle_usd: Decimal,
    /// Subsidy its parent still needs beyond the slot's balance
    /// (`max(0, needed - balance)`).
    pub still_needed: Decimal,
}

/// Everything [`plan`] reads besides the book.
#[derive(Debug, Clone)]
pub struct ChurnInputs<'a> {
    /// Tunables.
    pub cfg: &'a ChurnerConfig,
    /// Tick and lot grids, minimums.
    pub pair: &'a PairSpec,
    /// Unix seconds.
    pub now: i64,
    /// Market price.
    pub market: Decimal,
    /// The regime is ranging by a ready detector (or an operator override).
    pub ranging: bool,
    /// Open orders the account may still add before the exchange's limit.
    pub headroom: u32,
    /// Every slot, in slot order.
    pub slots: &'a [SlotView],
}

/// The ledger writes the runtime must queue (orders are state: the
/// runtime places every [`ChurnOrder::wants_placement`] and cancels every
/// entry whose cancel was decided, loop after loop until the exchange
/// confirms, so nothing is lost to a crash or a failed call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChurnAction {
    /// A churner entry filled: its round trip is a ledger position
    /// (`slot_mode = churner`).
    Open {
        /// Slot.
        slot: SlotId,
        /// The round trip.
        position: ChurnPosition,
    },
    /// A round trip's exit filled: its ledger position closes `filled`.
    Close {
        /// Slot.
        slot: SlotId,
        /// The round trip.
        position: ChurnPosition,
        /// Volume-weighted exit price.
        exit_price: Decimal,
        /// Exit cost as reported.
        exit_cost: Decimal,
        /// Exit fee as reported.
        exit_fee: Decimal,
        /// Unix seconds.
        exit_time: i64,
        /// Net after both fees (negative is a loss, booked here).
        net: Decimal,
        /// Where a positive net goes.
        routed: Routing,
        /// Closed at market by an operator (SPEC §8): the ledger closes it
        /// `written_off` with its realized loss, no credit.
        written_off: bool,
        /// Exchange id of the order whose fill closed it (the exit, or the
        /// close's market order).
        exit_txid: Option<String>,
    },
    /// The market order of a close at market was refused or left the book
    /// unfilled: the limit exit is restored (journaled on the round trip).
    CloseFailed {
        /// Slot.
        slot: SlotId,
        /// The round trip's ledger open key.
        open_key: String,
        /// Client id of the market order.
        order_id: String,
        /// Client id the exit is restored under.
        restored: String,
        /// Unix seconds.
        at: i64,
    },
    /// The exit outlived its timeout: the round trip is handed over to the
    /// slot (journaled `handed_over`); the exit stays on the book.
    HandOver {
        /// Slot.
        slot: SlotId,
        /// The round trip.
        position: ChurnPosition,
        /// Seconds since the entry filled.
        age_seconds: i64,
    },
    /// A handed-over round trip's exit was repriced by healing: the ledger
    /// journals `repriced` on the round trip and the slot's subsidy pays.
    Repriced(ChurnReprice),
}

/// Where a finished round trip's net went (SPEC §6 profit routing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routing {
    /// Credited to the parent as `churner_profit` (the parent still needed
    /// subsidy).
    Parent(ParentRef),
    /// Added to the slot's churner order size.
    Compound,
    /// Not positive: nothing to route; a loss is booked on the round trip.
    Nothing,
}

/// Whether a slot's churner may run now, or why not (the first failing
/// gate, for logs and the status).
pub fn gate(
    s: &SlotChurn,
    view: &SlotView,
    inputs: &ChurnInputs<'_>,
    cooling: bool,
) -> Result<ParentRef, PauseReason> {
    if s.manual == Some(ManualCommand::Kill) {
        return Err(PauseReason::Killed);
    }
    let Some(parent) = &view.parent else {
        return Err(PauseReason::NoStuckPosition);
    };
    let forced = s.manual == Some(ManualCommand::Spawn);
    if parent.band < AgeBand::Aging && !forced {
        return Err(PauseReason::NoStuckPosition);
    }
    if parent.fully_repriced && !forced {
        return Err(PauseReason::ParentRepriced);
    }
    if !inputs.ranging && !forced {
        return Err(PauseReason::NotRanging);
    }
    if cooling && !forced {
        return Err(PauseReason::LowHitRate);
    }
    if inputs.headroom < inputs.cfg.min_headroom {
        return Err(PauseReason::NoHeadroom);
    }
    Ok(parent.parent.clone())
}

/// True when [`plan`] can change nothing at `now`, whatever the slots'
/// positions: no slot's churner works or holds an operator command, and
/// [`gate`] holds every activation back (the regime is not ranging, or the
/// hit-rate gate cools every churner off). The backtest's quiet-candle
/// check then skips building the slots' views and probing the plan, which
/// is most candles on markets where the churner cools off.
#[must_use]
pub fn dormant(book: &ChurnBook, now: i64, ranging: bool) -> bool {
    (!ranging || book.hits.cooling(now))
        && book
            .slots
            .values()
            .all(|s| matches!(s.stage, ChurnStage::Idle) && s.manual.is_none())
}

/// Churners allowed at once: `(headroom - min) / 2`, at most
/// `CHURNER_MAX_ACTIVE`.
#[must_use]
pub fn capacity(cfg: &ChurnerConfig, headroom: u32) -> u32 {
    (headroom.saturating_sub(cfg.min_headroom) / 2).min(cfg.max_active)
}

/// The entry side of a churner working for `parent`: the same direction
/// as the parent's entry (a stuck long churns long), so the inventory it
/// holds meanwhile is the kind the slot already trades.
#[must_use]
pub fn entry_side(parent: &ParentRef) -> Side {
    parent.trade.entry_side()
}

/// Entry price: market -/+ `CHURNER_ENTRY_PCT`, on the tick grid, rounded
/// away from the market.
#[must_use]
pub fn entry_price(cfg: &ChurnerConfig, pair: &PairSpec, side: Side, market: Decimal) -> Decimal {
    let raw = match side {
        Side::Buy => market * (Decimal::ONE - cfg.entry_pct / HUNDRED),
        Side::Sell => market * (Decimal::ONE + cfg.entry_pct / HUNDRED),
    };
    pair.round_price_passive(side, raw)
}

/// Exit price of a round trip: fill x (1 +/- `CHURNER_PROFIT_PCT`/100), on
/// the tick grid away from the market, and never crossing the market (a
/// sell never below it plus a tick, a buy never above it less a tick), so
/// it rests as a maker and never realizes less than its target.
#[must_use]
pub fn exit_price(
    cfg: &ChurnerConfig,
    pair: &PairSpec,
    exit_side: Side,
    fill: Decimal,
    market: Decimal,
) -> Decimal {
    let tick = pair.tick();
    let raw = match exit_side {
        Side::Sell => (fill * (Decimal::ONE + cfg.profit_pct / HUNDRED)).max(market + tick),
        Side::Buy => (fill * (Decimal::ONE - cfg.profit_pct / HUNDRED)).min(market - tick),
    };
    pair.round_price_passive(exit_side, raw)
}

/// Volume of a churner entry worth the slot's size at `price`: the
/// configured USD size (or the pair minimum plus a margin) plus what the
/// slot compounded, on the lot grid; `None` when it misses the minimums.
#[must_use]
pub fn entry_volume(
    cfg: &ChurnerConfig,
    pair: &PairSpec,
    compounded_usd: Decimal,
    price: Decimal,
) -> Option<Decimal> {
    let base = base_size_usd(cfg, pair, price)?;
    pair.volume_for(base + compounded_usd, price).ok()
}

/// The base order size in USD at `price` (`CHURNER_ORDER_SIZE_USD`, else
/// the pair minimum plus 5 %): also the most the reserve lends one slot.
#[must_use]
pub fn base_size_usd(cfg: &ChurnerConfig, pair: &PairSpec, price: Decimal) -> Option<Decimal> {
    match cfg.order_size_usd {
        Some(usd) => Some(usd),
        None => {
            let min = pair.min_volume_at(price).ok()?;
            let v = (min * Decimal::new(105, 2)).round_dp_with_strategy(
                pair.lot_decimals,
                rust_decimal::RoundingStrategy::AwayFromZero,
            );
            Some(v * price)
        }
    }
}

/// Decides this loop: deactivations, timeouts, hand-overs, exit retries
/// and activations, in slot order. Mutates the book like the engine's
/// reducer and returns the ledger writes it implies.
pub fn plan(book: &mut ChurnBook, inputs: &ChurnInputs<'_>) -> Vec<ChurnAction> {
    let mut out = Vec::new();
    if inputs.market <= Decimal::ZERO {
        return out;
    }
    for view in inputs.slots {
        let slot = view.slot;
        // Taken out in place (an idle placeholder stays; step_slot never
        // reads `book.slots`) and put back by `insert` over the same key:
        // neither shifts the map's nodes, which a remove and re-insert did
        // for every slot on every quiet candle of a backtest.
        let mut s = std::mem::take(book.slots.entry(slot).or_default());
        let verdict = if inputs.cfg.enabled {
            gate(&s, view, inputs, book.hits.cooling(inputs.now))
        } else {
            Err(PauseReason::Disabled)
        };
        step_slot(book, slot, &mut s, &verdict, inputs, &mut out);
        s.paused = match (&s.stage, &verdict) {
            (ChurnStage::HandedOver { .. }, _) => Some(PauseReason::HandedOverOpen),
            (_, Err(r)) => Some(*r),
            _ => s
                .paused
                .filter(|p| matches!(p, PauseReason::NoCapital | PauseReason::BelowMinimum)),
        };
        if s.manual == Some(ManualCommand::Kill)
            && matches!(s.stage, ChurnStage::Idle)
            && view.parent.is_none()
        {
            // A kill holds until the slot's parent is gone.
            s.manual = None;
        }
        book.slots.insert(slot, s);
    }
    // Activations, after every deactivation freed what it could.
    let cap = capacity(inputs.cfg, inputs.headroom) as usize;
    for view in inputs.slots {
        if !inputs.cfg.enabled || book.active() >= cap {
            break;
        }
        let idle = book
            .slots
            .get(&view.slot)
            .is_some_and(|s| matches!(s.stage, ChurnStage::Idle));
        if !idle {
            continue;
        }
        let cooling = book.hits.cooling(inputs.now);
        let Some(Ok(parent)) = book
            .slots
            .get(&view.slot)
            .map(|s| gate(s, view, inputs, cooling))
        else {
            continue;
        };
        activate(book, inputs, view, parent);
    }
    out
}

/// One slot's timeouts and deactivation.
fn step_slot(
    book: &mut ChurnBook,
    slot: SlotId,
    s: &mut SlotChurn,
    verdict: &Result<ParentRef, PauseReason>,
    inputs: &ChurnInputs<'_>,
    out: &mut Vec<ChurnAction>,
) {
    let now = inputs.now;
    let mut drop_entry = false;
    let mut hand_over = false;
    match &mut s.stage {
        ChurnStage::Idle | ChurnStage::HandedOver { .. } => {}
        ChurnStage::Entry { order, cancel, .. } => {
            if order.txid.is_some() {
                // A partly filled entry is never cancelled: its fill gets
                // an exit once it completes or leaves the book.
                if cancel.is_none() && order.fills.volume.is_zero() {
                    *cancel = match verdict {
                        Err(r) => Some(CancelWhy::Deactivated(*r)),
                        Ok(_) if now - order.created_at >= inputs.cfg.entry_timeout_sec => {
                            Some(CancelWhy::Timeout)
                        }
                        Ok(_) => None,
                    };
                }
            } else if !order.sending && verdict.is_err() {
                // Never reached the exchange: dropped locally.
                drop_entry = true;
            }
        }
        ChurnStage::Exit {
            order, position, ..
        } => {
            if now - position.entry_time >= inputs.cfg.exit_timeout_sec {
                hand_over = true;
            }
            if order.txid.is_none() && !order.sending && order.retry_at.is_some_and(|t| now >= t) {
                order.price = exit_price(
                    inputs.cfg,
                    inputs.pair,
                    order.side,
                    position.entry_price,
                    inputs.market,
                );
                order.retry_at = None;
            }
        }
    }
    if drop_entry {
        book.reserve.lent.remove(&slot);
        s.stage = ChurnStage::Idle;
    }
    if hand_over {
        let stage = std::mem::take(&mut s.stage);
        if let ChurnStage::Exit {
            order,
            position,
            parent,
            funding,
        } = stage
        {
            out.push(ChurnAction::HandOver {
                slot: order.slot,
                position: position.clone(),
                age_seconds: now - position.entry_time,
            });
            book.stats.handed_over += 1;
            book.hits.handed_over(now, &inputs.cfg.hit_gate);
            s.stage = ChurnStage::HandedOver {
                order,
                position,
                parent,
                funding,
                at: now,
                heal: HealFacts::default(),
                reprice: None,
                close: None,
            };
        }
    }
    if let ChurnStage::HandedOver {
        order,
        position,
        heal,
        ..
    } = &mut s.stage
        && order.txid.is_none()
        && !order.sending
        && order.retry_at.is_some_and(|t| now >= t)
    {
        order.price = handover::replacement_price(inputs, order, position, heal);
        order.retry_at = None;
    }
}

/// Decides a slot's next entry if it can be funded; records why not.
fn activate(book: &mut ChurnBook, inputs: &ChurnInputs<'_>, view: &SlotView, parent: ParentRef) {
    let slot = view.slot;
    let side = entry_side(&parent);
    let price = entry_price(inputs.cfg, inputs.pair, side, inputs.market);
    let can_lend = |cost: Decimal, book: &ChurnBook| -> Option<Funding> {
        let limit = base_size_usd(inputs.cfg, inputs.pair, price)?;
        // The reserve lends at most one base order size per slot; what the
        // slot compounded it pays itself.
        let lend = cost.min(limit);
        book.reserve
            .can_lend(inputs.cfg.reserve_limit(inputs.pair, inputs.market), lend)
            .then_some(Funding::Reserve(lend))
    };
    let Some(s) = book.slots.get(&slot) else {
        return;
    };
    let Some(volume) = entry_volume(inputs.cfg, inputs.pair, s.compounded_usd, price) else {
        if let Some(s) = book.slots.get_mut(&slot) {
            s.paused = Some(PauseReason::BelowMinimum);
        }
        return;
    };
    let cost = volume * price;
    let funding = if view.idle_usd >= cost {
        Some(Funding::Idle)
    } else {
        can_lend(cost, book)
    };
    let Some(s) = book.slots.get_mut(&slot) else {
        return;
    };
    let Some(funding) = funding else {
        s.paused = Some(PauseReason::NoCapital);
        return;
    };
    s.cycle += 1;
    s.seq += 1;
    let order = ChurnOrder {
        id: order_id(slot, s.cycle, "en", s.seq),
        slot,
        side,
        price,
        volume,
        txid: None,
        sending: false,
        created_at: inputs.now,
        retry_at: None,
        fills: crate::engine::FillTotals::default(),
        current: crate::engine::FillTotals::default(),
    };
    s.paused = None;
    s.stage = ChurnStage::Entry {
        order,
        parent,
        funding: funding.clone(),
        cancel: None,
    };
    if let Funding::Reserve(lend) = funding {
        book.reserve.lend(slot, lend);
    }
}

/// The client id of a churner order.
#[must_use]
pub fn order_id(slot: SlotId, cycle: u64, role: &str, seq: u64) -> String {
    format!("{ORDER_PREFIX}{slot}:{cycle}:{role}:{seq}")
}

/// The slot a churner client id belongs to.
#[must_use]
pub fn slot_of(order_id: &str) -> Option<SlotId> {
    order_id
        .strip_prefix(ORDER_PREFIX)?
        .split(':')
        .next()?
        .parse()
        .ok()
}
