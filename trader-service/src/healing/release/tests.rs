//! Which pairs are locked, and which are not yet.

use rust_decimal_macros::dec;

use super::*;
use crate::engine::test_support::{cfg, put_exit};

const H: i64 = 3_600;
const NOW: i64 = 10_000_000;

/// Slot 0 bought at 0.1100 (long, sell exit 0.1111) and later sold at
/// 0.0900 (short, buy exit 0.0891); the market is 0.1000, between them.
fn locked(long_age: i64, short_age: i64) -> EngineState {
    let mut s = EngineState::new(1);
    s.market = Some(dec!(0.1000));
    s.now = NOW;
    let v = dec!(100);
    put_exit(
        &mut s,
        0,
        TradeId::B,
        dec!(0.1100),
        dec!(0.1111),
        v,
        NOW - long_age,
    );
    put_exit(
        &mut s,
        0,
        TradeId::A,
        dec!(0.0900),
        dec!(0.0891),
        v,
        NOW - short_age,
    );
    s
}

fn pairs(s: &EngineState) -> Vec<LockedPair> {
    locked_pairs(s, &cfg().bands, NOW)
}

#[test]
fn both_exits_stuck_is_a_locked_pair_with_its_locked_loss() {
    let s = locked(80 * H, 60 * H);
    let p = pairs(&s);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].slot, 0);
    assert_eq!(p[0].long.id.trade, TradeId::B);
    assert_eq!(p[0].short.id.trade, TradeId::A);
    // (0.0900 - 0.1000) x 100 + (0.1000 - 0.1100) x 100: the pair's loss is
    // the gap between the long's and the short's entries, wherever the
    // market sits between the exits.
    assert_eq!(p[0].locked_gross, dec!(-2.0));
}

#[test]
fn one_leg_not_yet_stuck_keeps_the_pair() {
    // About 11 % away ages 3.2 times as fast: 20 h is about 64 h effective
    // (stale).
    assert!(pairs(&locked(80 * H, 20 * H)).is_empty());
    assert!(pairs(&locked(20 * H, 80 * H)).is_empty());
}

#[test]
fn a_single_stuck_exit_is_not_a_pair() {
    let mut s = locked(80 * H, 80 * H);
    s.slots.get_mut(&0).unwrap().trade_a.work =
        crate::engine::TradeWork::Idle(crate::engine::IdleReason::Bootstrap);
    assert!(pairs(&s).is_empty());
}

#[test]
fn a_leg_in_flight_or_on_hold_keeps_the_pair() {
    let edit = |f: &dyn Fn(&mut ExitOrder)| {
        let mut s = locked(80 * H, 80 * H);
        if let crate::engine::TradeWork::Exit(x) = &mut s.slots.get_mut(&0).unwrap().trade_a.work {
            f(x);
        }
        s
    };
    let held = edit(&|x| x.heal.hold_until = Some(NOW + H));
    assert!(pairs(&held).is_empty(), "operator hold");
    let hold_over = edit(&|x| x.heal.hold_until = Some(NOW - 1));
    assert_eq!(pairs(&hold_over).len(), 1, "an expired hold");
    let unplaced = edit(&|x| x.placement = crate::engine::ExitPlacement::Pending);
    assert!(pairs(&unplaced).is_empty(), "not live on the book");
}

#[test]
fn no_market_no_pairs() {
    let mut s = locked(80 * H, 80 * H);
    s.market = None;
    assert!(pairs(&s).is_empty());
}
