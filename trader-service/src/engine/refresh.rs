//! Entry refresh with anti-chase (SPEC §2).
//!
//! An entry further than `REFRESH_PCT` from market is useless (it will not
//! fill soon), so it is cancelled and, once the cancel is confirmed by
//! `OrderGone`, re-placed at the current market. At most one refresh per tick
//! per slot keeps API use bounded. Anti-chase: after `refresh_streak_limit`
//! (3) refreshes in the same direction the trade stops refreshing for
//! `REFRESH_COOLDOWN_SEC` (the stale entry stays on the book, still fillable
//! if the market comes back), then the streak resets. A partially filled
//! entry that is refreshed is not replaced: once its cancel is confirmed the
//! filled part becomes the trade's exit; while the filled part is below the
//! pair minimums (an exit could not be placed) it is left to fill further.

use crate::engine::events::Action;
use rust_decimal::Decimal;

use crate::engine::pricing::grid_offset_pct;
use crate::engine::reducer::Ctx;
use crate::engine::types::{SlotState, TradeId, TradeWork};

/// Requests a refresh of trade `t`'s entry if it is due; returns whether a
/// cancel was emitted.
pub(crate) fn maybe_refresh(
    slot: &mut SlotState,
    t: TradeId,
    ctx: Ctx<'_>,
    out: &mut Vec<Action>,
) -> bool {
    let Some(market) = ctx.market else {
        return false;
    };
    let slot_id = slot.slot_id;
    let trade = slot.trade_mut(t);
    let TradeWork::Entry(e) = &mut trade.work else {
        return false;
    };
    if e.cancel_requested {
        return false;
    }
    // A partly filled entry is cancelled too (its filled part then gets its
    // exit instead of idling far from the market), but only once that part
    // is big enough to be placed as an exit; a dust fill keeps waiting for
    // more volume.
    if e.fills.any() && ctx.cfg.pair.check_size(e.price, e.fills.volume).is_err() {
        return false;
    }
    // |price - market| / market x 100 > REFRESH_PCT + the slot's grid
    // offset (the tolerance is measured from where the slot quotes), without
    // the division: this runs for every resting entry on every tick.
    let tolerance = ctx.cfg.refresh_pct + grid_offset_pct(ctx.cfg, slot_id);
    if (e.price - market).abs() * Decimal::ONE_HUNDRED <= tolerance * market {
        return false;
    }
    if let Some(until) = trade.refresh.cooldown_until {
        if ctx.now < until {
            return false;
        }
        trade.refresh = Default::default();
    }
    let up = market > e.price;
    if trade.refresh.up == Some(up) {
        trade.refresh.count += 1;
    } else {
        trade.refresh.up = Some(up);
        trade.refresh.count = 1;
    }
    if trade.refresh.count >= ctx.cfg.refresh_streak_limit {
        trade.refresh.cooldown_until = Some(ctx.now + ctx.cfg.refresh_cooldown_sec);
    }
    e.cancel_requested = true;
    out.push(Action::Cancel {
        order_id: e.id,
        txid: e.txid.clone(),
    });
    true
}
