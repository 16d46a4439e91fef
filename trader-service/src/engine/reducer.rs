//! The pair engine's reducer (SPEC §2): [`transition`] applies one event to
//! the state and returns the actions the runtime must carry out.
//!
//! Behaviour worth knowing (decisions where the SPEC leaves room):
//! - **Fills are incremental** executions, delivered once each and before the
//!   order's [`Event::OrderGone`]. An entry accumulates partial fills; it
//!   becomes an exit for exactly the filled volume when it is fully filled
//!   *or* when it leaves the book partially filled (a refresh cancel
//!   included; see [`crate::engine::refresh`]). An exit books its cycle when
//!   its whole volume has executed (across re-placements). The exit of a
//!   partial entry may be below the pair minimums; it is placed anyway (the
//!   volume is never rounded away), and if the exchange refuses it as too
//!   small it stays tracked, unretried, for the operator.
//! - **Cancels are confirmed**: a refresh emits `Cancel` and keeps the entry
//!   (flagged) until `OrderGone`; then the replacement is placed at the
//!   then-current market. A fill racing the cancel is therefore never lost;
//!   if it completes the entry, the exit is placed at once and the later
//!   `OrderGone` for the old id is reported as [`Notice::UnknownOrder`].
//! - **Sticky exits are never dropped**: an exit that leaves the book or is
//!   refused is re-placed (remaining volume, same price, new local id) and
//!   keeps its entry facts, target and position id.
//! - **Cooldown** applies after a *losing* cycle only: base 60 s, 900 s once
//!   5 losses are in a row; a win resets the loss counter and re-enters at
//!   once.
//! - **Halts**: a real invariant violation halts only the slot that shows it
//!   (reported as [`Notice::SlotHalted`]); later events for it are not applied
//!   and are reported as [`Notice::IgnoredHalted`].
//! - **Invariants** are checked after every order event on its slot, and on
//!   ticks for every slot that emitted an action. A slot that emitted none on
//!   a tick has unchanged orders (orders only change together with an
//!   action), so release builds skip re-checking it; debug builds (the tests)
//!   still assert it.
//! - The no-op path of a tick allocates nothing: actions start as an empty
//!   `Vec`, the refresh test avoids divisions and the check is
//!   allocation-free (about 1.6 M quiet ticks/s with 10 slots on the dev box).

use rust_decimal::Decimal;

use crate::engine::config::EngineConfig;
use crate::engine::events::{
    Action, CycleBooking, Event, EventKind, GoneReason, InvalidReason, Notice, OrderRequest,
    PlaceFailReason, PositionIntent,
};
use crate::engine::hold::{EntryHold, cancel_held_entry};
use crate::engine::invariants::{Violation, check_slot};
use crate::engine::pricing::{
    effective_entry_pct, entry_price, entry_volume, exit_price, slot_entry_pct,
};
use crate::engine::refresh::maybe_refresh;
use crate::engine::types::{
    EngineState, EntryFacts, EntryOrder, ExitOrder, ExitPlacement, FillTotals, IdleReason, OrderId,
    OrderRole, SlotState, SlotStatus, TradeId, TradeWork,
};

/// Inputs every handler needs besides the slot.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) cfg: &'a EngineConfig,
    pub(crate) market: Option<Decimal>,
    pub(crate) now: i64,
    pub(crate) profit_target_pct: Option<Decimal>,
    pub(crate) entry_hold: EntryHold,
}

/// Applies one event; returns the actions to carry out, in order.
///
/// Takes the state by `&mut` so the common no-op tick neither clones the
/// state nor allocates. Deterministic: the same state, event and config
/// always produce the same state and actions.
pub fn transition(state: &mut EngineState, event: &Event, cfg: &EngineConfig) -> Vec<Action> {
    let mut out = Vec::new();
    match event {
        Event::PriceTick { price, now } => {
            if *price <= Decimal::ZERO {
                out.push(invalid(None, InvalidReason::NonPositivePrice));
                return out;
            }
            state.market = Some(*price);
            state.now = state.now.max(*now);
            on_clock_all(state, cfg, &mut out);
        }
        Event::TimerTick { now } => {
            state.now = state.now.max(*now);
            on_clock_all(state, cfg, &mut out);
        }
        Event::Placed { order_id, txid } => {
            with_slot(
                state,
                *order_id,
                EventKind::Placed,
                cfg,
                &mut out,
                |slot, _, out| on_placed(slot, *order_id, txid, out),
            );
        }
        Event::PlaceFailed { order_id, reason } => {
            with_slot(
                state,
                *order_id,
                EventKind::PlaceFailed,
                cfg,
                &mut out,
                |slot, ctx, out| on_place_failed(slot, *order_id, reason, ctx, out),
            );
        }
        Event::Fill {
            order_id,
            txid,
            price,
            volume,
            cost,
            fee,
            at,
        } => {
            if *price <= Decimal::ZERO || *volume <= Decimal::ZERO {
                out.push(invalid(Some(*order_id), InvalidReason::NonPositiveFill));
                return out;
            }
            if *cost < Decimal::ZERO || *fee < Decimal::ZERO {
                out.push(invalid(Some(*order_id), InvalidReason::NegativeCostOrFee));
                return out;
            }
            state.now = state.now.max(*at);
            let fill = FillIn {
                txid,
                price: *price,
                volume: *volume,
                cost: *cost,
                fee: *fee,
                at: *at,
            };
            with_slot(
                state,
                *order_id,
                EventKind::Fill,
                cfg,
                &mut out,
                |slot, ctx, out| on_fill(slot, *order_id, &fill, ctx, out),
            );
        }
        Event::OrderGone { order_id, reason } => {
            with_slot(
                state,
                *order_id,
                EventKind::Gone,
                cfg,
                &mut out,
                |slot, ctx, out| on_gone(slot, *order_id, *reason, ctx, out),
            );
        }
        Event::ProfitTarget { pct } => {
            if *pct > Decimal::ZERO {
                state.profit_target_pct = Some(*pct);
            } else {
                out.push(invalid(None, InvalidReason::NonPositivePrice));
            }
        }
        Event::EntryHold { hold } => state.entry_hold = *hold,
        Event::RepriceExit {
            order_id,
            new_price,
            kind,
            subsidized,
            full,
            subsidy_cap,
        } => {
            with_slot(
                state,
                *order_id,
                EventKind::Reprice,
                cfg,
                &mut out,
                |slot, ctx, out| {
                    let want = crate::engine::types::PendingReprice {
                        new_price: *new_price,
                        kind: *kind,
                        subsidized: *subsidized,
                        full: *full,
                        subsidy_cap: *subsidy_cap,
                        requested_at: ctx.now,
                    };
                    crate::engine::reprice::request(slot, *order_id, want, ctx, out);
                },
            );
        }
        Event::CloseAtMarket { order_id } => {
            with_slot(
                state,
                *order_id,
                EventKind::Close,
                cfg,
                &mut out,
                |slot, ctx, out| crate::engine::reprice::request_close(slot, *order_id, ctx, out),
            );
        }
        Event::HoldExit { order_id, until } => {
            with_slot(
                state,
                *order_id,
                EventKind::Hold,
                cfg,
                &mut out,
                |slot, _, out| crate::engine::reprice::hold(slot, *order_id, *until, out),
            );
        }
        Event::PositionOpened {
            order_id,
            position_id,
        } => {
            with_slot(
                state,
                *order_id,
                EventKind::PositionOpened,
                cfg,
                &mut out,
                |slot, _, out| on_position_opened(slot, *order_id, position_id, out),
            );
        }
    }
    out
}

fn invalid(order_id: Option<OrderId>, reason: InvalidReason) -> Action {
    Action::Notice(Notice::InvalidEvent { order_id, reason })
}

fn unknown(order_id: OrderId, event: EventKind) -> Action {
    Action::Notice(Notice::UnknownOrder { order_id, event })
}

/// Runs clock-driven work (placements due, refreshes, exit retries) on every
/// active slot and checks each slot afterwards.
fn on_clock_all(state: &mut EngineState, cfg: &EngineConfig, out: &mut Vec<Action>) {
    let ctx = Ctx {
        cfg,
        market: state.market,
        now: state.now,
        profit_target_pct: state.profit_target_pct,
        entry_hold: state.entry_hold,
    };
    for slot in state.slots.values_mut() {
        if slot.is_halted() {
            continue;
        }
        let before = out.len();
        on_clock(slot, ctx, out);
        // Orders only change together with an action (place, cancel, open
        // position), so a slot that emitted none still satisfies the
        // invariants it satisfied after its previous transition; skipping the
        // re-check keeps the quiet tick cheap (backtests run millions).
        // Debug builds (the tests) still verify the claim on every tick.
        if out.len() != before {
            enforce(slot, ctx, out);
        } else {
            debug_assert_eq!(check_slot(slot, cfg), Ok(()));
        }
    }
}

/// Routes an order event to its slot (the id names it), skipping halted
/// slots, then checks the slot's invariants.
fn with_slot(
    state: &mut EngineState,
    id: OrderId,
    event: EventKind,
    cfg: &EngineConfig,
    out: &mut Vec<Action>,
    f: impl FnOnce(&mut SlotState, Ctx<'_>, &mut Vec<Action>),
) {
    let ctx = Ctx {
        cfg,
        market: state.market,
        now: state.now,
        profit_target_pct: state.profit_target_pct,
        entry_hold: state.entry_hold,
    };
    let Some(slot) = state.slots.get_mut(&id.slot) else {
        out.push(unknown(id, event));
        return;
    };
    if slot.is_halted() {
        out.push(Action::Notice(Notice::IgnoredHalted { slot: slot.slot_id }));
        return;
    }
    f(slot, ctx, out);
    enforce(slot, ctx, out);
}

/// Halts the slot if an invariant broke.
fn enforce(slot: &mut SlotState, ctx: Ctx<'_>, out: &mut Vec<Action>) {
    if slot.is_halted() {
        return;
    }
    if let Err(v) = check_slot(slot, ctx.cfg) {
        halt(slot, v, ctx, out);
    }
}

fn halt(slot: &mut SlotState, violation: Violation, ctx: Ctx<'_>, out: &mut Vec<Action>) {
    out.push(Action::Notice(Notice::SlotHalted {
        slot: slot.slot_id,
        violation: violation.clone(),
    }));
    slot.status = SlotStatus::Halted {
        violation,
        at: ctx.now,
    };
}

/// What a trade needs on a clock tick, decided before mutating.
enum Due {
    Nothing,
    PlaceEntry,
    Entry,
    RetryExit,
}

fn on_clock(slot: &mut SlotState, ctx: Ctx<'_>, out: &mut Vec<Action>) {
    let mut refreshed = false;
    for t in TradeId::ALL {
        let due = match &slot.trade(t).work {
            TradeWork::Idle(reason) => {
                if idle_is_over(t, reason, ctx) {
                    Due::PlaceEntry
                } else {
                    Due::Nothing
                }
            }
            TradeWork::Entry(_) => Due::Entry,
            TradeWork::Exit(x) => match x.placement {
                ExitPlacement::Failed { ref reason, at }
                    if *reason != PlaceFailReason::BelowMinimum
                        && ctx.now >= at + ctx.cfg.place_retry_sec =>
                {
                    Due::RetryExit
                }
                _ => Due::Nothing,
            },
        };
        match due {
            Due::Nothing => {}
            Due::PlaceEntry => place_entry(slot, t, ctx, out),
            // A held entry is cancelled whatever the refresh budget; an
            // entry the hold leaves alone may be refreshed (one per tick).
            Due::Entry => {
                if !cancel_held_entry(slot, t, ctx.entry_hold, out) && !refreshed {
                    refreshed = maybe_refresh(slot, t, ctx, out);
                }
            }
            Due::RetryExit => replace_exit(slot, t, ctx, out),
        }
    }
}

fn idle_is_over(t: TradeId, reason: &IdleReason, ctx: Ctx<'_>) -> bool {
    ctx.market.is_some()
        && match reason {
            IdleReason::Bootstrap | IdleReason::BelowMinimum => true,
            IdleReason::TrendHold => !ctx.entry_hold.holds(t),
            IdleReason::Cooldown { until } => ctx.now >= *until,
            IdleReason::PlaceFailed { retry_at, .. } => ctx.now >= *retry_at,
        }
}

/// Places the trade's entry at the current market, or records why it waits
/// (no market yet, held against a sustained move, below the pair minimums:
/// never upsized).
pub(crate) fn place_entry(slot: &mut SlotState, t: TradeId, ctx: Ctx<'_>, out: &mut Vec<Action>) {
    let Some(market) = ctx.market else {
        slot.trade_mut(t).work = TradeWork::Idle(IdleReason::Bootstrap);
        return;
    };
    if ctx.entry_hold.holds(t) {
        slot.trade_mut(t).work = TradeWork::Idle(IdleReason::TrendHold);
        return;
    }
    let e = slot_entry_pct(ctx.cfg, slot.slot_id, slot.trade(t).consecutive_losses);
    let price = entry_price(ctx.cfg, t, market, e);
    let volume = match entry_volume(ctx.cfg, price) {
        Ok(v) => v,
        Err(e) => {
            let trade = slot.trade_mut(t);
            if trade.work != TradeWork::Idle(IdleReason::BelowMinimum) {
                out.push(Action::Notice(Notice::EntryBelowMinimum {
                    slot: slot.slot_id,
                    trade: t,
                    price,
                    detail: e.to_string(),
                }));
            }
            slot.trade_mut(t).work = TradeWork::Idle(IdleReason::BelowMinimum);
            return;
        }
    };
    let id = slot.issue_id(t, OrderRole::Entry);
    slot.trade_mut(t).work = TradeWork::Entry(EntryOrder {
        id,
        price,
        volume,
        txid: None,
        placed_at: ctx.now,
        fills: FillTotals::default(),
        cancel_requested: false,
    });
    out.push(Action::Place(OrderRequest {
        id,
        side: t.entry_side(),
        price,
        volume,
        role: OrderRole::Entry,
    }));
}

/// Turns the (fully or partially) filled entry into the trade's exit for
/// exactly the filled volume, and asks the ledger to open the position.
fn open_exit(
    slot: &mut SlotState,
    t: TradeId,
    entry: EntryOrder,
    ctx: Ctx<'_>,
    out: &mut Vec<Action>,
) {
    let fills = entry.fills;
    let fill_price = fills.avg_price().unwrap_or(entry.price);
    let e = effective_entry_pct(ctx.cfg, slot.trade(t).consecutive_losses);
    let p = ctx.profit_target_pct.unwrap_or(ctx.cfg.profit_pct);
    let price = exit_price(ctx.cfg, t, fill_price, ctx.market, p, e);
    let facts = EntryFacts {
        order_id: entry.id,
        txid: entry.txid,
        price: fill_price,
        cost: fills.cost,
        fee: fills.fee,
        volume: fills.volume,
        time: fills.last_at.unwrap_or(ctx.now),
    };
    let id = slot.issue_id(t, OrderRole::Exit);
    out.push(Action::OpenPosition(PositionIntent {
        slot: slot.slot_id,
        trade: t,
        cycle: id.cycle,
        open_key: entry.id.to_string(),
        exit_order_id: id,
        entry_txid: facts.txid.clone(),
        entry_price: facts.price,
        entry_cost: facts.cost,
        entry_fee: facts.fee,
        entry_volume: facts.volume,
        entry_time: facts.time,
        exit_side: t.exit_side(),
        exit_price: price,
        target_profit_pct: p,
    }));
    out.push(Action::Place(OrderRequest {
        id,
        side: t.exit_side(),
        price,
        volume: facts.volume,
        role: OrderRole::Exit,
    }));
    let trade = slot.trade_mut(t);
    trade.refresh = Default::default();
    trade.work = TradeWork::Exit(ExitOrder {
        id,
        price,
        volume: facts.volume,
        entry: facts,
        target_profit_pct: p,
        original_price: price,
        position_id: None,
        placement: ExitPlacement::Pending,
        placed_at: ctx.now,
        fills: FillTotals::default(),
        heal: Default::default(),
        reprice: None,
        close: None,
    });
}

/// Re-places a sticky exit for its remaining volume at its price under a new
/// local id; everything else about the position is kept.
fn replace_exit(slot: &mut SlotState, t: TradeId, ctx: Ctx<'_>, out: &mut Vec<Action>) {
    let id = slot.issue_id(t, OrderRole::Exit);
    if let TradeWork::Exit(x) = &mut slot.trade_mut(t).work {
        x.id = id;
        x.placement = ExitPlacement::Pending;
        x.placed_at = ctx.now;
        out.push(Action::Place(OrderRequest {
            id,
            side: t.exit_side(),
            price: x.price,
            volume: x.remaining(),
            role: OrderRole::Exit,
        }));
    }
}

fn on_placed(slot: &mut SlotState, id: OrderId, txid: &str, out: &mut Vec<Action>) {
    match &mut slot.trade_mut(id.trade).work {
        TradeWork::Entry(e) if e.id == id => e.txid = Some(txid.to_owned()),
        TradeWork::Exit(x) if x.id == id => {
            x.placement = ExitPlacement::Live {
                txid: txid.to_owned(),
            }
        }
        _ => out.push(unknown(id, EventKind::Placed)),
    }
}

fn on_place_failed(
    slot: &mut SlotState,
    id: OrderId,
    reason: &PlaceFailReason,
    ctx: Ctx<'_>,
    out: &mut Vec<Action>,
) {
    let t = id.trade;
    if matches!(&slot.trade(t).work, TradeWork::Exit(x) if x.id == id && x.is_market_close()) {
        crate::engine::reprice::close_step(slot, id, ctx, out);
        return;
    }
    match &mut slot.trade_mut(t).work {
        TradeWork::Entry(e) if e.id == id => {
            if e.fills.any() {
                // Contradictory report (it filled, so it was placed): keep the
                // filled volume as a position rather than lose it.
                on_gone(slot, id, GoneReason::Cancelled, ctx, out);
                return;
            }
            slot.trade_mut(t).work = TradeWork::Idle(IdleReason::PlaceFailed {
                reason: reason.clone(),
                retry_at: ctx.now + ctx.cfg.place_retry_sec,
            });
        }
        TradeWork::Exit(x) if x.id == id => {
            x.placement = ExitPlacement::Failed {
                reason: reason.clone(),
                at: ctx.now,
            };
        }
        _ => out.push(unknown(id, EventKind::PlaceFailed)),
    }
}

/// One execution as carried by [`Event::Fill`].
struct FillIn<'a> {
    txid: &'a str,
    price: Decimal,
    volume: Decimal,
    cost: Decimal,
    fee: Decimal,
    at: i64,
}

fn on_fill(slot: &mut SlotState, id: OrderId, f: &FillIn<'_>, ctx: Ctx<'_>, out: &mut Vec<Action>) {
    let t = id.trade;
    match &mut slot.trade_mut(t).work {
        TradeWork::Entry(e) if e.id == id => {
            let filled = e.fills.volume + f.volume;
            if filled > e.volume {
                let v = Violation::Overfill {
                    id,
                    filled,
                    volume: e.volume,
                };
                halt(slot, v, ctx, out);
                return;
            }
            e.fills.add(f.price, f.volume, f.cost, f.fee, f.at);
            if e.txid.is_none() {
                e.txid = Some(f.txid.to_owned());
            }
            if e.fills.volume == e.volume {
                let TradeWork::Entry(e) = std::mem::replace(
                    &mut slot.trade_mut(t).work,
                    TradeWork::Idle(IdleReason::Bootstrap),
                ) else {
                    unreachable!("matched an entry above");
                };
                open_exit(slot, t, e, ctx, out);
            }
        }
        // Any placement of the current exit (same trade, cycle and role) is
        // accepted: re-placements only change the seq.
        TradeWork::Exit(x) if x.id.cycle == id.cycle && id.role == OrderRole::Exit => {
            let filled = x.fills.volume + f.volume;
            if filled > x.volume {
                let v = Violation::Overfill {
                    id,
                    filled,
                    volume: x.volume,
                };
                halt(slot, v, ctx, out);
                return;
            }
            x.fills.add(f.price, f.volume, f.cost, f.fee, f.at);
            if x.id == id && !matches!(x.placement, ExitPlacement::Live { .. }) {
                x.placement = ExitPlacement::Live {
                    txid: f.txid.to_owned(),
                };
            }
            if x.fills.volume == x.volume {
                let TradeWork::Exit(x) = std::mem::replace(
                    &mut slot.trade_mut(t).work,
                    TradeWork::Idle(IdleReason::Bootstrap),
                ) else {
                    unreachable!("matched an exit above");
                };
                book_cycle(slot, t, x, ctx, out);
            }
        }
        _ => out.push(unknown(id, EventKind::Fill)),
    }
}

/// Books a completed round trip from the actual fills, updates the loss
/// streak and starts the next cycle (now, or after the loss cooldown).
fn book_cycle(slot: &mut SlotState, t: TradeId, x: ExitOrder, ctx: Ctx<'_>, out: &mut Vec<Action>) {
    let exit_price = x.fills.avg_price().unwrap_or(x.price);
    let gross = match t {
        TradeId::A => (x.entry.price - exit_price) * x.volume,
        TradeId::B => (exit_price - x.entry.price) * x.volume,
    };
    let fees = x.entry.fee + x.fills.fee;
    let net = gross - fees;
    // An exit never executes before its entry. An exchange whose clocks
    // disagree (one stamp from wall time, another from replayed candle time)
    // can report it that way; the ledger would then refuse the close for
    // good, so the booking clamps it and says so.
    let reported_exit_time = x.fills.last_at.unwrap_or(ctx.now);
    let exit_time = reported_exit_time.max(x.entry.time);
    if exit_time != reported_exit_time {
        out.push(Action::Notice(Notice::ClockSkew {
            order_id: x.id,
            entry_time: x.entry.time,
            reported_exit_time,
        }));
    }
    let written_off = x.is_market_close();
    let exit_txid = x.txid().map(str::to_owned);
    out.push(Action::BookCycle(CycleBooking {
        slot: slot.slot_id,
        trade: t,
        cycle: x.id.cycle,
        position_id: x.position_id,
        exit_order_id: x.id,
        entry_price: x.entry.price,
        exit_price,
        volume: x.volume,
        exit_cost: x.fills.cost,
        gross,
        entry_fee: x.entry.fee,
        exit_fee: x.fills.fee,
        fees,
        net,
        entry_time: x.entry.time,
        exit_time,
        target_profit_pct: x.target_profit_pct,
        written_off,
        exit_txid,
    }));
    let cfg = ctx.cfg;
    let trade = slot.trade_mut(t);
    trade.cycle += 1;
    if net < Decimal::ZERO {
        trade.consecutive_losses += 1;
    } else {
        trade.consecutive_losses = 0;
    }
    // A close at market ends the trade's life and it waits by the release
    // rule (engine::life); otherwise a loss waits the loss cooldown.
    let wait = match trade.life.book(net, written_off, cfg.release_backoff_sec) {
        Some(wait) => wait,
        None if net >= Decimal::ZERO => 0,
        None if trade.consecutive_losses >= cfg.long_cooldown_after_losses => {
            cfg.reentry_long_cooldown_sec
        }
        None => cfg.reentry_base_cooldown_sec,
    };
    if wait > 0 {
        trade.work = TradeWork::Idle(IdleReason::Cooldown {
            until: ctx.now + wait,
        });
        return;
    }
    place_entry(slot, t, ctx, out);
}

fn on_gone(
    slot: &mut SlotState,
    id: OrderId,
    _reason: GoneReason,
    ctx: Ctx<'_>,
    out: &mut Vec<Action>,
) {
    let t = id.trade;
    match &slot.trade(t).work {
        TradeWork::Entry(e) if e.id == id => {
            let TradeWork::Entry(e) = std::mem::replace(
                &mut slot.trade_mut(t).work,
                TradeWork::Idle(IdleReason::Bootstrap),
            ) else {
                unreachable!("matched an entry above");
            };
            if e.fills.any() {
                open_exit(slot, t, e, ctx, out);
            } else {
                place_entry(slot, t, ctx, out);
            }
        }
        TradeWork::Exit(x) if x.id == id => {
            if !crate::engine::reprice::close_step(slot, id, ctx, out)
                && !crate::engine::reprice::complete(slot, id, ctx, out)
            {
                replace_exit(slot, t, ctx, out);
            }
        }
        _ => out.push(unknown(id, EventKind::Gone)),
    }
}

fn on_position_opened(slot: &mut SlotState, id: OrderId, position_id: &str, out: &mut Vec<Action>) {
    match &mut slot.trade_mut(id.trade).work {
        TradeWork::Exit(x) if x.id.cycle == id.cycle && id.role == OrderRole::Exit => {
            match &x.position_id {
                None => x.position_id = Some(position_id.to_owned()),
                Some(p) if p == position_id => {}
                Some(_) => out.push(invalid(Some(id), InvalidReason::PositionIdConflict)),
            }
        }
        _ => out.push(unknown(id, EventKind::PositionOpened)),
    }
}

#[cfg(test)]
#[path = "reducer_tests/mod.rs"]
mod tests;
