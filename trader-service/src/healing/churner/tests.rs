//! Unit tests of the churner's decisions.

use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use super::*;
use crate::engine::{AgeBand, TradeId};
use crate::pair::PairSpec;

pub(super) fn pair() -> PairSpec {
    PairSpec {
        symbol: "XDGUSD".into(),
        price_decimals: 7,
        lot_decimals: 8,
        ordermin: dec!(50),
        costmin: dec!(0.5),
    }
}

pub(super) fn cfg() -> ChurnerConfig {
    ChurnerConfig {
        enabled: true,
        order_size_usd: Some(dec!(6)),
        reserve_usd: Some(dec!(12)),
        ..ChurnerConfig::off()
    }
}

fn parent(slot: u32) -> ParentRef {
    ParentRef {
        open_key: format!("OTX-{slot}"),
        trade: TradeId::B,
        cycle: 1,
    }
}

pub(super) fn stuck(slot: u32) -> SlotView {
    SlotView {
        slot,
        parent: Some(ParentView {
            parent: parent(slot),
            band: AgeBand::Stuck,
            fully_repriced: false,
        }),
        idle_usd: Decimal::ZERO,
        still_needed: dec!(1),
    }
}

pub(super) fn inputs<'a>(
    cfg: &'a ChurnerConfig,
    pair: &'a PairSpec,
    now: i64,
    market: Decimal,
    slots: &'a [SlotView],
) -> ChurnInputs<'a> {
    ChurnInputs {
        cfg,
        pair,
        now,
        market,
        ranging: true,
        headroom: 100,
        slots,
    }
}

pub(super) fn entry_of(book: &ChurnBook, slot: u32) -> ChurnOrder {
    match &book.slots[&slot].stage {
        ChurnStage::Entry { order, .. } => order.clone(),
        other => panic!("entry expected, got {other:?}"),
    }
}

pub(super) fn exit_of(book: &ChurnBook, slot: u32) -> ChurnOrder {
    match &book.slots[&slot].stage {
        ChurnStage::Exit { order, .. } | ChurnStage::HandedOver { order, .. } => order.clone(),
        other => panic!("exit expected, got {other:?}"),
    }
}

pub(super) fn fill_all(
    book: &mut ChurnBook,
    o: &ChurnOrder,
    price: Decimal,
    at: i64,
    needed: Decimal,
) -> Vec<ChurnAction> {
    let fee = (price * o.volume * dec!(0.0025)).round_dp(8);
    on_event(
        book,
        &cfg(),
        &pair(),
        &ChurnEvent::Fill {
            order_id: o.id.clone(),
            price,
            volume: o.volume,
            cost: price * o.volume,
            fee,
            at,
        },
        needed,
        price,
    )
}

pub(super) fn place(book: &mut ChurnBook, o: &ChurnOrder, txid: &str) {
    on_event(
        book,
        &cfg(),
        &pair(),
        &ChurnEvent::Placed {
            order_id: o.id.clone(),
            txid: txid.into(),
        },
        Decimal::ZERO,
        dec!(0.1),
    );
}

/// Proves: a stuck slot in a ranging market gets a buy entry 0.15 %
/// below the market on the tick grid, funded by the reserve (no idle capital),
/// with a client id in the churner's own id space.
#[test]
fn activates_with_entry_below_market_from_reserve() {
    let (c, p) = (cfg(), pair());
    let slots = [stuck(0)];
    let mut book = ChurnBook::default();
    let out = plan(&mut book, &inputs(&c, &p, 1000, dec!(0.1), &slots));
    assert!(
        out.is_empty(),
        "placing an order is state, not a ledger write"
    );
    let o = entry_of(&book, 0);
    assert_eq!(o.side, Side::Buy);
    assert_eq!(o.price, dec!(0.09985));
    assert_eq!(o.volume, dec!(60.09013520));
    assert!(o.id.starts_with("ch:0:1:en:"));
    assert!(o.id.parse::<crate::engine::OrderId>().is_err());
    assert!(o.wants_placement(1000));
    assert_eq!(book.reserve.total(), o.volume * o.price);
    assert!(book.reserve.total() <= dec!(6));
}

/// Proves: each gate blocks activation with its reason: not ranging,
/// fresh parent, no parent, low headroom, parent fully repriced, disabled,
/// no capital (reserve too small), and capacity `(headroom - min) / 2`.
#[test]
fn gates_block_with_reasons() {
    let p = pair();
    let run = |c: &ChurnerConfig, slots: &[SlotView], ranging: bool, headroom: u32| {
        let mut book = ChurnBook::default();
        let mut i = inputs(c, &p, 1000, dec!(0.1), slots);
        i.ranging = ranging;
        i.headroom = headroom;
        plan(&mut book, &i);
        book
    };
    let c = cfg();
    let b = run(&c, &[stuck(0)], false, 100);
    assert_eq!(b.slots[&0].paused, Some(PauseReason::NotRanging));
    let mut fresh = stuck(0);
    fresh.parent.as_mut().unwrap().band = AgeBand::Fresh;
    assert_eq!(
        run(&c, &[fresh], true, 100).slots[&0].paused,
        Some(PauseReason::NoStuckPosition)
    );
    let mut none = stuck(0);
    none.parent = None;
    assert_eq!(
        run(&c, &[none], true, 100).slots[&0].paused,
        Some(PauseReason::NoStuckPosition)
    );
    assert_eq!(
        run(&c, &[stuck(0)], true, 9).slots[&0].paused,
        Some(PauseReason::NoHeadroom)
    );
    let mut done = stuck(0);
    done.parent.as_mut().unwrap().fully_repriced = true;
    assert_eq!(
        run(&c, &[done], true, 100).slots[&0].paused,
        Some(PauseReason::ParentRepriced)
    );
    let off = ChurnerConfig::off();
    assert_eq!(
        run(&off, &[stuck(0)], true, 100).slots[&0].paused,
        Some(PauseReason::Disabled)
    );
    let poor = ChurnerConfig {
        reserve_usd: Some(dec!(1)),
        ..cfg()
    };
    assert_eq!(
        run(&poor, &[stuck(0)], true, 100).slots[&0].paused,
        Some(PauseReason::NoCapital)
    );
    // Idle capital funds it without the reserve.
    let mut rich = stuck(0);
    rich.idle_usd = dec!(100);
    let b = run(&poor, &[rich], true, 100);
    assert!(matches!(
        b.slots[&0].stage,
        ChurnStage::Entry {
            funding: Funding::Idle,
            ..
        }
    ));
    // Headroom 14 with minimum 10: capacity 2 of 4 stuck slots.
    let big = ChurnerConfig {
        reserve_usd: Some(dec!(100)),
        ..cfg()
    };
    let four: Vec<SlotView> = (0..4).map(stuck).collect();
    assert_eq!(run(&big, &four, true, 14).active(), 2);
    assert_eq!(capacity(&big, 14), 2);
    assert_eq!(capacity(&big, 1000), big.max_active);
}

/// Proves: the reserve lends at most one order size per slot and never
/// more than its total; slots beyond it wait with `no_capital`, and a
/// loan returns when the round trip ends.
#[test]
fn reserve_is_never_over_lent_and_returns() {
    let (c, p) = (cfg(), pair());
    let slots: Vec<SlotView> = (0..5).map(stuck).collect();
    let mut book = ChurnBook::default();
    plan(&mut book, &inputs(&c, &p, 1000, dec!(0.1), &slots));
    assert_eq!(
        book.active(),
        2,
        "12 USD of reserve funds two 6 USD churners"
    );
    assert!(Some(book.reserve.total()) <= c.reserve_usd);
    assert!(book.reserve.lent.values().all(|l| *l <= dec!(6)));
    assert_eq!(book.slots[&2].paused, Some(PauseReason::NoCapital));
    // Slot 0's round trip completes: its loan returns and slot 2 starts.
    let e = entry_of(&book, 0);
    place(&mut book, &e, "T1");
    fill_all(&mut book, &e, e.price, 1010, dec!(1));
    let x = exit_of(&book, 0);
    place(&mut book, &x, "T2");
    fill_all(&mut book, &x, x.price, 1020, dec!(1));
    assert!(!book.reserve.lent.contains_key(&0));
    plan(&mut book, &inputs(&c, &p, 1030, dec!(0.1), &slots));
    assert_eq!(book.active(), 2);
    assert!(
        matches!(book.slots[&0].stage, ChurnStage::Entry { .. })
            || matches!(book.slots[&2].stage, ChurnStage::Entry { .. })
    );
    assert!(Some(book.reserve.total()) <= c.reserve_usd);
    assert_eq!(
        book.reserve.peak,
        book.reserve.total().max(book.reserve.peak)
    );
}

/// Proves: a filled entry opens a churner position and an exit at
/// fill x (1 + 0.60 %) rounded up; the exit's fill closes it with the
/// exact net, credited to the parent while it still needs subsidy, and
/// compounded into the slot's size once it does not.
#[test]
fn round_trip_opens_closes_and_routes_profit() {
    let (c, p) = (cfg(), pair());
    let slots = [stuck(0)];
    let mut book = ChurnBook::default();
    plan(&mut book, &inputs(&c, &p, 1000, dec!(0.1), &slots));
    let e = entry_of(&book, 0);
    place(&mut book, &e, "TE1");
    let out = fill_all(&mut book, &e, e.price, 1060, dec!(1));
    let [ChurnAction::Open { position, .. }] = out.as_slice() else {
        panic!("open expected: {out:?}")
    };
    assert_eq!(position.open_key, "churn:TE1");
    assert_eq!(position.entry_price, e.price);
    let x = exit_of(&book, 0);
    assert_eq!(x.side, Side::Sell);
    assert_eq!(
        x.price,
        p.round_price_passive(Side::Sell, e.price * dec!(1.006))
    );
    assert_eq!(x.volume, e.volume);
    place(&mut book, &x, "TX1");
    let out = fill_all(&mut book, &x, x.price, 1200, dec!(1));
    let [ChurnAction::Close { net, routed, .. }] = out.as_slice() else {
        panic!("close expected: {out:?}")
    };
    let fee_in = (e.price * e.volume * dec!(0.0025)).round_dp(8);
    let fee_out = (x.price * x.volume * dec!(0.0025)).round_dp(8);
    assert_eq!(*net, (x.price - e.price) * e.volume - fee_in - fee_out);
    assert!(*net > Decimal::ZERO);
    assert_eq!(*routed, Routing::Parent(parent(0)));
    assert_eq!(book.stats.cycles, 1);
    assert_eq!(book.stats.credited_usd, *net);
    assert!(matches!(book.slots[&0].stage, ChurnStage::Idle));
    // Next round trip: the parent needs nothing more -> compounds.
    plan(&mut book, &inputs(&c, &p, 1300, dec!(0.1), &slots));
    let e = entry_of(&book, 0);
    place(&mut book, &e, "TE2");
    fill_all(&mut book, &e, e.price, 1310, Decimal::ZERO);
    let x = exit_of(&book, 0);
    place(&mut book, &x, "TX2");
    let out = fill_all(&mut book, &x, x.price, 1320, Decimal::ZERO);
    let [
        ChurnAction::Close {
            net,
            routed: Routing::Compound,
            ..
        },
    ] = out.as_slice()
    else {
        panic!("compound expected: {out:?}")
    };
    assert_eq!(book.slots[&0].compounded_usd, *net);
}

/// Proves: an entry unfilled past `CHURNER_TIMEOUT_SEC` is cancelled
/// (state: the runtime cancels it), and once gone the next plan re-enters
/// at the current price with a new client id.
#[test]
fn entry_timeout_cancels_and_reenters_at_current_price() {
    let (c, p) = (cfg(), pair());
    let slots = [stuck(0)];
    let mut book = ChurnBook::default();
    plan(&mut book, &inputs(&c, &p, 1000, dec!(0.1), &slots));
    let e = entry_of(&book, 0);
    place(&mut book, &e, "TE1");
    plan(&mut book, &inputs(&c, &p, 1299, dec!(0.1), &slots));
    assert!(!book.slots[&0].stage.cancel_requested());
    plan(&mut book, &inputs(&c, &p, 1300, dec!(0.1), &slots));
    assert!(book.slots[&0].stage.cancel_requested());
    on_event(
        &mut book,
        &c,
        &p,
        &ChurnEvent::Gone {
            order_id: e.id.clone(),
            at: 1310,
        },
        dec!(1),
        dec!(0.1),
    );
    assert!(matches!(book.slots[&0].stage, ChurnStage::Idle));
    assert_eq!(book.stats.entry_timeouts, 1);
    plan(&mut book, &inputs(&c, &p, 1320, dec!(0.102), &slots));
    let e2 = entry_of(&book, 0);
    assert_ne!(e2.id, e.id);
    assert_eq!(
        e2.price,
        p.round_price_passive(Side::Buy, dec!(0.102) * dec!(0.9985))
    );
}

/// Proves: an exit unfilled past `CHURNER_EXIT_TIMEOUT_SEC` is handed
/// over (one journal action), its exit stays, the slot's churner pauses
/// until that exit fills, then the round trip closes as usual.
#[test]
fn exit_timeout_hands_over_and_pauses_the_slot() {
    let (c, p) = (cfg(), pair());
    let slots = [stuck(0)];
    let mut book = ChurnBook::default();
    plan(&mut book, &inputs(&c, &p, 1000, dec!(0.1), &slots));
    let e = entry_of(&book, 0);
    place(&mut book, &e, "TE1");
    fill_all(&mut book, &e, e.price, 1100, dec!(1));
    let x = exit_of(&book, 0);
    place(&mut book, &x, "TX1");
    let x = exit_of(&book, 0);
    assert!(plan(&mut book, &inputs(&c, &p, 1699, dec!(0.099), &slots)).is_empty());
    let out = plan(&mut book, &inputs(&c, &p, 1700, dec!(0.099), &slots));
    assert!(matches!(
        out.as_slice(),
        [ChurnAction::HandOver {
            age_seconds: 600,
            ..
        }]
    ));
    assert!(matches!(
        book.slots[&0].stage,
        ChurnStage::HandedOver { .. }
    ));
    assert_eq!(book.slots[&0].paused, Some(PauseReason::HandedOverOpen));
    // Still paused later, no new entry, exit untouched.
    assert!(plan(&mut book, &inputs(&c, &p, 5000, dec!(0.099), &slots)).is_empty());
    assert_eq!(exit_of(&book, 0), x);
    assert_eq!(book.stats.handed_over, 1);
    let out = fill_all(&mut book, &x, x.price, 6000, dec!(1));
    assert!(matches!(out.as_slice(), [ChurnAction::Close { .. }]));
    assert_eq!(book.slots[&0].paused, None);
    assert_eq!(book.naked_inventory(), Decimal::ZERO);
}

/// Proves: healing's reprice of a handed-over exit cancels it, and the
/// confirmed cancel places only the remainder at the new price under a
/// new client id, books the move with the subsidy of that remainder, and
/// records it in the round trip's healing facts; a refused re-placement
/// keeps the repriced price.
#[test]
fn a_handed_over_exit_is_repriced_by_cancel_and_replace_of_the_remainder() {
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
    // A third of the exit fills before the reprice.
    let part = (x.volume / dec!(3)).round_dp(8);
    let ev = |e: ChurnEvent, book: &mut ChurnBook| on_event(book, &c, &p, &e, dec!(1), dec!(0.099));
    ev(
        ChurnEvent::Fill {
            order_id: x.id.clone(),
            price: x.price,
            volume: part,
            cost: x.price * part,
            fee: Decimal::ZERO,
            at: 1800,
        },
        &mut book,
    );
    let want = |price| crate::engine::PendingReprice {
        new_price: price,
        kind: crate::engine::RepriceKind::Subsidy,
        subsidized: true,
        full: true,
        subsidy_cap: None,
        requested_at: 2000,
    };
    let to = x.price - dec!(0.0002);
    assert!(matches!(
        request_reprice(&mut book, &p, "ch:0:9:ex:9", want(to)),
        Err(RepriceRefused::NotHandedOver(_))
    ));
    assert!(matches!(
        request_reprice(&mut book, &p, &x.id, want(x.price)),
        Err(RepriceRefused::BadPrice { .. })
    ));
    request_reprice(&mut book, &p, &x.id, want(to)).unwrap();
    assert!(book.slots[&0].stage.cancel_requested());
    assert!(matches!(
        request_reprice(&mut book, &p, &x.id, want(to)),
        Err(RepriceRefused::InProgress(_))
    ));
    let out = ev(
        ChurnEvent::Gone {
            order_id: x.id.clone(),
            at: 2010,
        },
        &mut book,
    );
    let rest = x.volume - part;
    let [ChurnAction::Repriced(r)] = out.as_slice() else {
        panic!("a reprice booking expected: {out:?}")
    };
    assert_eq!(
        (r.old_price, r.new_price, r.volume, r.subsidy_consumed, r.at),
        (x.price, to, rest, dec!(0.0002) * rest, 2010)
    );
    let y = exit_of(&book, 0);
    assert_eq!(r.new_order_id, y.id);
    assert_ne!(y.id, x.id, "a new client id");
    assert_eq!((y.price, y.volume, y.txid.as_deref()), (to, rest, None));
    assert!(y.wants_placement(2010));
    assert!(!book.slots[&0].stage.cancel_requested());
    let ChurnStage::HandedOver { heal, .. } = &book.slots[&0].stage else {
        panic!("still handed over")
    };
    assert_eq!(heal.times_repriced, 1);
    assert_eq!(heal.last_subsidy_reprice_at, Some(2010));
    assert_eq!(book.naked_inventory(), Decimal::ZERO);
    // Refused: tried again later at the repriced price, not the old target.
    ev(
        ChurnEvent::PlaceFailed {
            order_id: y.id.clone(),
            reason: "post only".into(),
            at: 2020,
        },
        &mut book,
    );
    plan(&mut book, &inputs(&c, &p, 2100, dec!(0.099), &slots));
    let z = exit_of(&book, 0);
    assert_eq!((z.price, z.volume), (to, rest));
    assert!(z.wants_placement(2100));
}

/// Proves: deactivation (regime leaves ranging) cancels an unfilled entry
/// but a filled entry keeps its exit; an entry that never reached the
/// exchange is dropped locally and its loan returned.
#[test]
fn deactivation_keeps_filled_inventory_working() {
    let (c, p) = (cfg(), pair());
    let slots = [stuck(0), stuck(1)];
    let mut book = ChurnBook::default();
    plan(&mut book, &inputs(&c, &p, 1000, dec!(0.1), &slots));
    let e0 = entry_of(&book, 0);
    place(&mut book, &e0, "TE0");
    fill_all(&mut book, &e0, e0.price, 1010, dec!(1));
    let e1 = entry_of(&book, 1);
    place(&mut book, &e1, "TE1");
    let mut i = inputs(&c, &p, 1020, dec!(0.1), &slots);
    i.ranging = false;
    plan(&mut book, &i);
    assert!(
        matches!(book.slots[&0].stage, ChurnStage::Exit { .. }),
        "filled: exit stays"
    );
    assert!(book.slots[&1].stage.cancel_requested());
    // A racing partial fill before the cancel lands: the part gets an exit.
    on_event(
        &mut book,
        &c,
        &p,
        &ChurnEvent::Fill {
            order_id: e1.id.clone(),
            price: e1.price,
            volume: dec!(55),
            cost: e1.price * dec!(55),
            fee: dec!(0.01),
            at: 1021,
        },
        dec!(1),
        dec!(0.1),
    );
    let out = on_event(
        &mut book,
        &c,
        &p,
        &ChurnEvent::Gone {
            order_id: e1.id.clone(),
            at: 1022,
        },
        dec!(1),
        dec!(0.1),
    );
    assert!(matches!(out.as_slice(), [ChurnAction::Open { .. }]));
    assert_eq!(exit_of(&book, 1).volume, dec!(55));
    assert_eq!(book.naked_inventory(), Decimal::ZERO);
    // An entry decided but never sent is dropped locally.
    let mut b2 = ChurnBook::default();
    plan(&mut b2, &inputs(&c, &p, 1000, dec!(0.1), &slots[..1]));
    let mut i = inputs(&c, &p, 1001, dec!(0.1), &slots[..1]);
    i.ranging = false;
    plan(&mut b2, &i);
    assert!(matches!(b2.slots[&0].stage, ChurnStage::Idle));
    assert_eq!(b2.reserve.total(), Decimal::ZERO);
}

/// Proves: an exit the exchange refuses, or one that vanishes unfilled,
/// is placed again under a new client id for what is still open, priced
/// not below its target and not across the market.
#[test]
fn refused_or_vanished_exits_are_placed_again() {
    let (c, p) = (cfg(), pair());
    let slots = [stuck(0)];
    let mut book = ChurnBook::default();
    plan(&mut book, &inputs(&c, &p, 1000, dec!(0.1), &slots));
    let e = entry_of(&book, 0);
    place(&mut book, &e, "TE");
    fill_all(&mut book, &e, e.price, 1010, dec!(1));
    let x = exit_of(&book, 0);
    on_event(
        &mut book,
        &c,
        &p,
        &ChurnEvent::PlaceFailed {
            order_id: x.id.clone(),
            reason: "post-only would cross".into(),
            at: 1011,
        },
        dec!(1),
        dec!(0.1),
    );
    let x2 = exit_of(&book, 0);
    assert_ne!(x2.id, x.id);
    assert!(!x2.wants_placement(1011));
    assert_eq!(book.naked_inventory(), Decimal::ZERO);
    // The market rose past the target meanwhile: re-priced above it.
    plan(&mut book, &inputs(&c, &p, 1071, dec!(0.2), &slots));
    let x3 = exit_of(&book, 0);
    assert!(x3.wants_placement(1071));
    assert_eq!(x3.price, dec!(0.2000001));
    assert!(x3.price >= x.price);
    place(&mut book, &x3, "TX3");
    on_event(
        &mut book,
        &c,
        &p,
        &ChurnEvent::Gone {
            order_id: x3.id.clone(),
            at: 1080,
        },
        dec!(1),
        dec!(0.1),
    );
    let x4 = exit_of(&book, 0);
    assert_ne!(x4.id, x3.id);
    assert_eq!(x4.volume, e.volume);
}

/// Proves: the exit price never crosses the market (a sell rests at
/// least a tick above it) and never below fill x (1 + profit).
#[test]
fn exit_price_never_crosses_nor_loses() {
    let (c, p) = (cfg(), pair());
    assert_eq!(
        exit_price(&c, &p, Side::Sell, dec!(0.1), dec!(0.09)),
        dec!(0.1006)
    );
    assert_eq!(
        exit_price(&c, &p, Side::Sell, dec!(0.1), dec!(0.2)),
        dec!(0.2000001)
    );
    assert_eq!(
        exit_price(&c, &p, Side::Buy, dec!(0.1), dec!(0.11)),
        dec!(0.0994)
    );
    assert_eq!(
        exit_price(&c, &p, Side::Buy, dec!(0.1), dec!(0.05)),
        dec!(0.0499999)
    );
}

/// Proves: the operator's reserve must cover what is lent now (equal is
/// fine) and needs the churner on.
#[test]
fn reserve_change_covers_the_loans() {
    let c = cfg();
    let mut book = ChurnBook::default();
    book.reserve.lend(0, dec!(5.5));
    book.reserve.lend(1, dec!(4));
    assert_eq!(check_reserve(&book, &c, dec!(9.5)), Ok(()));
    assert_eq!(check_reserve(&book, &c, dec!(20)), Ok(()));
    assert_eq!(
        check_reserve(&book, &c, dec!(9)),
        Err(ManualError::ReserveBelowLent {
            reserve: dec!(9),
            lent: dec!(9.5)
        })
    );
    assert_eq!(
        check_reserve(&ChurnBook::default(), &ChurnerConfig::off(), dec!(1)),
        Err(ManualError::Disabled)
    );
}

/// Proves: operator spawn runs a churner whose parent is only fresh and
/// kill stops it (cancel of the resting entry); bad slots, a disabled
/// churner and a repeated command are refused with clear errors and change nothing.
#[test]
fn manual_spawn_and_kill() {
    let (c, p) = (cfg(), pair());
    let mut fresh = stuck(0);
    fresh.parent.as_mut().unwrap().band = AgeBand::Fresh;
    let slots = [fresh];
    let mut book = ChurnBook::default();
    assert_eq!(
        manual(&mut book, &c, 1, 3, ManualCommand::Spawn),
        Err(ManualError::UnknownSlot(3))
    );
    assert_eq!(
        manual(&mut book, &ChurnerConfig::off(), 1, 0, ManualCommand::Spawn),
        Err(ManualError::Disabled)
    );
    assert_eq!(book, ChurnBook::default());
    manual(&mut book, &c, 1, 0, ManualCommand::Spawn).unwrap();
    let before = book.clone();
    assert_eq!(
        manual(&mut book, &c, 1, 0, ManualCommand::Spawn),
        Err(ManualError::Already(0, "spawned by hand"))
    );
    assert_eq!(book, before);
    plan(&mut book, &inputs(&c, &p, 1000, dec!(0.1), &slots));
    let e = entry_of(&book, 0);
    place(&mut book, &e, "TE");
    manual(&mut book, &c, 1, 0, ManualCommand::Kill).unwrap();
    plan(&mut book, &inputs(&c, &p, 1001, dec!(0.1), &slots));
    assert!(book.slots[&0].stage.cancel_requested());
    assert_eq!(book.slots[&0].paused, Some(PauseReason::Killed));
}

/// Proves: the book survives a JSON round trip unchanged (what the
/// runtime commits is what it restores).
#[test]
fn book_round_trips_through_json() {
    let (c, p) = (cfg(), pair());
    let slots = [stuck(0), stuck(1)];
    let mut book = ChurnBook::default();
    plan(&mut book, &inputs(&c, &p, 1000, dec!(0.1), &slots));
    let e = entry_of(&book, 0);
    place(&mut book, &e, "TE");
    fill_all(&mut book, &e, e.price, 1010, dec!(1));
    let json = serde_json::to_string(&book).unwrap();
    let back: ChurnBook = serde_json::from_str(&json).unwrap();
    assert_eq!(back, book);
}

/// Proves: with `CHURNER_RESERVE_USD` unset the reserve is
/// `CHURNER_MAX_ACTIVE` base orders at the current price (52.5 XDG at
/// 0.30 = 15.75 USD each), so it can fund a pair-minimum churner at any
/// price; a configured amount is taken as given.
#[test]
fn default_reserve_funds_max_active_orders() {
    let p = pair();
    let c = ChurnerConfig {
        enabled: true,
        ..ChurnerConfig::off()
    };
    assert_eq!(c.reserve_limit(&p, dec!(0.30)), dec!(15.75) * dec!(5));
    let fixed = ChurnerConfig {
        reserve_usd: Some(dec!(5)),
        ..c.clone()
    };
    assert_eq!(fixed.reserve_limit(&p, dec!(0.30)), dec!(5));
    let slots = [stuck(0)];
    let mut book = ChurnBook::default();
    plan(&mut book, &inputs(&fixed, &p, 1000, dec!(0.30), &slots));
    assert_eq!(
        book.slots[&0].paused,
        Some(PauseReason::NoCapital),
        "5 USD funds no 15.75 USD order"
    );
    let mut book = ChurnBook::default();
    plan(&mut book, &inputs(&c, &p, 1000, dec!(0.30), &slots));
    assert!(matches!(book.slots[&0].stage, ChurnStage::Entry { .. }));
}
