//! Scenario tests of the reducer: one behaviour of SPEC §2 per test.

use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use super::*;
use crate::engine::invariants::check_slot;
use crate::engine::test_support::cfg;
use crate::engine::types::{Phase, RepriceKind, SlotState};
use crate::pair::Side;

struct H {
    s: EngineState,
    c: EngineConfig,
}

impl H {
    fn new(c: EngineConfig) -> Self {
        Self {
            s: EngineState::new(c.slots),
            c,
        }
    }

    fn ev(&mut self, e: Event) -> Vec<Action> {
        let out = transition(&mut self.s, &e, &self.c);
        for slot in self.s.slots.values() {
            if !slot.is_halted() {
                assert_eq!(check_slot(slot, &self.c), Ok(()));
            }
        }
        out
    }

    fn tick(&mut self, price: Decimal, now: i64) -> Vec<Action> {
        self.ev(Event::PriceTick { price, now })
    }

    fn slot(&self, i: u32) -> &SlotState {
        &self.s.slots[&i]
    }

    fn entry(&self, i: u32, t: TradeId) -> EntryOrder {
        self.slot(i).trade(t).entry().expect("entry").clone()
    }

    fn exit(&self, i: u32, t: TradeId) -> ExitOrder {
        self.slot(i).trade(t).exit().expect("exit").clone()
    }

    /// Slot 0's B entry filled at t=5 and its exit resting as `X1`.
    fn live_b_exit(&mut self) -> ExitOrder {
        self.tick(dec!(0.1), 1);
        let b = self.entry(0, TradeId::B);
        self.fill(b.id, b.price, b.volume, 5);
        let x = self.exit(0, TradeId::B);
        self.ev(Event::Placed {
            order_id: x.id,
            txid: "X1".into(),
        });
        x
    }

    /// Fills `volume` of an order at `price` with a 0.25 % fee.
    fn fill(&mut self, id: OrderId, price: Decimal, volume: Decimal, at: i64) -> Vec<Action> {
        let cost = price * volume;
        self.ev(Event::Fill {
            order_id: id,
            txid: format!("TX-{id}"),
            price,
            volume,
            cost,
            fee: cost * dec!(0.0025),
            at,
        })
    }
}

fn places(a: &[Action]) -> Vec<&OrderRequest> {
    a.iter()
        .filter_map(|a| match a {
            Action::Place(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn one_slot() -> EngineConfig {
    let mut c = cfg();
    c.slots = 1;
    c
}

#[test]
fn nothing_is_placed_before_the_first_price_then_both_entries_per_slot() {
    let mut h = H::new(cfg());
    assert!(h.ev(Event::TimerTick { now: 10 }).is_empty());
    let a = h.tick(dec!(0.1), 20);
    let p = places(&a);
    assert_eq!(p.len(), 6, "two entries in each of 3 slots");
    // slot 0: A sells 0.1 x 1.002, B buys 0.1 x 0.998; 10 USD / price floored
    assert_eq!(p[0].id.to_string(), "0:A:1:en:1");
    assert_eq!(
        (p[0].side, p[0].price, p[0].volume),
        (Side::Sell, dec!(0.1002), dec!(99.80039920))
    );
    assert_eq!(p[1].id.to_string(), "0:B:1:en:2");
    assert_eq!(
        (p[1].side, p[1].price, p[1].volume),
        (Side::Buy, dec!(0.0998), dec!(100.20040080))
    );
    for s in h.s.slots.values() {
        assert_eq!(s.phase(), Phase::S0);
    }
}

#[test]
fn below_minimum_the_slot_waits_and_never_upsizes() {
    let mut c = one_slot();
    c.order_size = crate::engine::OrderSize::Usd(dec!(2)); // 2 USD at 0.1 = 20 DOGE < ordermin 50
    let mut h = H::new(c);
    assert!(places(&h.tick(dec!(0.1), 1)).is_empty());
    assert_eq!(
        h.slot(0).trade_a.work,
        TradeWork::Idle(IdleReason::BelowMinimum)
    );
    // At 0.03 the same 2 USD buys >= 50 DOGE: entries appear, sized from 2 USD.
    let a = h.tick(dec!(0.03), 2);
    let p = places(&a);
    assert_eq!(p.len(), 2);
    assert!(p.iter().all(|r| r.volume * r.price <= dec!(2)));
}

#[test]
fn entry_fill_places_an_exit_for_the_filled_volume_carrying_its_entry_and_target() {
    let mut h = H::new(one_slot());
    h.tick(dec!(0.1), 1);
    let b = h.entry(0, TradeId::B);
    h.ev(Event::Placed {
        order_id: b.id,
        txid: "OB1".into(),
    });
    let a = h.fill(b.id, b.price, b.volume, 5);
    assert_eq!(h.slot(0).phase(), Phase::S1b);
    let x = h.exit(0, TradeId::B);
    // sell exit = max(0.0998 x 1.01, 0.1 x 1.002) = 0.100798
    assert_eq!((x.price, x.volume), (dec!(0.100798), b.volume));
    assert_eq!(x.entry.price, dec!(0.0998));
    assert_eq!(x.entry.txid.as_deref(), Some("OB1"));
    assert_eq!(x.target_profit_pct, dec!(1));
    assert_eq!(x.position_id, None);
    let Action::OpenPosition(pi) = &a[0] else {
        panic!("{a:?}")
    };
    assert_eq!(pi.open_key, b.id.to_string());
    assert_eq!(
        (pi.entry_volume, pi.exit_price, pi.entry_time),
        (b.volume, x.price, 5)
    );
    assert_eq!(places(&a)[0].id, x.id);
    // The ledger acknowledges: the exit now carries its position id.
    assert!(
        h.ev(Event::PositionOpened {
            order_id: x.id,
            position_id: "P-1".into()
        })
        .is_empty()
    );
    assert_eq!(h.exit(0, TradeId::B).position_id.as_deref(), Some("P-1"));
}

#[test]
fn exit_fill_books_the_cycle_from_actual_fills_and_reenters() {
    let mut h = H::new(one_slot());
    h.tick(dec!(0.1), 1);
    let b = h.entry(0, TradeId::B);
    h.fill(b.id, b.price, b.volume, 5);
    let x = h.exit(0, TradeId::B);
    h.ev(Event::PositionOpened {
        order_id: x.id,
        position_id: "P-9".into(),
    });
    let a = h.fill(x.id, x.price, x.volume, 50);
    let Action::BookCycle(bk) = &a[0] else {
        panic!("{a:?}")
    };
    let vol = b.volume;
    let gross = (dec!(0.100798) - dec!(0.0998)) * vol;
    let fees = (dec!(0.0998) * vol + dec!(0.100798) * vol) * dec!(0.0025);
    assert_eq!(
        (bk.volume, bk.gross, bk.fees, bk.net),
        (vol, gross, fees, gross - fees)
    );
    assert_eq!(bk.position_id.as_deref(), Some("P-9"));
    assert_eq!((bk.entry_time, bk.exit_time, bk.cycle), (5, 50, 1));
    assert!(bk.net > Decimal::ZERO);
    // Win: no cooldown, next entry of cycle 2 placed at once.
    let p = places(&a);
    assert_eq!(p.len(), 1);
    assert_eq!(
        (p[0].id.trade, p[0].id.cycle, p[0].id.role),
        (TradeId::B, 2, OrderRole::Entry)
    );
    assert_eq!(h.slot(0).trade_b.consecutive_losses, 0);
}

#[test]
fn trade_a_books_entry_minus_exit() {
    let mut h = H::new(one_slot());
    h.tick(dec!(0.1), 1);
    let e = h.entry(0, TradeId::A);
    h.fill(e.id, e.price, e.volume, 2);
    let x = h.exit(0, TradeId::A);
    // buy exit = min(0.1002 x 0.99, 0.1 x 0.998) = 0.0991980 (passive floor)
    assert_eq!(x.price, dec!(0.099198));
    let a = h.fill(x.id, x.price, x.volume, 3);
    let Action::BookCycle(bk) = &a[0] else {
        panic!()
    };
    assert_eq!(bk.gross, (dec!(0.1002) - dec!(0.099198)) * e.volume);
}

#[test]
fn partial_entry_fills_accumulate_into_one_exit_at_the_average_price() {
    let mut h = H::new(one_slot());
    h.tick(dec!(0.1), 1);
    let b = h.entry(0, TradeId::B);
    let first = dec!(40);
    assert!(
        places(&h.fill(b.id, b.price, first, 2)).is_empty(),
        "no exit yet"
    );
    assert_eq!(h.slot(0).phase(), Phase::S0);
    h.fill(b.id, b.price, b.volume - first, 3);
    let x = h.exit(0, TradeId::B);
    assert_eq!(x.volume, b.volume);
    assert_eq!(x.entry.price, b.price);
    assert_eq!(x.entry.time, 3);
}

#[test]
fn a_partially_filled_entry_that_leaves_the_book_becomes_an_exit_for_the_filled_part() {
    let mut h = H::new(one_slot());
    h.tick(dec!(0.1), 1);
    let b = h.entry(0, TradeId::B);
    h.fill(b.id, b.price, dec!(60), 2);
    let a = h.ev(Event::OrderGone {
        order_id: b.id,
        reason: GoneReason::Expired,
    });
    let x = h.exit(0, TradeId::B);
    assert_eq!((x.volume, x.entry.volume), (dec!(60), dec!(60)));
    assert_eq!(places(&a)[0].volume, dec!(60));
}

#[test]
fn both_entries_filled_is_s2_with_two_exits_and_no_entries() {
    let mut h = H::new(one_slot());
    h.tick(dec!(0.1), 1);
    let (a, b) = (h.entry(0, TradeId::A), h.entry(0, TradeId::B));
    h.fill(a.id, a.price, a.volume, 2);
    assert_eq!(h.slot(0).phase(), Phase::S1a);
    assert_eq!(h.slot(0).s2_since(), None);
    h.fill(b.id, b.price, b.volume, 3);
    assert_eq!(h.slot(0).phase(), Phase::S2);
    assert_eq!(h.slot(0).s2_since(), Some(3));
    assert!(h.slot(0).trade_a.entry().is_none() && h.slot(0).trade_b.entry().is_none());
    // A tick in S2 places nothing (exits are sticky, no entries in S2).
    assert!(h.tick(dec!(0.1), 4).is_empty());
}

#[test]
fn a_loss_sets_the_cooldown_and_five_in_a_row_the_long_one() {
    let mut h = H::new(one_slot());
    h.tick(dec!(0.1), 1);
    let b = h.entry(0, TradeId::B);
    h.fill(b.id, b.price, b.volume, 2);
    let x = h.exit(0, TradeId::B);
    // Exit fills with a fee larger than the gross profit: a net loss.
    let a = h.ev(Event::Fill {
        order_id: x.id,
        txid: "X".into(),
        price: x.price,
        volume: x.volume,
        cost: x.price * x.volume,
        fee: dec!(1),
        at: 100,
    });
    assert!(places(&a).is_empty());
    assert_eq!(h.slot(0).trade_b.consecutive_losses, 1);
    assert_eq!(
        h.slot(0).trade_b.work,
        TradeWork::Idle(IdleReason::Cooldown { until: 160 })
    );
    assert!(places(&h.ev(Event::TimerTick { now: 159 })).is_empty());
    let p = h.ev(Event::TimerTick { now: 160 });
    assert_eq!(places(&p).len(), 1);
    // Fifth loss in a row: 900 s, and the entry is backed off (x 2.5 at 5).
    h.s.slots.get_mut(&0).unwrap().trade_b.consecutive_losses = 4;
    let b = h.entry(0, TradeId::B);
    h.fill(b.id, b.price, b.volume, 200);
    let x = h.exit(0, TradeId::B);
    h.ev(Event::Fill {
        order_id: x.id,
        txid: "X".into(),
        price: x.price,
        volume: x.volume,
        cost: x.price * x.volume,
        fee: dec!(1),
        at: 300,
    });
    assert_eq!(
        h.slot(0).trade_b.work,
        TradeWork::Idle(IdleReason::Cooldown { until: 1200 })
    );
    let p = h.ev(Event::TimerTick { now: 1200 });
    // e = 0.2 x (1 + 0.5 x 3) = 0.5 % below 0.1
    assert_eq!(places(&p)[0].price, dec!(0.0995));
}

#[test]
fn a_trend_hold_cancels_the_entry_against_the_move_and_places_it_when_lifted() {
    let mut h = H::new(one_slot());
    h.tick(dec!(0.1), 1);
    let (a, b) = (h.entry(0, TradeId::A), h.entry(0, TradeId::B));
    h.ev(Event::EntryHold {
        hold: EntryHold::Sells,
    });
    let out = h.tick(dec!(0.1), 2);
    assert_eq!(
        out,
        vec![Action::Cancel {
            order_id: a.id,
            txid: None
        }],
        "only the sell entry (A) is cancelled"
    );
    assert_eq!(h.entry(0, TradeId::B).id, b.id, "the buy entry stays");
    let out = h.ev(Event::OrderGone {
        order_id: a.id,
        reason: GoneReason::CancelledByEngine,
    });
    assert!(places(&out).is_empty(), "held: nothing placed");
    assert_eq!(
        h.slot(0).trade(TradeId::A).work,
        TradeWork::Idle(IdleReason::TrendHold)
    );
    assert!(places(&h.tick(dec!(0.101), 3)).is_empty(), "still held");
    h.ev(Event::EntryHold {
        hold: EntryHold::None,
    });
    let out = h.tick(dec!(0.101), 4);
    let placed = places(&out);
    assert_eq!(placed.len(), 1);
    assert_eq!(placed[0].side, Side::Sell);
}

#[test]
fn a_trend_hold_never_touches_exits_or_partly_filled_entries() {
    let mut h = H::new(one_slot());
    let x = h.live_b_exit();
    let a = h.entry(0, TradeId::A);
    h.fill(a.id, a.price, dec!(1), 6);
    for (hold, now) in [(EntryHold::Sells, 7), (EntryHold::Buys, 8)] {
        h.ev(Event::EntryHold { hold });
        let out = h.tick(dec!(0.1), now);
        assert!(
            !out.iter().any(|a| matches!(a, Action::Cancel { .. })),
            "{hold:?}: {out:?}"
        );
    }
    assert_eq!(h.exit(0, TradeId::B).id, x.id);
    assert_eq!(h.entry(0, TradeId::A).id, a.id);
}

mod robustness;
