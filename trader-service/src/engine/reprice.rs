//! Carrying out a reprice of an exit inside the engine (SPEC §5,
//! "Executing a reprice"). Deciding *whether* and *where* to reprice is
//! self-healing's job ([`crate::healing`]); this module only makes the
//! engine's state follow such a decision safely:
//!
//! 1. [`request`]: the exit must be live on the book and not already being
//!    repriced; the engine records the pending reprice and emits a `Cancel`
//!    for the live placement. The exit stays tracked (sticky: a filled
//!    entry always has an exit).
//! 2. [`complete`]: once the cancel is confirmed (`OrderGone`), fills that
//!    raced the cancel have already been applied, so the remaining volume
//!    is exact. The exit takes the new price, the reprice is booked for the
//!    ledger ([`Action::Repriced`]) with the subsidy it consumed, and the
//!    remaining volume is re-placed under a new local id. If the exit filled
//!    completely in the meantime, the cycle was booked by the fill and there
//!    is nothing left to reprice: nothing is journaled or debited.
//!
//! A re-placement the exchange refuses keeps the exit (at its new price) in
//! the `Failed` state, retried like any sticky exit.

use rust_decimal::Decimal;

use crate::engine::events::{Action, InvalidReason, Notice, RepriceBooking};
use crate::engine::reducer::Ctx;
use crate::engine::types::{
    ExitPlacement, OrderId, OrderRole, PendingReprice, SlotState, TradeWork,
};

/// Accepts a reprice decision for the exit `id`, or reports why it cannot
/// apply (no state change then).
pub(crate) fn request(
    slot: &mut SlotState,
    id: OrderId,
    want: PendingReprice,
    ctx: Ctx<'_>,
    out: &mut Vec<Action>,
) {
    let new_price = want.new_price;
    let on_grid = new_price > Decimal::ZERO && ctx.cfg.pair.round_price(new_price) == new_price;
    let TradeWork::Exit(x) = &mut slot.trade_mut(id.trade).work else {
        out.push(not_applicable(id));
        return;
    };
    let ExitPlacement::Live { txid } = &x.placement else {
        out.push(not_applicable(id));
        return;
    };
    if x.id != id || x.reprice.is_some() || x.close.is_some() || !on_grid || new_price == x.price {
        out.push(not_applicable(id));
        return;
    }
    out.push(Action::Cancel {
        order_id: x.id,
        txid: Some(txid.clone()),
    });
    x.reprice = Some(Box::new(want));
}

/// Sets (or with `None` releases) the operator hold of the exit `id`; the
/// exit must be the trade's current one.
pub(crate) fn hold(slot: &mut SlotState, id: OrderId, until: Option<i64>, out: &mut Vec<Action>) {
    match &mut slot.trade_mut(id.trade).work {
        TradeWork::Exit(x) if x.id == id => x.heal.hold_until = until,
        _ => out.push(Action::Notice(Notice::InvalidEvent {
            order_id: Some(id),
            reason: InvalidReason::RepriceNotApplicable,
        })),
    }
}

/// Starts an operator's close at market of the exit `id`: it must be live
/// and not being repriced or closed; its limit placement is cancelled.
pub(crate) fn request_close(
    slot: &mut SlotState,
    id: OrderId,
    ctx: Ctx<'_>,
    out: &mut Vec<Action>,
) {
    let TradeWork::Exit(x) = &mut slot.trade_mut(id.trade).work else {
        out.push(not_applicable(id));
        return;
    };
    let ExitPlacement::Live { txid } = &x.placement else {
        out.push(not_applicable(id));
        return;
    };
    if x.id != id || x.reprice.is_some() || x.close.is_some() {
        out.push(not_applicable(id));
        return;
    }
    out.push(Action::Cancel {
        order_id: x.id,
        txid: Some(txid.clone()),
    });
    x.close = Some(Box::new(crate::engine::types::MarketClose {
        requested_at: ctx.now,
        market_order: false,
    }));
}

/// A placement of an exit being closed at market is gone (cancel
/// confirmed, racing fills applied) or was refused. Returns `false` when no
/// close is in progress (the caller goes on as usual).
///
/// - The limit exit is gone: the remaining volume is placed as a market
///   order under a new id.
/// - The market order is gone unfilled or refused: the close failed; the
///   limit exit is restored at its price under a new id.
pub(crate) fn close_step(
    slot: &mut SlotState,
    id: OrderId,
    ctx: Ctx<'_>,
    out: &mut Vec<Action>,
) -> bool {
    let new_id = slot.issue_id(id.trade, OrderRole::Exit);
    let TradeWork::Exit(x) = &mut slot.trade_mut(id.trade).work else {
        return false;
    };
    let Some(close) = x.close.as_deref().copied() else {
        return false;
    };
    if close.market_order {
        x.close = None;
        out.push(Action::Notice(Notice::MarketCloseFailed {
            order_id: id,
            restored: new_id,
        }));
    } else {
        x.close = Some(Box::new(crate::engine::types::MarketClose {
            market_order: true,
            ..close
        }));
    }
    x.id = new_id;
    x.placement = ExitPlacement::Pending;
    x.placed_at = ctx.now;
    out.push(Action::Place(crate::engine::events::OrderRequest {
        id: new_id,
        side: id.trade.exit_side(),
        price: x.price,
        volume: x.remaining(),
        role: OrderRole::Exit,
    }));
    true
}

fn not_applicable(id: OrderId) -> Action {
    Action::Notice(Notice::InvalidEvent {
        order_id: Some(id),
        reason: InvalidReason::RepriceNotApplicable,
    })
}

/// The old placement of an exit with a pending reprice is gone: books the
/// reprice and re-places the remaining volume at the new price. Returns
/// `false` when the exit has no pending reprice (the caller re-places it
/// as a plain sticky exit).
pub(crate) fn complete(
    slot: &mut SlotState,
    id: OrderId,
    ctx: Ctx<'_>,
    out: &mut Vec<Action>,
) -> bool {
    let slot_id = slot.slot_id;
    let new_id = slot.issue_id(id.trade, OrderRole::Exit);
    let TradeWork::Exit(x) = &mut slot.trade_mut(id.trade).work else {
        return false;
    };
    let Some(r) = x.reprice.take() else {
        return false;
    };
    let volume = x.remaining();
    let old_price = x.price;
    let subsidy_consumed = r.consumed(old_price, volume);
    x.price = r.new_price;
    x.id = new_id;
    x.placement = ExitPlacement::Pending;
    x.placed_at = ctx.now;
    x.heal.record(r.kind, ctx.now);
    out.push(Action::Repriced(RepriceBooking {
        slot: slot_id,
        trade: id.trade,
        cycle: id.cycle,
        new_order_id: new_id,
        old_price,
        new_price: r.new_price,
        volume,
        kind: r.kind,
        subsidy_consumed,
        full: r.full,
        at: ctx.now.max(x.entry.time),
        entry_time: x.entry.time,
    }));
    out.push(Action::Place(crate::engine::events::OrderRequest {
        id: new_id,
        side: id.trade.exit_side(),
        price: r.new_price,
        volume,
        role: OrderRole::Exit,
    }));
    true
}
