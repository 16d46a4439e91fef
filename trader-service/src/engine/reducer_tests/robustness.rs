//! Scenario tests of the reducer's refreshes, refusals, halts, odd exchange
//! reports and reprices.

use super::*;

#[test]
fn far_entries_are_refreshed_one_per_tick_per_slot_after_the_cancel_is_confirmed() {
    let mut h = H::new(one_slot());
    h.tick(dec!(0.1), 1);
    let b = h.entry(0, TradeId::B);
    // +1.5 %: both entries are > 1 % away, only one is refreshed this tick.
    let a = h.tick(dec!(0.1015), 2);
    assert_eq!(a.len(), 1);
    let Action::Cancel { order_id, .. } = &a[0] else {
        panic!("{a:?}")
    };
    let cancelled = *order_id;
    assert_eq!(cancelled.trade, TradeId::A);
    // The entry stays tracked until the exchange confirms.
    assert!(h.entry(0, TradeId::A).cancel_requested);
    let a = h.ev(Event::OrderGone {
        order_id: cancelled,
        reason: GoneReason::CancelledByEngine,
    });
    let p = places(&a);
    assert_eq!((p[0].price, p[0].id.cycle), (dec!(0.1017030), 1));
    // Next tick refreshes B.
    let a = h.tick(dec!(0.1015), 3);
    assert!(matches!(&a[0], Action::Cancel { order_id, .. } if *order_id == b.id));
}

#[test]
fn anti_chase_pauses_refreshes_after_three_in_one_direction() {
    let mut c = one_slot();
    c.entry_pct = dec!(0.2);
    let mut h = H::new(c);
    h.tick(dec!(0.1), 0);
    let mut price = dec!(0.1);
    let mut now = 0;
    let mut refreshes = 0;
    // Market keeps falling 2 % per step: A's sell entry is left behind.
    for _ in 0..3 {
        price *= dec!(0.98);
        now += 10;
        let a = h.tick(price.round_dp(7), now);
        let Some(Action::Cancel { order_id, .. }) = a.first() else {
            panic!("{a:?}")
        };
        assert_eq!(order_id.trade, TradeId::A);
        refreshes += 1;
        h.ev(Event::OrderGone {
            order_id: *order_id,
            reason: GoneReason::CancelledByEngine,
        });
        // B's entry got closer, but the streak is about A only; keep B near.
        let b = h.entry(0, TradeId::B);
        if b.price < price * dec!(0.97) {
            unreachable!();
        }
    }
    assert_eq!(refreshes, 3);
    assert_eq!(h.slot(0).trade_a.refresh.cooldown_until, Some(now + 300));
    price *= dec!(0.98);
    let p = price.round_dp(7);
    // B may refresh (it is > 1 % away now), A may not.
    let a = h.tick(p, now + 10);
    assert!(
        a.iter()
            .all(|a| !matches!(a, Action::Cancel { order_id, .. } if order_id.trade == TradeId::A))
    );
    let b_cancel = a.iter().find_map(|a| match a {
        Action::Cancel { order_id, .. } => Some(*order_id),
        _ => None,
    });
    if let Some(id) = b_cancel {
        h.ev(Event::OrderGone {
            order_id: id,
            reason: GoneReason::CancelledByEngine,
        });
    }
    // After the pause the streak resets and A refreshes again.
    let a = h.tick(p, now + 300);
    assert!(
        matches!(a.first(), Some(Action::Cancel { order_id, .. }) if order_id.trade == TradeId::A)
    );
    assert_eq!(h.slot(0).trade_a.refresh.count, 1);
}

#[test]
fn a_fill_racing_a_refresh_cancel_is_kept_and_becomes_the_exit() {
    let mut h = H::new(one_slot());
    h.tick(dec!(0.1), 1);
    let a_entry = h.entry(0, TradeId::A);
    let a = h.tick(dec!(0.0985), 2);
    assert!(matches!(&a[0], Action::Cancel { order_id, .. } if *order_id == a_entry.id));
    h.fill(a_entry.id, a_entry.price, dec!(70), 3);
    let a = h.ev(Event::OrderGone {
        order_id: a_entry.id,
        reason: GoneReason::CancelledByEngine,
    });
    let x = h.exit(0, TradeId::A);
    assert_eq!(x.volume, dec!(70));
    assert_eq!(places(&a).len(), 1, "only the exit, no new entry");
}

#[test]
fn insufficient_funds_leaves_a_legal_one_sided_slot_that_retries() {
    let mut h = H::new(one_slot());
    h.tick(dec!(0.1), 1);
    let a_entry = h.entry(0, TradeId::A);
    let out = h.ev(Event::PlaceFailed {
        order_id: a_entry.id,
        reason: PlaceFailReason::InsufficientFunds,
    });
    assert!(out.is_empty());
    assert!(matches!(
        h.slot(0).trade_a.work,
        TradeWork::Idle(IdleReason::PlaceFailed { retry_at: 61, .. })
    ));
    assert!(places(&h.ev(Event::TimerTick { now: 60 })).is_empty());
    assert_eq!(places(&h.ev(Event::TimerTick { now: 61 })).len(), 1);
}

#[test]
fn sticky_exits_survive_refusal_and_removal_and_keep_their_position() {
    let mut h = H::new(one_slot());
    h.tick(dec!(0.1), 1);
    let b = h.entry(0, TradeId::B);
    h.fill(b.id, b.price, b.volume, 2);
    let x = h.exit(0, TradeId::B);
    h.ev(Event::PositionOpened {
        order_id: x.id,
        position_id: "P".into(),
    });
    h.ev(Event::PlaceFailed {
        order_id: x.id,
        reason: PlaceFailReason::Other("busy".into()),
    });
    assert!(h.tick(dec!(0.1), 61).is_empty(), "retry not yet due");
    let a = h.tick(dec!(0.1), 62);
    let p = places(&a);
    assert_eq!((p[0].price, p[0].volume), (x.price, x.volume));
    let x2 = h.exit(0, TradeId::B);
    assert_ne!(x2.id, x.id);
    // Part fills, then the exchange drops it: re-placed for the remainder.
    h.fill(x2.id, x2.price, dec!(30), 70);
    let a = h.ev(Event::OrderGone {
        order_id: x2.id,
        reason: GoneReason::Cancelled,
    });
    assert_eq!(places(&a)[0].volume, x.volume - dec!(30));
    let x3 = h.exit(0, TradeId::B);
    assert_eq!(
        (x3.position_id.as_deref(), x3.entry.clone()),
        (Some("P"), x.entry.clone())
    );
    let a = h.fill(x3.id, x3.price, x.volume - dec!(30), 80);
    let Action::BookCycle(bk) = &a[0] else {
        panic!()
    };
    assert_eq!(bk.volume, x.volume);
}

#[test]
fn an_overfill_halts_only_that_slot() {
    let mut h = H::new(cfg());
    h.tick(dec!(0.1), 1);
    let b = h.entry(1, TradeId::B);
    let a = h.fill(b.id, b.price, b.volume + dec!(1), 2);
    assert!(matches!(
        &a[0],
        Action::Notice(Notice::SlotHalted {
            slot: 1,
            violation: Violation::Overfill { .. }
        })
    ));
    assert!(h.slot(1).is_halted());
    assert!(!h.slot(0).is_halted() && !h.slot(2).is_halted());
    let a = h.fill(b.id, b.price, dec!(1), 3);
    assert_eq!(a, vec![Action::Notice(Notice::IgnoredHalted { slot: 1 })]);
    // Other slots keep trading.
    let b0 = h.entry(0, TradeId::B);
    h.fill(b0.id, b0.price, b0.volume, 4);
    assert_eq!(h.slot(0).phase(), Phase::S1b);
}

#[test]
fn unknown_orders_and_invalid_numbers_change_nothing() {
    let mut h = H::new(one_slot());
    h.tick(dec!(0.1), 1);
    let before = h.s.clone();
    let b = h.entry(0, TradeId::B);
    let stale = OrderId { seq: 99, ..b.id };
    let a = h.fill(stale, b.price, dec!(1), 2);
    assert!(matches!(
        &a[0],
        Action::Notice(Notice::UnknownOrder {
            event: EventKind::Fill,
            ..
        })
    ));
    let a = h.fill(b.id, b.price, dec!(-1), 2);
    assert!(matches!(&a[0], Action::Notice(Notice::InvalidEvent { .. })));
    let a = h.tick(dec!(0), 3);
    assert!(matches!(&a[0], Action::Notice(Notice::InvalidEvent { .. })));
    let other_slot = OrderId { slot: 7, ..b.id };
    let a = h.ev(Event::OrderGone {
        order_id: other_slot,
        reason: GoneReason::Expired,
    });
    assert!(matches!(&a[0], Action::Notice(Notice::UnknownOrder { .. })));
    assert_eq!((&h.s.slots, h.s.market), (&before.slots, before.market));
}

#[test]
fn a_quiet_tick_returns_no_actions_and_does_not_allocate_them() {
    let mut h = H::new(cfg());
    h.tick(dec!(0.1), 1);
    let before = h.s.clone();
    let a = h.tick(dec!(0.1001), 2);
    assert!(a.is_empty());
    assert_eq!(a.capacity(), 0);
    assert_eq!(h.s.slots, before.slots);
}

#[test]
fn state_survives_a_serde_round_trip() {
    let mut h = H::new(one_slot());
    h.tick(dec!(0.1), 1);
    let b = h.entry(0, TradeId::B);
    h.fill(b.id, b.price, b.volume, 2);
    let json = serde_json::to_string(&h.s).unwrap();
    assert!(json.contains("\"0:B:1:ex:3\""), "{json}");
    let back: EngineState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, h.s);
}

#[test]
fn a_position_id_is_write_once() {
    let mut h = H::new(one_slot());
    h.tick(dec!(0.1), 1);
    let b = h.entry(0, TradeId::B);
    h.fill(b.id, b.price, b.volume, 2);
    let x = h.exit(0, TradeId::B);
    let open = |id: &str| Event::PositionOpened {
        order_id: x.id,
        position_id: id.into(),
    };
    assert!(h.ev(open("P1")).is_empty());
    assert!(h.ev(open("P1")).is_empty(), "idempotent retry");
    let a = h.ev(open("P2"));
    assert!(matches!(
        &a[0],
        Action::Notice(Notice::InvalidEvent {
            reason: InvalidReason::PositionIdConflict,
            ..
        })
    ));
    assert_eq!(h.exit(0, TradeId::B).position_id.as_deref(), Some("P1"));
}

#[test]
fn open_positions_get_age_bands_each_loop() {
    use crate::engine::bands::{AgeBand, BandConfig, classify_all};
    let mut h = H::new(cfg());
    assert!(classify_all(&h.s, 0, &BandConfig::default()).is_empty());
    h.tick(dec!(0.1), 0);
    let b = h.entry(2, TradeId::B);
    h.fill(b.id, b.price, b.volume, 0);
    let bands = classify_all(&h.s, 20 * 3600, &BandConfig::default());
    assert_eq!(bands.len(), 1);
    assert_eq!((bands[0].slot, bands[0].trade), (2, TradeId::B));
    // exit 0.100798 vs market 0.1: 0.798 % away; 20 h -> 83491.2 s: aging
    assert_eq!(bands[0].age.band, AgeBand::Aging);
    assert_eq!(bands[0].age.distance_pct, dec!(0.798));
    assert_eq!(bands[0].age.effective_age_sec, dec!(83491.2));
}

#[test]
fn new_slots_can_be_added_and_existing_ones_are_kept() {
    let mut s = EngineState::new(2);
    s.slots.get_mut(&1).unwrap().next_seq = 9;
    s.ensure_slots(4);
    assert_eq!(
        s.slots.keys().copied().collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    assert_eq!(s.slots[&1].next_seq, 9);
}

#[test]
fn a_far_partly_filled_entry_is_cancelled_and_its_fill_gets_the_exit() {
    let mut h = H::new(one_slot());
    h.tick(dec!(0.1), 1);
    let b = h.entry(0, TradeId::B);
    h.fill(b.id, b.price, dec!(60), 2); // >= ordermin 50
    // 0.1012: B's 0.0998 is 1.38 % away, A's 0.1002 only 0.99 %.
    let a = h.tick(dec!(0.1012), 3);
    assert!(
        matches!(&a[0], Action::Cancel { order_id, .. } if *order_id == b.id),
        "{a:?}"
    );
    let a = h.ev(Event::OrderGone {
        order_id: b.id,
        reason: GoneReason::CancelledByEngine,
    });
    let p = places(&a);
    assert_eq!(p.len(), 1);
    assert_eq!((p[0].role, p[0].volume), (OrderRole::Exit, dec!(60)));
    assert_eq!(h.slot(0).phase(), Phase::S1b);
}

#[test]
fn a_dust_partial_entry_keeps_filling_instead_of_being_cancelled() {
    let mut h = H::new(one_slot());
    h.tick(dec!(0.1), 1);
    let b = h.entry(0, TradeId::B);
    h.fill(b.id, b.price, dec!(10), 2); // < ordermin 50
    let a = h.tick(dec!(0.1012), 3);
    assert!(
        a.iter()
            .all(|a| !matches!(a, Action::Cancel { order_id, .. } if *order_id == b.id))
    );
}

#[test]
fn a_dust_exit_refused_as_too_small_is_kept_but_not_retried() {
    let mut h = H::new(one_slot());
    h.tick(dec!(0.1), 1);
    let b = h.entry(0, TradeId::B);
    h.fill(b.id, b.price, dec!(10), 2);
    h.ev(Event::OrderGone {
        order_id: b.id,
        reason: GoneReason::Expired,
    });
    let x = h.exit(0, TradeId::B);
    assert_eq!(x.volume, dec!(10), "the volume is never rounded away");
    h.ev(Event::PlaceFailed {
        order_id: x.id,
        reason: PlaceFailReason::BelowMinimum,
    });
    assert!(places(&h.ev(Event::TimerTick { now: 10_000 })).is_empty());
    assert_eq!(h.exit(0, TradeId::B).volume, dec!(10));
}

#[test]
fn an_exit_reported_before_its_entry_is_booked_at_the_entry_time_with_a_notice() {
    let mut h = H::new(one_slot());
    h.tick(dec!(0.1), 1);
    let b = h.entry(0, TradeId::B);
    // The entry is stamped with a wall clock (2026) ...
    h.fill(b.id, b.price, b.volume, 1_790_000_000);
    let x = h.exit(0, TradeId::B);
    // ... and its exit with replayed candle time (2022).
    let a = h.fill(x.id, x.price, x.volume, 1_650_000_000);
    let skew = a.iter().find_map(|a| match a {
        Action::Notice(Notice::ClockSkew {
            entry_time,
            reported_exit_time,
            ..
        }) => Some((*entry_time, *reported_exit_time)),
        _ => None,
    });
    assert_eq!(skew, Some((1_790_000_000, 1_650_000_000)));
    let bk = a
        .iter()
        .find_map(|a| match a {
            Action::BookCycle(b) => Some(b),
            _ => None,
        })
        .expect("booked");
    assert_eq!(
        (bk.entry_time, bk.exit_time),
        (1_790_000_000, 1_790_000_000)
    );
}

#[test]
fn slots_quote_their_own_grid_level_and_refresh_around_it() {
    let mut c = cfg();
    c.slots = 3;
    c.grid_spacing_pct = dec!(0.5);
    let mut h = H::new(c);
    h.tick(dec!(0.1), 1);
    // slot k buys at 0.1 x (1 - (0.2 + 0.5k)/100)
    let buys: Vec<_> = (0..3).map(|i| h.entry(i, TradeId::B).price).collect();
    assert_eq!(buys, vec![dec!(0.0998), dec!(0.0993), dec!(0.0988)]);
    let sells: Vec<_> = (0..3).map(|i| h.entry(i, TradeId::A).price).collect();
    assert_eq!(sells, vec![dec!(0.1002), dec!(0.1007), dec!(0.1012)]);
    // After a move up to 0.10081 every buy is more than REFRESH_PCT (1.0)
    // from the market, but only slot 0's has moved 0.8 % beyond its own
    // level: slot 1 is 1.497 % away (tolerance 1.5), slot 2 1.994 % (2.0).
    let a = h.tick(dec!(0.10081), 2);
    let cancelled: Vec<_> = a
        .iter()
        .filter_map(|a| match a {
            Action::Cancel { order_id, .. } => Some(order_id.slot),
            _ => None,
        })
        .collect();
    assert_eq!(cancelled, vec![0], "{a:?}");
}

#[test]
fn an_entry_below_the_pair_minimum_is_reported_once_and_waits() {
    let mut c = one_slot();
    c.order_size = crate::engine::OrderSize::Usd(dec!(2));
    let mut h = H::new(c);
    let first = h.tick(dec!(0.1), 1);
    let notices = |a: &[Action]| {
        a.iter()
            .filter(|a| matches!(a, Action::Notice(Notice::EntryBelowMinimum { .. })))
            .count()
    };
    assert_eq!(notices(&first), 2, "{first:?}");
    assert_eq!(notices(&h.tick(dec!(0.1), 2)), 0, "reported once per wait");
    assert_eq!(
        h.slot(0).trade_a.work,
        TradeWork::Idle(IdleReason::BelowMinimum)
    );
}

/// Proves: a reprice cancels the live exit, keeps it tracked, and only when
/// the cancel is confirmed books the move for the remaining volume (after a
/// racing partial fill) and re-places that remainder at the new price.
#[test]
fn a_reprice_is_booked_for_the_remainder_once_the_old_exit_is_gone() {
    let mut h = H::new(one_slot());
    let x = h.live_b_exit();
    let a = h.ev(Event::RepriceExit {
        order_id: x.id,
        new_price: dec!(0.1003),
        kind: RepriceKind::Subsidy,
        subsidized: true,
        full: true,
        subsidy_cap: None,
    });
    assert!(
        matches!(&a[..], [Action::Cancel { order_id, txid: Some(t) }] if *order_id == x.id && t == "X1"),
        "{a:?}"
    );
    // A second request while one is pending is refused, state unchanged.
    let again = h.ev(Event::RepriceExit {
        order_id: x.id,
        new_price: dec!(0.1002),
        kind: RepriceKind::Subsidy,
        subsidized: true,
        full: true,
        subsidy_cap: None,
    });
    assert!(matches!(
        &again[..],
        [Action::Notice(Notice::InvalidEvent { .. })]
    ));
    // 10 DOGE fill racing the cancel, then the cancel is confirmed.
    h.fill(x.id, x.price, dec!(10), 6);
    let a = h.ev(Event::OrderGone {
        order_id: x.id,
        reason: GoneReason::CancelledByEngine,
    });
    let Action::Repriced(r) = &a[0] else {
        panic!("{a:?}")
    };
    let rest = x.volume - dec!(10);
    assert_eq!(
        (r.old_price, r.new_price, r.volume),
        (x.price, dec!(0.1003), rest)
    );
    assert_eq!(r.subsidy_consumed, (x.price - dec!(0.1003)) * rest);
    let p = places(&a);
    assert_eq!((p[0].price, p[0].volume), (dec!(0.1003), rest));
    let nx = h.exit(0, TradeId::B);
    assert_eq!((nx.heal.times_repriced, nx.reprice.is_none()), (1, true));
    assert!(nx.heal.last_subsidy_reprice_at.is_some());
}

/// Proves: an exit that fills completely while its reprice cancel is in
/// flight books its cycle and journals no reprice.
#[test]
fn an_exit_filled_before_its_reprice_took_effect_is_not_repriced() {
    let mut h = H::new(one_slot());
    let x = h.live_b_exit();
    h.ev(Event::RepriceExit {
        order_id: x.id,
        new_price: dec!(0.1003),
        kind: RepriceKind::Tighten,
        subsidized: false,
        full: true,
        subsidy_cap: None,
    });
    let a = h.fill(x.id, x.price, x.volume, 6);
    assert!(a.iter().any(|a| matches!(a, Action::BookCycle(_))));
    assert!(!a.iter().any(|a| matches!(a, Action::Repriced(_))));
}
