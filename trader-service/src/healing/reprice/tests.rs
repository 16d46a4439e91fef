//! The SPEC §5 worked examples, exactly, and one test per skip reason.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use super::*;
use crate::engine::test_support::{cfg, put_exit};
use crate::engine::{EngineState, ExitOrder, ExitPlacement, FillTotals, TradeWork};
use crate::healing::churner::{
    ChurnOrder, ChurnPosition, ChurnStage, Funding, ParentRef, SlotChurn,
};

const H: i64 = 3_600;
const NOW: i64 = 1_000_000;

fn rcfg() -> RepriceConfig {
    RepriceConfig {
        tighten: false,
        subsidized: true,
        auto_band: AgeBand::Stuck,
        interval_sec: 3_600,
        allow_loss: false,
        round_trip_fee_pct: dec!(0.5),
        market_stale_sec: 300,
        write_off_auto: false,
        release_locked_pairs: false,
    }
}

/// The SPEC example: trade B (sell exit) entered at 0.1000, exit 0.1020,
/// volume 20, market 0.1000, 80 h old (2 % away: effective 112 h, stuck).
fn spec_state(slot: u32) -> EngineState {
    aged(slot, 80 * H)
}

/// The SPEC example's position, `age` seconds old.
fn aged(slot: u32, age: i64) -> EngineState {
    let mut s = EngineState::new(slot + 1);
    s.market = Some(dec!(0.1000));
    s.now = NOW;
    let (entry, exit) = (dec!(0.1000), dec!(0.1020));
    put_exit(&mut s, slot, TradeId::B, entry, exit, dec!(20), NOW - age);
    s
}

/// The SPEC example's state with its exit changed by `f`.
fn edited(f: impl FnOnce(&mut ExitOrder)) -> EngineState {
    let mut s = spec_state(0);
    if let TradeWork::Exit(x) = &mut s.slots.get_mut(&0).unwrap().trade_b.work {
        f(x);
    }
    s
}

fn run(s: &EngineState, c: &RepriceConfig, balance: Decimal) -> RepricePlan {
    run_with(s, &ChurnBook::default(), c, balance)
}

fn run_with(
    s: &EngineState,
    churn: &ChurnBook,
    c: &RepriceConfig,
    balance: Decimal,
) -> RepricePlan {
    let ecfg = cfg();
    let subsidy: BTreeMap<_, _> = s.slots.keys().map(|k| (*k, balance)).collect();
    plan(RepriceInputs {
        engine: s,
        churn,
        engine_cfg: &ecfg,
        cfg: c,
        market_age_sec: Some(10),
        now: NOW,
        target_pct: dec!(1.0),
        subsidy: &subsidy,
        subsidy_halted: &BTreeSet::new(),
        max_decisions: 10,
    })
}

fn reasons(p: &RepricePlan) -> Vec<SkipReason> {
    p.skips.iter().map(|s| s.reason).collect()
}

#[test]
fn spec_example_fillable_and_need() {
    let c = cfg();
    assert_eq!(
        fillable_price(&c, Side::Sell, dec!(0.1), dec!(0.1), Some(dec!(0.5))),
        dec!(0.1005)
    );
    assert_eq!(
        subsidy_needed(Side::Sell, dec!(0.1020), dec!(0.1005), dec!(20)),
        dec!(0.0300)
    );
}

#[test]
fn spec_example_balance_005_moves_fully_to_fillable() {
    let p = run(&spec_state(0), &rcfg(), dec!(0.05));
    let d = &p.decisions[0];
    assert_eq!(
        (d.new_price, d.subsidy_consumed),
        (dec!(0.1005), dec!(0.0300))
    );
    assert!(d.full);
    assert_eq!(d.kind, RepriceKind::Subsidy);
    assert_eq!(d.band, AgeBand::Stuck);
    // balance 0.05 - 0.03 = 0.02 left, nothing more needed
    assert_eq!(p.pending_need[&0], Decimal::ZERO);
}

#[test]
fn spec_example_balance_001_moves_partially() {
    let p = run(&spec_state(0), &rcfg(), dec!(0.01));
    let d = &p.decisions[0];
    assert_eq!(
        (d.new_price, d.subsidy_consumed),
        (dec!(0.1015), dec!(0.0100))
    );
    assert!(!d.full);
    assert_eq!(p.pending_need[&0], dec!(0.0200));
}

#[test]
fn partial_moves_round_so_the_balance_is_never_exceeded() {
    // 0.0033 / 20 = 0.000165 -> 0.102 - 0.000165 = 0.101835 (on the tick)
    let d = run(&spec_state(0), &rcfg(), dec!(0.0033)).decisions[0].clone();
    assert!(d.subsidy_consumed <= dec!(0.0033));
    // an odd balance: 0.00000333 / 20 is below a tick: nothing moves
    let p = run(&spec_state(0), &rcfg(), dec!(0.000001));
    assert_eq!(reasons(&p), vec![SkipReason::InsufficientBalance]);
}

#[test]
fn buy_exits_mirror_sell_exits() {
    // Trade A: sold at 0.1000, buy exit at 0.0980, market 0.1000.
    let mut s = EngineState::new(1);
    s.market = Some(dec!(0.1));
    s.now = NOW;
    put_exit(
        &mut s,
        0,
        TradeId::A,
        dec!(0.1000),
        dec!(0.0980),
        dec!(20),
        NOW - 80 * H,
    );
    let c = cfg();
    // fillable = min(0.1 x 0.998, 0.1 x 0.995) = 0.0995
    assert_eq!(
        fillable_price(&c, Side::Buy, dec!(0.1), dec!(0.1), Some(dec!(0.5))),
        dec!(0.0995)
    );
    let d = run(&s, &rcfg(), dec!(1)).decisions[0].clone();
    assert_eq!(
        (d.new_price, d.subsidy_consumed),
        (dec!(0.0995), dec!(0.0300))
    );
}

#[test]
fn loss_funded_drops_the_fee_floor_and_never_loses_more_than_it_consumes() {
    let mut s = spec_state(0);
    s.market = Some(dec!(0.0900));
    let mut c = rcfg();
    let without = run(&s, &c, dec!(10)).decisions[0].clone();
    // fee floor: never below breakeven 0.1005
    assert_eq!(without.new_price, dec!(0.1005));
    assert_eq!(without.kind, RepriceKind::Subsidy);
    c.allow_loss = true;
    let d = run(&s, &c, dec!(10)).decisions[0].clone();
    // market x 1.002 = 0.09018
    assert_eq!(d.new_price, dec!(0.0901800));
    assert_eq!(d.kind, RepriceKind::LossFunded);
    let fees = (dec!(0.1) + d.new_price) * dec!(20) * dec!(0.0025);
    let realized_loss = (dec!(0.1) - d.new_price) * dec!(20) + fees;
    assert!(
        realized_loss <= d.subsidy_consumed,
        "{realized_loss} > {}",
        d.subsidy_consumed
    );
}

#[test]
fn one_slot_balance_is_spent_once_across_its_positions() {
    let mut s = spec_state(0);
    put_exit(
        &mut s,
        0,
        TradeId::A,
        dec!(0.1000),
        dec!(0.0980),
        dec!(20),
        NOW - 80 * H,
    );
    // 0.04 covers the first need (0.03) and 0.01 of the second
    let p = run(&s, &rcfg(), dec!(0.04));
    let spent: Decimal = p.decisions.iter().map(|d| d.subsidy_consumed).sum();
    assert_eq!(spent, dec!(0.04));
    assert_eq!(p.decisions.len(), 2);
}

#[test]
fn each_skip_reason() {
    let c = rcfg();
    // fresh: the churner's
    assert_eq!(
        reasons(&run(&aged(0, H), &c, dec!(1))),
        vec![SkipReason::BandNotEligible]
    );
    // stale but subsidized needs stuck: not eligible (tighten off)
    assert_eq!(
        reasons(&run(&aged(0, 50 * H), &c, dec!(1))),
        vec![SkipReason::BandNotEligible]
    );
    // cooldown, operator hold, exit not live
    type Case = (fn(&mut ExitOrder), SkipReason);
    let cases: [Case; 3] = [
        (
            |x| x.heal.last_subsidy_reprice_at = Some(NOW - 600),
            SkipReason::Cooldown,
        ),
        (
            |x| x.heal.hold_until = Some(NOW + 1),
            SkipReason::HeldByOperator,
        ),
        (
            |x| x.placement = ExitPlacement::Pending,
            SkipReason::ExitMissing,
        ),
    ];
    for (f, reason) in cases {
        assert_eq!(reasons(&run(&edited(f), &c, dec!(1))), vec![reason]);
    }
    // no balance
    assert_eq!(
        reasons(&run(&spec_state(0), &c, dec!(0))),
        vec![SkipReason::InsufficientBalance]
    );
    // already fillable
    let mut s = spec_state(0);
    s.market = Some(dec!(0.1020));
    assert_eq!(
        reasons(&run(&s, &c, dec!(1))),
        vec![SkipReason::NoFillableDelta]
    );
    // stale market
    let s = spec_state(0);
    let ecfg = cfg();
    let subsidy = BTreeMap::from([(0, dec!(1))]);
    let halted = BTreeSet::from([0]);
    let churn = ChurnBook::default();
    let base = RepriceInputs {
        engine: &s,
        churn: &churn,
        engine_cfg: &ecfg,
        cfg: &c,
        market_age_sec: Some(301),
        now: NOW,
        target_pct: dec!(1),
        subsidy: &subsidy,
        subsidy_halted: &BTreeSet::new(),
        max_decisions: 10,
    };
    assert_eq!(reasons(&plan(base)), vec![SkipReason::MarketStale]);
    let p = plan(RepriceInputs {
        market_age_sec: Some(1),
        subsidy_halted: &halted,
        ..base
    });
    assert_eq!(reasons(&p), vec![SkipReason::SubsidyHalted]);
    let p = plan(RepriceInputs {
        market_age_sec: Some(1),
        max_decisions: 0,
        ..base
    });
    assert_eq!(reasons(&p), vec![SkipReason::Budget]);
}

#[test]
fn tighten_moves_once_toward_the_target_in_force_for_free() {
    let mut c = rcfg();
    c.tighten = true;
    // 50 h old, 2 % away: effective 70 h -> stale
    let mut s = EngineState::new(1);
    s.market = Some(dec!(0.1));
    s.now = NOW;
    put_exit(
        &mut s,
        0,
        TradeId::B,
        dec!(0.1000),
        dec!(0.1020),
        dec!(20),
        NOW - 50 * H,
    );
    let p = run(&s, &c, dec!(0));
    let d = &p.decisions[0];
    // target 2 % placed, 1 % in force: entry x 1.01 = 0.101 (> market x 1.002)
    assert_eq!(
        (d.kind, d.new_price, d.subsidy_consumed),
        (RepriceKind::Tighten, dec!(0.101), Decimal::ZERO)
    );
    if let TradeWork::Exit(x) = &mut s.slots.get_mut(&0).unwrap().trade_b.work {
        x.heal.tightened = true;
    }
    assert!(
        run(&s, &c, dec!(0)).decisions.is_empty(),
        "once per position"
    );
}

/// The SPEC example's position as a churner round trip of slot 0 handed
/// over to its slot (buy 20 at 0.1000, exit selling at 0.1020, filled
/// 80 h ago), with no position of the engine: market 0.1000.
fn handed_over_example() -> (EngineState, ChurnBook) {
    let mut s = EngineState::new(1);
    s.market = Some(dec!(0.1000));
    s.now = NOW;
    let order = ChurnOrder {
        id: "ch:0:3:ex:7".into(),
        slot: 0,
        side: Side::Sell,
        price: dec!(0.1020),
        volume: dec!(20),
        txid: Some("X-CH".into()),
        sending: false,
        created_at: NOW - 80 * H,
        retry_at: None,
        fills: FillTotals::default(),
        current: FillTotals::default(),
    };
    let position = ChurnPosition {
        open_key: "churn:E-CH".into(),
        cycle: 3,
        trade: TradeId::B,
        entry_price: dec!(0.1000),
        entry_cost: dec!(2),
        entry_fee: Decimal::ZERO,
        volume: dec!(20),
        entry_time: NOW - 80 * H,
        exit_price: dec!(0.1020),
        target_profit_pct: dec!(2),
        position_id: None,
    };
    let mut churn = ChurnBook::default();
    churn.slots.insert(
        0,
        SlotChurn {
            stage: ChurnStage::HandedOver {
                order,
                position,
                parent: ParentRef {
                    open_key: "parent".into(),
                    trade: TradeId::B,
                    cycle: 1,
                },
                funding: Funding::Idle,
                at: NOW - 79 * H,
                heal: Default::default(),
                reprice: None,
                close: None,
            },
            ..SlotChurn::default()
        },
    );
    (s, churn)
}

/// Proves: a handed-over churner round trip in band stuck is repriced by
/// the same rule as a slot's exit, paid by its slot's subsidy: with 0.05
/// it moves fully to the fillable price 0.1005 for 0.03.
#[test]
fn a_handed_over_round_trip_in_band_stuck_gets_a_subsidized_reprice() {
    let (s, churn) = handed_over_example();
    let p = run_with(&s, &churn, &rcfg(), dec!(0.05));
    assert_eq!(p.checked, 1);
    assert_eq!(p.decisions.len(), 1, "{p:?}");
    let d = &p.decisions[0];
    assert_eq!(d.exit, ExitRef::Churner("ch:0:3:ex:7".into()));
    assert_eq!((d.slot, d.trade, d.band), (0, TradeId::B, AgeBand::Stuck));
    assert_eq!(
        (d.kind, d.old_price, d.new_price, d.subsidy_consumed, d.full),
        (
            RepriceKind::Subsidy,
            dec!(0.1020),
            dec!(0.1005),
            dec!(0.0300),
            true
        )
    );
    // The same position held by the engine gets the same decision.
    let engine = run(&spec_state(0), &rcfg(), dec!(0.05));
    let e = &engine.decisions[0];
    assert_eq!(
        (e.new_price, e.subsidy_consumed, e.kind),
        (d.new_price, d.subsidy_consumed, d.kind)
    );
}

/// Proves: without subsidy in its slot a handed-over round trip is left
/// alone with the reason shown, its need still counted as pending.
#[test]
fn a_handed_over_round_trip_without_subsidy_is_skipped_with_a_reason() {
    let (s, churn) = handed_over_example();
    let p = run_with(&s, &churn, &rcfg(), Decimal::ZERO);
    assert!(p.decisions.is_empty());
    assert_eq!(
        p.skips,
        vec![Skip {
            exit: ExitRef::Churner("ch:0:3:ex:7".into()),
            reason: SkipReason::InsufficientBalance,
        }]
    );
    assert_eq!(p.pending_need.get(&0), Some(&dec!(0.0300)));
}

/// Proves: a handed-over exit being repriced, or not on the book, is not
/// decided again.
#[test]
fn a_handed_over_exit_not_live_is_skipped() {
    let (s, mut churn) = handed_over_example();
    if let Some(ChurnStage::HandedOver { order, .. }) =
        churn.slots.get_mut(&0).map(|s| &mut s.stage)
    {
        order.txid = None;
    }
    assert_eq!(
        reasons(&run_with(&s, &churn, &rcfg(), dec!(1))),
        vec![SkipReason::ExitMissing]
    );
}
