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
//! becomes a position the slot holds like any other, and the slot's
//! churner pauses until it closes. Filled churner inventory always has an
//! exit at or above its profit target (never a loss, never naked): no rule
//! here cancels an exit.
//!
//! Module map: [`config`] (tunables), [`state`] (the book, orders, reserve,
//! counters), this file (the decisions), `tests` beside it.

pub mod config;
pub mod state;

#[cfg(test)]
mod tests;

use rust_decimal::Decimal;

use crate::engine::{AgeBand, SlotId, TradeId};
use crate::pair::{PairSpec, Side};

pub use config::ChurnerConfig;
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

/// What the exchange reported about a churner order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChurnEvent {
    /// The order is on the book under `txid`.
    Placed {
        /// Client id.
        order_id: String,
        /// Exchange id.
        txid: String,
    },
    /// The exchange refused the order for good.
    PlaceFailed {
        /// Client id.
        order_id: String,
        /// Why, for the status.
        reason: String,
        /// Unix seconds.
        at: i64,
    },
    /// New execution of the order (a delta, never a running total).
    Fill {
        /// Client id.
        order_id: String,
        /// Price of the new execution(s).
        price: Decimal,
        /// New volume.
        volume: Decimal,
        /// New cost.
        cost: Decimal,
        /// New fee.
        fee: Decimal,
        /// Unix seconds.
        at: i64,
    },
    /// The order left the book (cancelled, expired, or fully filled).
    Gone {
        /// Client id.
        order_id: String,
        /// Unix seconds.
        at: i64,
    },
}

/// Operator commands (SPEC §6 "spawn and kill a churner by hand").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManualCommand {
    /// Run the slot's churner even if the automatic gates would not
    /// activate it (capital, headroom and a parent are still required).
    Spawn,
    /// Stop the slot's churner: a resting entry is cancelled; a filled
    /// entry keeps its exit.
    Kill,
}

/// Why a churner cannot act on a manual command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManualError {
    /// The slot does not exist.
    #[error("slot {0} does not exist")]
    UnknownSlot(SlotId),
    /// The churner is off in the configuration.
    #[error("the churner is disabled (CHURNER_ENABLED=false)")]
    Disabled,
    /// The slot's churner is already under this command: nothing to do.
    #[error("nothing to do: the churner of slot {0} is already {1}")]
    Already(SlotId, &'static str),
    /// A reserve below what churners have borrowed now.
    #[error(
        "reserve {reserve} USD is below the {lent} USD lent to churners now; kill churners \
         or wait for their cycles to end first"
    )]
    ReserveBelowLent {
        /// The reserve asked for.
        reserve: Decimal,
        /// Lent now.
        lent: Decimal,
    },
}

/// Whether an operator may set the reserve to `reserve` now: the churner
/// must be on and the reserve must cover what is lent (loans are never
/// called back early, so a smaller reserve would be over-lent).
///
/// # Errors
/// [`ManualError::Disabled`] or [`ManualError::ReserveBelowLent`].
pub fn check_reserve(
    book: &ChurnBook,
    cfg: &ChurnerConfig,
    reserve: Decimal,
) -> Result<(), ManualError> {
    if !cfg.enabled {
        return Err(ManualError::Disabled);
    }
    let lent = book.reserve.total();
    if reserve < lent {
        return Err(ManualError::ReserveBelowLent { reserve, lent });
    }
    Ok(())
}

impl ManualCommand {
    /// What the command leaves the churner as, in words.
    #[must_use]
    pub fn as_state(self) -> &'static str {
        match self {
            Self::Spawn => "spawned by hand",
            Self::Kill => "killed",
        }
    }
}

/// Applies an operator command to a slot's churner; the next [`plan`]
/// carries it out.
///
/// # Errors
/// [`ManualError`] when the slot is unknown, the churner is off, or the
/// slot's churner is already under `cmd`; nothing changes then.
pub fn manual(
    book: &mut ChurnBook,
    cfg: &ChurnerConfig,
    slots: u32,
    slot: SlotId,
    cmd: ManualCommand,
) -> Result<(), ManualError> {
    if slot >= slots {
        return Err(ManualError::UnknownSlot(slot));
    }
    if !cfg.enabled {
        return Err(ManualError::Disabled);
    }
    if book.slots.get(&slot).and_then(|s| s.manual) == Some(cmd) {
        return Err(ManualError::Already(slot, cmd.as_state()));
    }
    let s = book.slots.entry(slot).or_default();
    s.manual = Some(cmd);
    Ok(())
}

/// Whether a slot's churner may run now, or why not (the first failing
/// gate, for logs and the status).
pub fn gate(
    s: &SlotChurn,
    view: &SlotView,
    inputs: &ChurnInputs<'_>,
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
    if inputs.headroom < inputs.cfg.min_headroom {
        return Err(PauseReason::NoHeadroom);
    }
    Ok(parent.parent.clone())
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
        let mut s = book.slots.remove(&slot).unwrap_or_default();
        let verdict = if inputs.cfg.enabled {
            gate(&s, view, inputs)
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
        let Some(Ok(parent)) = book.slots.get(&view.slot).map(|s| gate(s, view, inputs)) else {
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
            s.stage = ChurnStage::HandedOver {
                order,
                position,
                parent,
                funding,
                at: now,
            };
        }
    }
    if let ChurnStage::HandedOver {
        order, position, ..
    } = &mut s.stage
        && order.txid.is_none()
        && !order.sending
        && order.retry_at.is_some_and(|t| now >= t)
    {
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

/// Folds one exchange report into the book. `still_needed` is the
/// subsidy the slot's parent still needs (profit routing), `market` the
/// latest price (an exit never crosses it).
pub fn on_event(
    book: &mut ChurnBook,
    cfg: &ChurnerConfig,
    pair: &PairSpec,
    event: &ChurnEvent,
    still_needed: Decimal,
    market: Decimal,
) -> Vec<ChurnAction> {
    let id = match event {
        ChurnEvent::Placed { order_id, .. }
        | ChurnEvent::PlaceFailed { order_id, .. }
        | ChurnEvent::Fill { order_id, .. }
        | ChurnEvent::Gone { order_id, .. } => order_id,
    };
    let mut out = Vec::new();
    let Some(slot) = slot_of(id) else {
        return out;
    };
    let Some(mut s) = book.slots.remove(&slot) else {
        return out;
    };
    if s.stage.order().is_none_or(|o| &o.id != id) {
        book.slots.insert(slot, s);
        return out;
    }
    let stage = std::mem::take(&mut s.stage);
    s.stage = match stage {
        ChurnStage::Entry {
            mut order,
            parent,
            funding,
            cancel,
        } => {
            let done = match event {
                ChurnEvent::Placed { txid, .. } => {
                    order.txid = Some(txid.clone());
                    order.sending = false;
                    None
                }
                ChurnEvent::PlaceFailed { reason, .. } => {
                    s.last_error = Some(format!("entry refused: {reason}"));
                    Some(false)
                }
                ChurnEvent::Fill {
                    price,
                    volume,
                    cost,
                    fee,
                    at,
                    ..
                } => {
                    order.fills.add(*price, *volume, *cost, *fee, *at);
                    order.current.add(*price, *volume, *cost, *fee, *at);
                    (order.fills.volume >= order.volume).then_some(true)
                }
                ChurnEvent::Gone { .. } => {
                    if order.fills.volume.is_zero() && cancel == Some(CancelWhy::Timeout) {
                        book.stats.entry_timeouts += 1;
                    }
                    Some(!order.fills.volume.is_zero())
                }
            };
            match done {
                None => ChurnStage::Entry {
                    order,
                    parent,
                    funding,
                    cancel,
                },
                Some(false) => {
                    book.reserve.lent.remove(&slot);
                    ChurnStage::Idle
                }
                Some(true) => {
                    // The round trip is a position with an exit now (a
                    // partly filled entry that left the book too).
                    let at = match event {
                        ChurnEvent::Fill { at, .. }
                        | ChurnEvent::Gone { at, .. }
                        | ChurnEvent::PlaceFailed { at, .. } => *at,
                        ChurnEvent::Placed { .. } => order.created_at,
                    };
                    let (position, exit) = start_exit(&mut s, slot, &order, cfg, pair, market, at);
                    out.push(ChurnAction::Open {
                        slot,
                        position: position.clone(),
                    });
                    ChurnStage::Exit {
                        order: exit,
                        position,
                        parent,
                        funding,
                    }
                }
            }
        }
        ChurnStage::Exit {
            mut order,
            position,
            parent,
            funding,
        } => {
            if exit_event(
                book,
                &mut s,
                &mut order,
                &position,
                &parent,
                event,
                still_needed,
                &mut out,
            ) {
                ChurnStage::Idle
            } else {
                ChurnStage::Exit {
                    order,
                    position,
                    parent,
                    funding,
                }
            }
        }
        ChurnStage::HandedOver {
            mut order,
            position,
            parent,
            funding,
            at,
        } => {
            if exit_event(
                book,
                &mut s,
                &mut order,
                &position,
                &parent,
                event,
                still_needed,
                &mut out,
            ) {
                ChurnStage::Idle
            } else {
                ChurnStage::HandedOver {
                    order,
                    position,
                    parent,
                    funding,
                    at,
                }
            }
        }
        ChurnStage::Idle => ChurnStage::Idle,
    };
    if matches!(s.stage, ChurnStage::Idle) && s.paused == Some(PauseReason::HandedOverOpen) {
        s.paused = None;
    }
    book.slots.insert(slot, s);
    out
}

/// The round trip of a filled entry and its exit order.
fn start_exit(
    s: &mut SlotChurn,
    slot: SlotId,
    entry: &ChurnOrder,
    cfg: &ChurnerConfig,
    pair: &PairSpec,
    market: Decimal,
    at: i64,
) -> (ChurnPosition, ChurnOrder) {
    let fills = &entry.fills;
    let entry_price = fills.notional / fills.volume;
    let exit_side = entry.side.opposite();
    let price = exit_price(cfg, pair, exit_side, entry_price, market);
    let position = ChurnPosition {
        open_key: format!(
            "{OPEN_KEY_PREFIX}{}",
            entry.txid.clone().unwrap_or_else(|| entry.id.clone())
        ),
        cycle: s.cycle,
        trade: match entry.side {
            Side::Buy => TradeId::B,
            Side::Sell => TradeId::A,
        },
        entry_price,
        entry_cost: fills.cost,
        entry_fee: fills.fee,
        volume: fills.volume,
        entry_time: fills.last_at.unwrap_or(at),
        exit_price: price,
        target_profit_pct: cfg.profit_pct,
    };
    s.seq += 1;
    let exit = ChurnOrder {
        id: order_id(slot, s.cycle, "ex", s.seq),
        slot,
        side: exit_side,
        price,
        volume: fills.volume,
        txid: None,
        sending: false,
        created_at: at,
        retry_at: None,
        fills: crate::engine::FillTotals::default(),
        current: crate::engine::FillTotals::default(),
    };
    (position, exit)
}

/// Folds an exit's report; returns whether the round trip is over.
#[allow(clippy::too_many_arguments)]
fn exit_event(
    book: &mut ChurnBook,
    s: &mut SlotChurn,
    order: &mut ChurnOrder,
    position: &ChurnPosition,
    parent: &ParentRef,
    event: &ChurnEvent,
    still_needed: Decimal,
    out: &mut Vec<ChurnAction>,
) -> bool {
    let slot = order.slot;
    match event {
        ChurnEvent::Placed { txid, .. } => {
            order.txid = Some(txid.clone());
            order.sending = false;
            false
        }
        ChurnEvent::PlaceFailed { reason, at, .. } => {
            // Inventory is never left naked: the exit is tried again.
            s.last_error = Some(format!("exit refused: {reason}; tried again"));
            replace_later(s, order, position, *at + RETRY_SEC);
            false
        }
        ChurnEvent::Fill {
            price,
            volume,
            cost,
            fee,
            at,
            ..
        } => {
            order.fills.add(*price, *volume, *cost, *fee, *at);
            order.current.add(*price, *volume, *cost, *fee, *at);
            if order.fills.volume < position.volume {
                return false;
            }
            let f = &order.fills;
            let gross = match order.side {
                Side::Sell => f.notional - position.entry_price * position.volume,
                Side::Buy => position.entry_price * position.volume - f.notional,
            };
            let net = gross - position.entry_fee - f.fee;
            let routed = route(net, still_needed, parent);
            if routed == Routing::Compound {
                s.compounded_usd += net;
            }
            book.stats.count_cycle(net, f.last_at.unwrap_or(*at));
            if let Routing::Parent(_) = routed {
                book.stats.credited_usd += net;
            }
            out.push(ChurnAction::Close {
                slot,
                position: position.clone(),
                exit_price: f.notional / f.volume,
                exit_cost: f.cost,
                exit_fee: f.fee,
                exit_time: f.last_at.unwrap_or(*at),
                net,
                routed,
            });
            book.reserve.lent.remove(&slot);
            true
        }
        ChurnEvent::Gone { at, .. } => {
            // An exit that left the book unfilled is placed again: filled
            // inventory is never abandoned.
            if order.fills.volume < position.volume {
                s.last_error = Some("exit left the book unfilled; placed again".into());
                replace_later(s, order, position, *at);
            }
            false
        }
    }
}

/// Where a round trip's net goes: to the parent while it still needs
/// subsidy, else into the slot's churner size; a loss goes nowhere (it is
/// booked on the round trip's own position).
#[must_use]
pub fn route(net: Decimal, still_needed: Decimal, parent: &ParentRef) -> Routing {
    if net <= Decimal::ZERO {
        Routing::Nothing
    } else if still_needed > Decimal::ZERO {
        Routing::Parent(parent.clone())
    } else {
        Routing::Compound
    }
}

/// Turns an exit into a fresh placement of what is still open, due at
/// `at` (a new client id: the exchange never sees one twice).
fn replace_later(s: &mut SlotChurn, order: &mut ChurnOrder, position: &ChurnPosition, at: i64) {
    s.seq += 1;
    order.id = order_id(order.slot, position.cycle, "ex", s.seq);
    order.volume = position.volume - order.fills.volume;
    order.txid = None;
    order.sending = false;
    order.retry_at = Some(at);
    order.current = crate::engine::FillTotals::default();
}

/// Seconds before a refused exit is tried again.
pub const RETRY_SEC: i64 = 60;
