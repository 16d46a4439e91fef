//! Property tests: random but exchange-consistent event sequences on several
//! slots (price ticks, timer ticks, acknowledgements, full and partial fills,
//! fills racing cancels, orders leaving the book, refused placements, ledger
//! acknowledgements, stale/unknown ids) must
//! - never break an invariant (no slot is ever halted, every slot checks);
//! - never lose or invent volume: every exit's volume equals the volume its
//!   entry filled, every booked cycle's volume equals both its entry fills
//!   and its exit fills, and filled volume is always held by an entry, an
//!   exit, or a booked cycle;
//! - keep every placed price on the tick grid and every volume on the lot
//!   grid (entries also meet the pair minimums);
//! - book `net = gross - fees` with `fees = entry fee + exit fee` as reported
//!   and exits at least the profit target away from their entry;
//! - be deterministic (same sequence, same actions and state) and survive a
//!   serde round trip.

use std::collections::BTreeMap;

use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use crate::engine::events::{Action, Event, GoneReason, Notice, PlaceFailReason};
use crate::engine::invariants::check_slot;
use crate::engine::reducer::transition;
use crate::engine::test_support::{cfg, on_lot, on_tick};
use crate::engine::types::{EngineState, ExitPlacement, OrderId, OrderRole, TradeId, TradeWork};
use crate::engine::{EngineConfig, OrderRequest};
use crate::pair::Side;

/// One step of the simulated exchange / runtime.
#[derive(Debug, Clone)]
enum Op {
    /// Market moves by `bp` basis points; the clock by `dt`.
    Tick { bp: i32, dt: i64 },
    /// Clock only.
    Timer { dt: i64 },
    /// Acknowledge the picked order.
    Placed { pick: usize },
    /// Execute `pct` % of the picked order's remaining volume (100 = all),
    /// `better` ticks better than its limit, with a fee of `fee_bp` basis
    /// points (a heavy fee turns a cycle into a loss).
    Fill {
        pick: usize,
        pct: u32,
        better: u32,
        fee_bp: u32,
    },
    /// The picked order leaves the book.
    Gone { pick: usize, by_engine: bool },
    /// The exchange refuses the picked order.
    Fail { pick: usize, funds: bool },
    /// The ledger acknowledges the picked exit's position.
    Ledger { pick: usize },
    /// An event naming an order id the engine never issued.
    Junk { pick: usize },
    /// Self-healing sets the entry hold (0 none, 1 sells, 2 buys).
    Hold { side: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (-300i32..300, 1i64..120).prop_map(|(bp, dt)| Op::Tick { bp, dt }),
        1 => (1i64..1000).prop_map(|dt| Op::Timer { dt }),
        2 => any::<usize>().prop_map(|pick| Op::Placed { pick }),
        5 => (any::<usize>(), prop_oneof![Just(100u32), 1u32..100], 0u32..3, prop_oneof![4 => Just(25u32), 1 => Just(300u32)])
            .prop_map(|(pick, pct, better, fee_bp)| Op::Fill { pick, pct, better, fee_bp }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(pick, by_engine)| Op::Gone { pick, by_engine }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(pick, funds)| Op::Fail { pick, funds }),
        1 => any::<usize>().prop_map(|pick| Op::Ledger { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Junk { pick }),
        1 => (0u8..3).prop_map(|side| Op::Hold { side }),
    ]
}

/// What the test believes about every (slot, trade, cycle).
#[derive(Debug, Default, Clone)]
struct Book {
    entry_filled: Decimal,
    exit_filled: Decimal,
    booked: bool,
}

type Key = (u32, TradeId, u64);

struct Sim {
    cfg: EngineConfig,
    state: EngineState,
    price: Decimal,
    now: i64,
    books: BTreeMap<Key, Book>,
    log: Vec<Vec<Action>>,
}

/// A live order the simulated exchange can act on.
#[derive(Debug, Clone)]
struct Live {
    id: OrderId,
    price: Decimal,
    remaining: Decimal,
    acked: bool,
}

impl Sim {
    fn new(cfg: EngineConfig) -> Self {
        Self {
            state: EngineState::new(cfg.slots),
            cfg,
            price: dec!(0.1),
            now: 1_000,
            books: BTreeMap::new(),
            log: Vec::new(),
        }
    }

    fn live(&self) -> Vec<Live> {
        let mut v = Vec::new();
        for slot in self.state.slots.values() {
            for t in TradeId::ALL {
                match &slot.trade(t).work {
                    TradeWork::Entry(e) => v.push(Live {
                        id: e.id,
                        price: e.price,
                        remaining: e.remaining(),
                        acked: e.txid.is_some(),
                    }),
                    TradeWork::Exit(x) if !matches!(x.placement, ExitPlacement::Failed { .. }) => v
                        .push(Live {
                            id: x.id,
                            price: x.price,
                            remaining: x.remaining(),
                            acked: x.txid().is_some(),
                        }),
                    _ => {}
                }
            }
        }
        v
    }

    fn pick(&self, pick: usize) -> Option<Live> {
        let v = self.live();
        (!v.is_empty()).then(|| v[pick % v.len()].clone())
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let ev = match op {
            Op::Tick { bp, dt } => {
                let p = self.price * (Decimal::ONE + Decimal::from(*bp) / dec!(10000));
                self.price = p.round_dp(7).max(dec!(0.01));
                self.now += dt;
                Event::PriceTick {
                    price: self.price,
                    now: self.now,
                }
            }
            Op::Timer { dt } => {
                self.now += dt;
                Event::TimerTick { now: self.now }
            }
            Op::Placed { pick } => match self.pick(*pick) {
                Some(l) if !l.acked => Event::Placed {
                    order_id: l.id,
                    txid: format!("TX{}", l.id),
                },
                _ => return Ok(()),
            },
            Op::Fill {
                pick,
                pct,
                better,
                fee_bp,
            } => {
                let Some(l) = self.pick(*pick) else {
                    return Ok(());
                };
                let lot = self.cfg.pair.lot();
                let vol = if *pct == 100 {
                    l.remaining
                } else {
                    let v = self
                        .cfg
                        .pair
                        .floor_volume(l.remaining * Decimal::from(*pct) / dec!(100));
                    v.max(lot).min(l.remaining)
                };
                let tick = self.cfg.pair.tick() * Decimal::from(*better);
                let side = match (l.id.trade, l.id.role) {
                    (t, OrderRole::Entry) => t.entry_side(),
                    (t, OrderRole::Exit) => t.exit_side(),
                };
                let price = match side {
                    Side::Buy => (l.price - tick).max(self.cfg.pair.tick()),
                    Side::Sell => l.price + tick,
                };
                let cost = price * vol;
                self.now += 1;
                let key = (l.id.slot, l.id.trade, l.id.cycle);
                let b = self.books.entry(key).or_default();
                match l.id.role {
                    OrderRole::Entry => b.entry_filled += vol,
                    OrderRole::Exit => b.exit_filled += vol,
                }
                Event::Fill {
                    order_id: l.id,
                    txid: format!("TX{}", l.id),
                    price,
                    volume: vol,
                    cost,
                    fee: (cost * Decimal::from(*fee_bp) / dec!(10000)).round_dp(8),
                    at: self.now,
                }
            }
            Op::Gone { pick, by_engine } => match self.pick(*pick) {
                Some(l) => Event::OrderGone {
                    order_id: l.id,
                    reason: if *by_engine {
                        GoneReason::CancelledByEngine
                    } else {
                        GoneReason::Expired
                    },
                },
                None => return Ok(()),
            },
            Op::Fail { pick, funds } => match self.pick(*pick) {
                Some(l) if !l.acked && l.remaining == self.full_volume(l.id) => {
                    Event::PlaceFailed {
                        order_id: l.id,
                        reason: if *funds {
                            PlaceFailReason::InsufficientFunds
                        } else {
                            PlaceFailReason::Other("EService:Busy".into())
                        },
                    }
                }
                _ => return Ok(()),
            },
            Op::Ledger { pick } => match self.pick(*pick) {
                Some(l) if l.id.role == OrderRole::Exit => Event::PositionOpened {
                    order_id: l.id,
                    position_id: format!("P{}:{:?}:{}", l.id.slot, l.id.trade, l.id.cycle),
                },
                _ => return Ok(()),
            },
            Op::Hold { side } => Event::EntryHold {
                hold: match side {
                    1 => crate::engine::EntryHold::Sells,
                    2 => crate::engine::EntryHold::Buys,
                    _ => crate::engine::EntryHold::None,
                },
            },
            Op::Junk { pick } => {
                let slot = (*pick % 5) as u32; // slots 3 and 4 do not exist
                Event::OrderGone {
                    order_id: OrderId {
                        slot,
                        trade: TradeId::A,
                        cycle: 999,
                        role: OrderRole::Entry,
                        seq: 1_000_000,
                    },
                    reason: GoneReason::Expired,
                }
            }
        };
        let before = matches!(op, Op::Junk { .. }).then(|| self.state.slots.clone());
        let actions = transition(&mut self.state, &ev, &self.cfg);
        if let Some(before) = before {
            prop_assert_eq!(&before, &self.state.slots, "junk changed state");
            let only_notice = matches!(
                actions.as_slice(),
                [Action::Notice(Notice::UnknownOrder { .. })]
            );
            prop_assert!(only_notice, "junk must only be reported");
        }
        self.check_actions(&actions)?;
        self.check_state()?;
        self.log.push(actions);
        Ok(())
    }

    /// Volume the picked order was placed with (exits: remaining at placement).
    fn full_volume(&self, id: OrderId) -> Decimal {
        let t = self.state.slots[&id.slot].trade(id.trade);
        match &t.work {
            TradeWork::Entry(e) => e.volume,
            TradeWork::Exit(x) => x.remaining(),
            TradeWork::Idle(_) => Decimal::ZERO,
        }
    }

    fn check_order(&self, r: &OrderRequest) -> Result<(), TestCaseError> {
        prop_assert!(
            r.price > Decimal::ZERO && on_tick(&self.cfg, r.price),
            "price {:?}",
            r
        );
        prop_assert!(
            r.volume > Decimal::ZERO && on_lot(&self.cfg, r.volume),
            "volume {:?}",
            r
        );
        if r.role == OrderRole::Entry {
            prop_assert!(
                self.cfg.pair.check_size(r.price, r.volume).is_ok(),
                "size {:?}",
                r
            );
            if let crate::engine::OrderSize::Usd(usd) = self.cfg.order_size {
                prop_assert!(r.price * r.volume <= usd, "upsized {:?}", r);
            }
        }
        Ok(())
    }

    fn check_actions(&mut self, actions: &[Action]) -> Result<(), TestCaseError> {
        for a in actions {
            match a {
                Action::Place(r) => self.check_order(r)?,
                Action::OpenPosition(pi) => {
                    let key = (pi.slot, pi.trade, pi.cycle);
                    let b = self.books.get(&key).cloned().unwrap_or_default();
                    prop_assert_eq!(
                        pi.entry_volume,
                        b.entry_filled,
                        "exit volume != entry fills"
                    );
                    let p = pi.target_profit_pct / dec!(100);
                    match pi.exit_side {
                        Side::Sell => {
                            prop_assert!(pi.exit_price >= pi.entry_price * (Decimal::ONE + p))
                        }
                        Side::Buy => {
                            prop_assert!(pi.exit_price <= pi.entry_price * (Decimal::ONE - p))
                        }
                    }
                }
                Action::Repriced(r) => {
                    prop_assert!(r.volume > Decimal::ZERO, "reprice of nothing {:?}", r);
                    prop_assert!(self.cfg.pair.round_price(r.new_price) == r.new_price);
                }
                Action::BookCycle(bk) => {
                    let key = (bk.slot, bk.trade, bk.cycle);
                    let b = self.books.entry(key).or_default();
                    prop_assert!(!b.booked, "booked twice");
                    prop_assert_eq!(bk.volume, b.entry_filled);
                    prop_assert_eq!(bk.volume, b.exit_filled);
                    b.booked = true;
                    prop_assert_eq!(bk.fees, bk.entry_fee + bk.exit_fee);
                    prop_assert_eq!(bk.net, bk.gross - bk.fees);
                    let diff = match bk.trade {
                        TradeId::A => bk.entry_price - bk.exit_price,
                        TradeId::B => bk.exit_price - bk.entry_price,
                    };
                    prop_assert_eq!(bk.gross, diff * bk.volume);
                }
                Action::Notice(Notice::SlotHalted { slot, violation }) => {
                    prop_assert!(false, "slot {} halted: {}", slot, violation);
                }
                Action::Cancel { .. } | Action::Notice(_) => {}
            }
        }
        Ok(())
    }

    fn check_state(&self) -> Result<(), TestCaseError> {
        for slot in self.state.slots.values() {
            prop_assert!(!slot.is_halted());
            prop_assert_eq!(check_slot(slot, &self.cfg), Ok(()));
            for t in TradeId::ALL {
                let tr = slot.trade(t);
                let b = self
                    .books
                    .get(&(slot.slot_id, t, tr.cycle))
                    .cloned()
                    .unwrap_or_default();
                match &tr.work {
                    TradeWork::Entry(e) => prop_assert_eq!(e.fills.volume, b.entry_filled),
                    TradeWork::Exit(x) => {
                        prop_assert_eq!(x.volume, b.entry_filled);
                        prop_assert_eq!(x.fills.volume, b.exit_filled);
                    }
                    TradeWork::Idle(_) => prop_assert_eq!(b.entry_filled, Decimal::ZERO),
                }
            }
        }
        // Every filled volume is still held or was booked.
        for ((slot, t, cycle), b) in &self.books {
            if b.booked || b.entry_filled.is_zero() {
                continue;
            }
            let tr = self.state.slots[slot].trade(*t);
            prop_assert_eq!(
                tr.cycle,
                *cycle,
                "filled volume of {:?} lost",
                (slot, t, cycle)
            );
        }
        Ok(())
    }
}

/// Config of a run; `small` orders (5.2 USD = 52 DOGE at 0.1) fall below
/// XDG's 50 DOGE minimum as soon as the price rises 4 %, exercising the
/// waiting-for-minimum shape.
fn sim_cfg(small: bool) -> EngineConfig {
    let mut c = cfg();
    c.slots = 3;
    if small {
        c.order_size = crate::engine::OrderSize::Usd(dec!(5.2));
    }
    c
}

fn run(ops: &[Op], small: bool) -> Result<Sim, TestCaseError> {
    let c = sim_cfg(small);
    let mut sim = Sim::new(c);
    for op in ops {
        sim.apply(op)?;
    }
    Ok(sim)
}

// 256 cases by default; `PROPTEST_CASES=20000` for a soak run.
proptest! {

    #[test]
    fn random_sequences_keep_invariants_and_volume(
        ops in prop::collection::vec(op(), 1..300),
        small in any::<bool>(),
    ) {
        let first = run(&ops, small)?;
        // Determinism: the same inputs give the same actions and state.
        let second = run(&ops, small)?;
        prop_assert_eq!(&first.log, &second.log);
        prop_assert_eq!(&first.state, &second.state);
        // Persistence: the state survives serde unchanged.
        let json = serde_json::to_string(&first.state).unwrap();
        let back: EngineState = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &first.state);
    }

    #[test]
    fn a_restored_state_continues_exactly_like_the_original(
        ops in prop::collection::vec(op(), 1..200),
        split in 0usize..200,
        small in any::<bool>(),
    ) {
        // Persist mid-run, restore, continue: same outcome as never stopping.
        let split = split.min(ops.len());
        let mut a = run(&ops[..split], small)?;
        let json = serde_json::to_string(&a.state).unwrap();
        let mut b = Sim::new(a.cfg.clone());
        b.state = serde_json::from_str(&json).unwrap();
        b.price = a.price;
        b.now = a.now;
        b.books = a.books.clone();
        let base = a.log.len();
        for op in &ops[split..] {
            a.apply(op)?;
            b.apply(op)?;
        }
        prop_assert_eq!(&a.state, &b.state);
        prop_assert_eq!(&a.log[base..], &b.log[..]);
    }
}

/// The generator must actually reach the interesting situations, or the
/// properties above would hold vacuously.
#[test]
fn the_generator_reaches_every_interesting_situation() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    use crate::engine::types::{IdleReason, Phase};

    let mut runner = TestRunner::deterministic();
    let strategy = prop::collection::vec(op(), 100..300);
    let mut seen = BTreeMap::<&str, u32>::new();
    for i in 0..100 {
        let ops = strategy.new_tree(&mut runner).unwrap().current();
        let mut sim = Sim::new(sim_cfg(i % 2 == 0));
        for op in &ops {
            sim.apply(op).unwrap();
            for slot in sim.state.slots.values() {
                if slot.phase() == Phase::S2 {
                    *seen.entry("s2").or_default() += 1;
                }
                for t in TradeId::ALL {
                    match &slot.trade(t).work {
                        TradeWork::Idle(IdleReason::PlaceFailed { .. }) => {
                            *seen.entry("one-sided").or_default() += 1
                        }
                        TradeWork::Idle(IdleReason::Cooldown { .. }) => {
                            *seen.entry("cooldown").or_default() += 1
                        }
                        TradeWork::Idle(IdleReason::BelowMinimum) => {
                            *seen.entry("below minimum").or_default() += 1
                        }
                        TradeWork::Idle(IdleReason::TrendHold) => {
                            *seen.entry("trend hold").or_default() += 1
                        }
                        TradeWork::Entry(e) if e.fills.any() => {
                            *seen.entry("partial entry").or_default() += 1
                        }
                        TradeWork::Exit(x) if x.fills.any() => {
                            *seen.entry("partial exit").or_default() += 1
                        }
                        TradeWork::Exit(x)
                            if matches!(x.placement, ExitPlacement::Failed { .. }) =>
                        {
                            *seen.entry("failed exit").or_default() += 1
                        }
                        _ => {}
                    }
                    if slot.trade(t).consecutive_losses >= 3 {
                        *seen.entry("back-off").or_default() += 1;
                    }
                    if slot.trade(t).refresh.cooldown_until.is_some() {
                        *seen.entry("anti-chase").or_default() += 1;
                    }
                }
            }
            for a in sim.log.last().into_iter().flatten() {
                match a {
                    Action::BookCycle(b) if b.net < Decimal::ZERO => {
                        *seen.entry("loss").or_default() += 1
                    }
                    Action::BookCycle(b) if b.position_id.is_some() => {
                        *seen.entry("booked with id").or_default() += 1
                    }
                    Action::BookCycle(_) => *seen.entry("booked").or_default() += 1,
                    Action::Cancel { .. } => *seen.entry("refresh").or_default() += 1,
                    Action::OpenPosition(p) if p.cycle > 1 => {
                        *seen.entry("second cycle").or_default() += 1
                    }
                    _ => {}
                }
            }
        }
    }
    for k in [
        "s2",
        "one-sided",
        "cooldown",
        "below minimum",
        "trend hold",
        "back-off",
        "partial entry",
        "partial exit",
        "failed exit",
        "anti-chase",
        "loss",
        "booked",
        "booked with id",
        "refresh",
        "second cycle",
    ] {
        assert!(
            seen.get(k).copied().unwrap_or(0) > 0,
            "never reached {k}: {seen:?}"
        );
    }
}
