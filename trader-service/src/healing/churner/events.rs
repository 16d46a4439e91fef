//! What the exchange reports about churner orders and how each report
//! moves a slot's churner: an entry's fills open a round trip with its
//! exit, an exit's fills close it and route its net, a refused or vanished
//! exit is placed again (filled inventory is never left naked).

use rust_decimal::Decimal;

use super::{
    CancelWhy, ChurnAction, ChurnBook, ChurnOrder, ChurnPosition, ChurnStage, ChurnerConfig,
    OPEN_KEY_PREFIX, ParentRef, PauseReason, Routing, SlotChurn, exit_price, order_id, slot_of,
};
use crate::engine::{SlotId, TradeId};
use crate::pair::{PairSpec, Side};

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

impl ChurnEvent {
    /// The exchange's answer to a placement, if this report is one: the
    /// order and its txid (`None`: refused).
    #[must_use]
    pub fn placement_answer(&self) -> Option<(&str, Option<&str>)> {
        match self {
            Self::Placed { order_id, txid } => Some((order_id, Some(txid))),
            Self::PlaceFailed { order_id, .. } => Some((order_id, None)),
            _ => None,
        }
    }
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
                false,
                &mut out,
            ) {
                book.hits.completed(&cfg.hit_gate);
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
            mut heal,
            mut reprice,
            mut close,
        } => {
            let written_off = close.is_some_and(|c| c.market_order);
            let over = if super::close::close_step(
                &mut s, &mut order, &position, &mut close, event, &mut out,
            ) {
                false
            } else {
                match (event, reprice.take()) {
                    // The cancel of a reprice is confirmed: racing fills are in,
                    // so the remainder is exact.
                    (ChurnEvent::Gone { at: gone, .. }, Some(r)) => {
                        out.extend(super::handover::complete_reprice(
                            &mut s, &mut order, &position, &mut heal, &r, *gone,
                        ));
                        false
                    }
                    (_, pending) => {
                        reprice = pending;
                        exit_event(
                            book,
                            &mut s,
                            &mut order,
                            &position,
                            &parent,
                            event,
                            still_needed,
                            written_off,
                            &mut out,
                        )
                    }
                }
            };
            if over {
                ChurnStage::Idle
            } else {
                ChurnStage::HandedOver {
                    order,
                    position,
                    parent,
                    funding,
                    at,
                    heal,
                    reprice,
                    close,
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
        position_id: None,
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

/// Folds an exit's report; returns whether the round trip is over. With
/// `written_off` the working order is a close at market's: its fill
/// closes the round trip `written_off`, its net routed nowhere.
#[allow(clippy::too_many_arguments)]
fn exit_event(
    book: &mut ChurnBook,
    s: &mut SlotChurn,
    order: &mut ChurnOrder,
    position: &ChurnPosition,
    parent: &ParentRef,
    event: &ChurnEvent,
    still_needed: Decimal,
    written_off: bool,
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
            let routed = if written_off {
                Routing::Nothing
            } else {
                route(net, still_needed, parent)
            };
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
                written_off,
                exit_txid: order.txid.clone(),
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
pub(super) fn replace_later(
    s: &mut SlotChurn,
    order: &mut ChurnOrder,
    position: &ChurnPosition,
    at: i64,
) {
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
