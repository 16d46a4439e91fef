//! An operator's close at market of a handed-over round trip (SPEC §8),
//! the same two halves as a slot's exit
//! ([`crate::engine::MarketClose`]): first the limit exit is cancelled;
//! once the cancel is confirmed (racing fills applied, so the executed
//! volume is exact) only the remainder is sent as a market order under a
//! new client id (an ambiguous answer is looked up by that id like any
//! churner placement, never sent twice). Its fill closes the round trip
//! `written_off` at the exchange's price and fee. A market order the
//! exchange refuses, or that leaves the book unfilled, restores the limit
//! exit at its price for what is still open.

use super::events::{ChurnEvent, replace_later};
use super::{ChurnAction, ChurnOrder, ChurnPosition, SlotChurn};
use crate::engine::MarketClose;

/// Folds a report about a handed-over exit while a close at market of it
/// is in progress. Returns `true` when the report was the close's (the
/// caller folds it no further); fills, and the market order's placement,
/// are left to the caller (a fill of the market order closes the round
/// trip `written_off`).
pub(super) fn close_step(
    s: &mut SlotChurn,
    order: &mut ChurnOrder,
    position: &ChurnPosition,
    close: &mut Option<MarketClose>,
    event: &ChurnEvent,
    out: &mut Vec<ChurnAction>,
) -> bool {
    let Some(c) = *close else {
        return false;
    };
    let at = match event {
        ChurnEvent::Gone { at, .. } => *at,
        ChurnEvent::PlaceFailed { at, .. } if c.market_order => *at,
        _ => return false,
    };
    if position.volume - order.fills.volume <= rust_decimal::Decimal::ZERO {
        return false;
    }
    let was = order.id.clone();
    // A fresh placement of what is still open, due now, at the exit's own
    // price (the market order ignores it; a restored exit rests there).
    replace_later(s, order, position, at);
    order.retry_at = None;
    if c.market_order {
        *close = None;
        s.last_error = Some("close at market failed: the exit is restored".into());
        out.push(ChurnAction::CloseFailed {
            slot: order.slot,
            open_key: position.open_key.clone(),
            order_id: was,
            restored: order.id.clone(),
            at,
        });
    } else {
        *close = Some(MarketClose {
            market_order: true,
            ..c
        });
    }
    true
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;
    use rust_decimal_macros::dec;

    use super::super::tests::{cfg, entry_of, exit_of, fill_all, inputs, pair, place, stuck};
    use super::super::{
        ChurnAction, ChurnBook, ChurnEvent, ChurnStage, RepriceRefused, Routing, on_event, plan,
        request_close, request_reprice,
    };

    /// A round trip of slot 0 handed over at 1700 (exit resting as TX1),
    /// a third of its exit filled at 1800.
    fn handed_over_part_filled() -> (ChurnBook, super::super::ChurnOrder, Decimal) {
        let (c, p) = (cfg(), pair());
        let slots = [stuck(0)];
        let mut book = ChurnBook::default();
        plan(&mut book, &inputs(&c, &p, 1000, dec!(0.1), &slots));
        let e = entry_of(&book, 0);
        place(&mut book, &e, "TE1");
        fill_all(&mut book, &e, e.price, 1100, dec!(1));
        let x = exit_of(&book, 0);
        place(&mut book, &x, "TX1");
        plan(&mut book, &inputs(&c, &p, 1700, dec!(0.099), &slots));
        let part = (x.volume / dec!(3)).round_dp(8);
        on_event(
            &mut book,
            &c,
            &p,
            &ChurnEvent::Fill {
                order_id: x.id.clone(),
                price: x.price,
                volume: part,
                cost: x.price * part,
                fee: Decimal::ZERO,
                at: 1800,
            },
            dec!(1),
            dec!(0.099),
        );
        (book, x, part)
    }

    fn ev(book: &mut ChurnBook, e: &ChurnEvent) -> Vec<ChurnAction> {
        on_event(book, &cfg(), &pair(), e, dec!(1), dec!(0.099))
    }

    /// Proves: a close at market cancels the handed-over exit (no reprice
    /// or second close meanwhile); the confirmed cancel sends only the
    /// remainder as a market order under a new client id; its fill closes
    /// the round trip `written_off` (no credit to the parent) and the
    /// slot's churner is no longer paused.
    #[test]
    fn a_close_sends_the_remainder_at_market_and_books_it_written_off() {
        let (mut book, x, part) = handed_over_part_filled();
        request_close(&mut book, &x.id, 2000).unwrap();
        assert!(book.slots[&0].stage.cancel_requested());
        assert!(!book.slots[&0].stage.market_close());
        assert!(matches!(
            request_close(&mut book, &x.id, 2001),
            Err(RepriceRefused::InProgress(_))
        ));
        let want = crate::engine::PendingReprice {
            new_price: x.price - dec!(0.0002),
            kind: crate::engine::RepriceKind::Subsidy,
            subsidized: true,
            full: true,
            subsidy_cap: None,
            requested_at: 2001,
        };
        assert!(matches!(
            request_reprice(&mut book, &pair(), &x.id, want),
            Err(RepriceRefused::InProgress(_))
        ));
        let out = ev(
            &mut book,
            &ChurnEvent::Gone {
                order_id: x.id.clone(),
                at: 2010,
            },
        );
        assert!(out.is_empty(), "{out:?}");
        let m = exit_of(&book, 0);
        assert!(book.slots[&0].stage.market_close());
        assert!(!book.slots[&0].stage.cancel_requested());
        assert_ne!(m.id, x.id, "a new client id");
        assert_eq!(m.volume, x.volume - part, "only the remainder");
        assert!(m.wants_placement(2010));
        assert_eq!(book.naked_inventory(), Decimal::ZERO);
        place(&mut book, &m, "TM1");
        let out = fill_all(&mut book, &m, dec!(0.0985), 2020, dec!(1));
        let [
            ChurnAction::Close {
                written_off: true,
                routed: Routing::Nothing,
                net,
                ..
            },
        ] = out.as_slice()
        else {
            panic!("a written-off close expected: {out:?}")
        };
        assert!(*net < Decimal::ZERO);
        assert!(matches!(book.slots[&0].stage, ChurnStage::Idle));
        assert_eq!(book.slots[&0].paused, None, "the slot's churner runs again");
        assert!(book.reserve.lent.is_empty());
    }

    /// Proves: a market order the exchange refuses restores the limit
    /// exit at its price for the remainder under a new client id and says
    /// so; a later close starts afresh.
    #[test]
    fn a_refused_market_order_restores_the_exit() {
        let (mut book, x, part) = handed_over_part_filled();
        request_close(&mut book, &x.id, 2000).unwrap();
        ev(
            &mut book,
            &ChurnEvent::Gone {
                order_id: x.id.clone(),
                at: 2010,
            },
        );
        let m = exit_of(&book, 0);
        let out = ev(
            &mut book,
            &ChurnEvent::PlaceFailed {
                order_id: m.id.clone(),
                reason: "insufficient funds".into(),
                at: 2011,
            },
        );
        let r = exit_of(&book, 0);
        let [
            ChurnAction::CloseFailed {
                order_id, restored, ..
            },
        ] = out.as_slice()
        else {
            panic!("a failed close expected: {out:?}")
        };
        assert_eq!((order_id, restored), (&m.id, &r.id));
        assert!(!book.slots[&0].stage.market_close());
        assert_eq!((r.price, r.volume), (x.price, x.volume - part));
        assert!(r.wants_placement(2011));
        place(&mut book, &r, "TX2");
        request_close(&mut book, &r.id, 2100).unwrap();
    }
}
