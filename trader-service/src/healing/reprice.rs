//! Repricing of stuck exits (SPEC §5): which open positions move, where to,
//! and who pays. A pure function of the engine state, the churner's
//! handed-over round trips, the trader's subsidy view, the market and
//! `now`; the runtime carries the decisions out through the engine
//! ([`crate::engine::Event::RepriceExit`]) or, for a handed-over round
//! trip, through the churner ([`crate::healing::churner::request_reprice`]).
//!
//! A round trip handed over to its slot (SPEC §6) is a position of that
//! slot like any other: the same rule below decides its moves and the
//! slot's balance pays. Handed-over round trips are looked at first: while
//! one is open the slot's churner pauses, so healing it restarts the
//! churner that earns subsidy for the slot's other positions.
//!
//! Three kinds of move, checked per position in this order:
//! - **tighten** (band stale or worse, free, once per position): an exit
//!   placed with a profit target above the one in force (+0.1 point) moves
//!   to the target in force, never closer than the market offset;
//! - **subsidized** (band >= `SUBSIDY_AUTO_REPRICE_BAND`, at most once per
//!   `SUBSIDY_REPRICE_INTERVAL_SEC` per position): toward the *fillable*
//!   price, fully when the slot's balance covers the need, else partially by
//!   what the balance affords, on the tick grid and never past fillable;
//! - **loss-funded** (`SUBSIDY_ALLOW_LOSS`): the same with the fee floor
//!   dropped from the fillable price, so subsidy can pay a real loss. The
//!   realized loss never exceeds the subsidy consumed, because every exit is
//!   first placed at or above breakeven and the consumed subsidy is the
//!   whole distance moved.
//!
//! Subsidy spent by one decision is taken off the slot's balance before the
//! next position of the same slot is considered, so a plan never spends a
//! balance twice.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;

use crate::engine::{
    AgeBand, EngineConfig, EngineState, HealFacts, OrderId, RepriceKind, SlotId, TradeId,
    classify_all,
};
use crate::healing::churner::ChurnBook;
use crate::pair::Side;

const HUNDRED: Decimal = Decimal::ONE_HUNDRED;

/// Tighten fires only when the exit's target exceeds the one in force by
/// more than this many percentage points (SPEC §5).
const TIGHTEN_MARGIN_PCT: Decimal = Decimal::from_parts(1, 0, 0, false, 1);

/// What repricing may do (from the rollout stage and the `SUBSIDY_*`
/// settings; SPEC §10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepriceConfig {
    /// Free tighten reprices on (stage B and later).
    pub tighten: bool,
    /// Subsidized reprices on (stage D and later).
    pub subsidized: bool,
    /// Band from which subsidized repricing runs.
    pub auto_band: AgeBand,
    /// Minimum seconds between two subsidized reprices of a position.
    pub interval_sec: i64,
    /// Below-breakeven healing (the fee floor is dropped).
    pub allow_loss: bool,
    /// Round-trip fee, percent (2 x maker): the breakeven distance.
    pub round_trip_fee_pct: Decimal,
    /// A market price older than this is stale: nothing is repriced.
    pub market_stale_sec: i64,
    /// Stage E (`SUBSIDY_WRITE_OFF_AUTO`): close a write-off position at
    /// market when its opportunity cost exceeds twice its subsidy need.
    pub write_off_auto: bool,
    /// `HEAL_RELEASE_LOCKED_PAIRS`: close both exits of a slot whose two
    /// exits are stuck (see [`crate::healing::release`]).
    pub release_locked_pairs: bool,
}

impl RepriceConfig {
    /// Repricing off: the sticky grid (stage A).
    #[must_use]
    pub fn off() -> Self {
        Self {
            tighten: false,
            subsidized: false,
            auto_band: AgeBand::Stuck,
            interval_sec: 3_600,
            allow_loss: false,
            round_trip_fee_pct: Decimal::new(5, 1),
            market_stale_sec: 300,
            write_off_auto: false,
            release_locked_pairs: false,
        }
    }
}

/// Why a position was not repriced this loop (counted and shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Subsidized reprice of this position too recent.
    Cooldown,
    /// The slot's subsidy does not pay for a move of at least one tick.
    InsufficientBalance,
    /// The exit already sits at (or inside) its fillable price.
    NoFillableDelta,
    /// The band does not call for a reprice of any enabled kind.
    BandNotEligible,
    /// Over this loop's reprice budget; next loop.
    Budget,
    /// The exit is not live on the book (pending, refused, being repriced).
    ExitMissing,
    /// The market price is too old to reprice against.
    MarketStale,
    /// An operator hold suspends automatic repricing of this position.
    HeldByOperator,
    /// The ledger refused a debit of this slot: subsidized repricing of the
    /// slot stops until an operator looks.
    SubsidyHalted,
}

impl SkipReason {
    /// Every reason, for counters that list zeros too.
    pub const ALL: [Self; 9] = [
        Self::Cooldown,
        Self::InsufficientBalance,
        Self::NoFillableDelta,
        Self::BandNotEligible,
        Self::Budget,
        Self::ExitMissing,
        Self::MarketStale,
        Self::HeldByOperator,
        Self::SubsidyHalted,
    ];

    /// Snake-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cooldown => "cooldown",
            Self::InsufficientBalance => "insufficient_balance",
            Self::NoFillableDelta => "no_fillable_delta",
            Self::BandNotEligible => "band_not_eligible",
            Self::Budget => "budget",
            Self::ExitMissing => "exit_missing",
            Self::MarketStale => "market_stale",
            Self::HeldByOperator => "held_by_operator",
            Self::SubsidyHalted => "subsidy_halted",
        }
    }
}

/// Which exit a decision is about: a slot's exit in the engine, or the
/// exit of a churner round trip handed over to its slot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitRef {
    /// The engine's exit, by its current local id.
    Slot(OrderId),
    /// A handed-over churner exit, by its client id.
    Churner(String),
}

impl std::fmt::Display for ExitRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Slot(id) => id.fmt(f),
            Self::Churner(id) => f.write_str(id),
        }
    }
}

/// One reprice to carry out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepriceDecision {
    /// The exit to move.
    pub exit: ExitRef,
    /// Slot.
    pub slot: SlotId,
    /// Trade.
    pub trade: TradeId,
    /// Band the position is in.
    pub band: AgeBand,
    /// Current exit price.
    pub old_price: Decimal,
    /// New exit price (tick grid, never past fillable).
    pub new_price: Decimal,
    /// Kind of move.
    pub kind: RepriceKind,
    /// Subsidy this move consumes at the exit's remaining volume (the
    /// engine books the exact figure once the old placement is gone).
    pub subsidy_consumed: Decimal,
    /// Subsidy the full move to fillable needs.
    pub needed: Decimal,
    /// Whether the move reaches the fillable price.
    pub full: bool,
}

/// A position left alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skip {
    /// The exit left alone.
    pub exit: ExitRef,
    /// Why.
    pub reason: SkipReason,
}

/// The outcome of one planning pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RepricePlan {
    /// Positions looked at.
    pub checked: u32,
    /// What to do, in order.
    pub decisions: Vec<RepriceDecision>,
    /// What was left alone.
    pub skips: Vec<Skip>,
    /// Subsidy still needed per slot to bring every eligible position to its
    /// fillable price (after this plan's moves).
    pub pending_need: BTreeMap<SlotId, Decimal>,
}

/// Everything a planning pass reads.
#[derive(Debug, Clone, Copy)]
pub struct RepriceInputs<'a> {
    /// The engine (positions, exits, market).
    pub engine: &'a EngineState,
    /// The churner (its handed-over round trips are positions too).
    pub churn: &'a ChurnBook,
    /// Its configuration (pair grid, entry offset, bands).
    pub engine_cfg: &'a EngineConfig,
    /// Repricing settings.
    pub cfg: &'a RepriceConfig,
    /// Seconds since the market price was read (`None`: never).
    pub market_age_sec: Option<i64>,
    /// Current time.
    pub now: i64,
    /// Profit target in force, percent (tighten's target).
    pub target_pct: Decimal,
    /// The trader's subsidy view per slot.
    pub subsidy: &'a BTreeMap<SlotId, Decimal>,
    /// Slots whose subsidized repricing stopped after a refused debit.
    pub subsidy_halted: &'a BTreeSet<SlotId>,
    /// Most reprices this loop may start (each costs a cancel and a place).
    pub max_decisions: usize,
}

/// The price an exit can realistically fill at (SPEC §5): sell =
/// `max(market x (1 + e/100), entry x (1 + f/100))`, buy mirrored, with the
/// fee floor `f` dropped when loss-funded healing is allowed. Rounded
/// passively (a sell up, a buy down), so it is never more aggressive than
/// the formula.
#[must_use]
pub fn fillable_price(
    engine_cfg: &EngineConfig,
    side: Side,
    entry: Decimal,
    market: Decimal,
    fee_floor_pct: Option<Decimal>,
) -> Decimal {
    let e = engine_cfg.entry_pct;
    let raw = match side {
        Side::Sell => {
            let m = market * (Decimal::ONE + e / HUNDRED);
            fee_floor_pct.map_or(m, |f| m.max(entry * (Decimal::ONE + f / HUNDRED)))
        }
        Side::Buy => {
            let m = market * (Decimal::ONE - e / HUNDRED);
            fee_floor_pct.map_or(m, |f| m.min(entry * (Decimal::ONE - f / HUNDRED)))
        }
    };
    engine_cfg.pair.round_price_passive(side, raw)
}

/// Subsidy needed to move an exit from `current` to `fillable`: the
/// distance it is beyond fillable, times the volume; zero when it is
/// already inside.
#[must_use]
pub fn subsidy_needed(side: Side, current: Decimal, fillable: Decimal, volume: Decimal) -> Decimal {
    let beyond = match side {
        Side::Sell => current - fillable,
        Side::Buy => fillable - current,
    };
    beyond.max(Decimal::ZERO) * volume
}

/// A subsidized move of `current` toward `fillable` paid by at most
/// `balance`: the full move when affordable, else `balance / volume` on the
/// tick grid, rounded so the consumed amount never exceeds the balance.
/// Returns the new price and what it consumes, or `None` when the balance
/// does not move the price by a tick.
#[must_use]
pub fn subsidized_move(
    engine_cfg: &EngineConfig,
    side: Side,
    current: Decimal,
    fillable: Decimal,
    volume: Decimal,
    balance: Decimal,
) -> Option<(Decimal, Decimal)> {
    let needed = subsidy_needed(side, current, fillable, volume);
    if needed <= Decimal::ZERO || balance <= Decimal::ZERO || volume <= Decimal::ZERO {
        return None;
    }
    let new_price =
        if balance >= needed {
            fillable
        } else {
            let step = balance / volume;
            let dp = engine_cfg.pair.price_decimals;
            match side {
                // A sell exit moves down; rounding up keeps the move within budget.
                Side::Sell => (current - step)
                    .round_dp_with_strategy(dp, RoundingStrategy::ToPositiveInfinity),
                Side::Buy => (current + step)
                    .round_dp_with_strategy(dp, RoundingStrategy::ToNegativeInfinity),
            }
        };
    if new_price == current {
        return None;
    }
    Some((new_price, (current - new_price).abs() * volume))
}

/// The tighten target of an exit: sell = `max(entry x (1 + t/100), market x
/// (1 + e/100))`, buy mirrored, rounded passively.
#[must_use]
pub fn tighten_price(
    engine_cfg: &EngineConfig,
    side: Side,
    entry: Decimal,
    market: Decimal,
    target_pct: Decimal,
) -> Decimal {
    let e = engine_cfg.entry_pct;
    let raw = match side {
        Side::Sell => (entry * (Decimal::ONE + target_pct / HUNDRED))
            .max(market * (Decimal::ONE + e / HUNDRED)),
        Side::Buy => (entry * (Decimal::ONE - target_pct / HUNDRED))
            .min(market * (Decimal::ONE - e / HUNDRED)),
    };
    engine_cfg.pair.round_price_passive(side, raw)
}

/// One open position as the rule reads it, whoever holds its exit.
struct Candidate<'a> {
    exit: ExitRef,
    slot: SlotId,
    trade: TradeId,
    band: AgeBand,
    /// Current exit price.
    price: Decimal,
    /// Volume still open.
    volume: Decimal,
    entry: Decimal,
    target_profit_pct: Decimal,
    heal: &'a HealFacts,
    /// Resting on the book, and neither being repriced nor closed.
    live: bool,
}

/// Every open position with its band: handed-over churner round trips
/// first, then the engine's exits.
fn candidates<'a>(inp: &RepriceInputs<'a>, market: Decimal) -> Vec<Candidate<'a>> {
    let bands = &inp.engine_cfg.bands;
    let churn = inp
        .churn
        .handed_over(inp.now, market, bands)
        .into_iter()
        .map(|h| Candidate {
            exit: ExitRef::Churner(h.order.id.clone()),
            slot: h.slot,
            trade: h.position.trade,
            band: h.age.band,
            price: h.order.price,
            volume: h.remaining(),
            entry: h.position.entry_price,
            target_profit_pct: h.position.target_profit_pct,
            heal: h.heal,
            live: h.live(),
        });
    let slots = classify_all(inp.engine, inp.now, bands)
        .into_iter()
        .filter_map(|pb| {
            let x = inp.engine.slots.get(&pb.slot)?.trade(pb.trade).exit()?;
            Some(Candidate {
                exit: ExitRef::Slot(x.id),
                slot: pb.slot,
                trade: pb.trade,
                band: pb.age.band,
                price: x.price,
                volume: x.remaining(),
                entry: x.entry.price,
                target_profit_pct: x.target_profit_pct,
                heal: &x.heal,
                live: x.txid().is_some() && x.reprice.is_none() && x.close.is_none(),
            })
        });
    churn.chain(slots).collect()
}

/// Plans this loop's reprices.
#[must_use]
pub fn plan(inp: RepriceInputs<'_>) -> RepricePlan {
    let mut out = RepricePlan::default();
    let cfg = inp.cfg;
    if !cfg.tighten && !cfg.subsidized {
        return out;
    }
    let Some(market) = inp.engine.market else {
        return out;
    };
    let stale = inp.market_age_sec.is_none_or(|a| a > cfg.market_stale_sec);
    let mut balance = inp.subsidy.clone();
    let fee_floor = (!cfg.allow_loss).then_some(cfg.round_trip_fee_pct);
    for c in candidates(&inp, market) {
        out.checked += 1;
        let skip = |reason| Skip {
            exit: c.exit.clone(),
            reason,
        };
        let band = c.band;
        if band < AgeBand::Stale {
            // Fresh and aging positions are the churner's, not repricing's.
            out.skips.push(skip(SkipReason::BandNotEligible));
            continue;
        }
        if stale {
            out.skips.push(skip(SkipReason::MarketStale));
            continue;
        }
        if c.heal.held(inp.now) {
            out.skips.push(skip(SkipReason::HeldByOperator));
            continue;
        }
        if !c.live {
            out.skips.push(skip(SkipReason::ExitMissing));
            continue;
        }
        let side = c.trade.exit_side();
        let (volume, entry) = (c.volume, c.entry);
        // Tighten: free, once, toward the target in force.
        if cfg.tighten
            && !c.heal.tightened
            && c.target_profit_pct > inp.target_pct + TIGHTEN_MARGIN_PCT
        {
            let to = tighten_price(inp.engine_cfg, side, entry, market, inp.target_pct);
            let closer = match side {
                Side::Sell => to < c.price,
                Side::Buy => to > c.price,
            };
            if closer {
                if out.decisions.len() >= inp.max_decisions {
                    out.skips.push(skip(SkipReason::Budget));
                    continue;
                }
                out.decisions.push(RepriceDecision {
                    exit: c.exit.clone(),
                    slot: c.slot,
                    trade: c.trade,
                    band,
                    old_price: c.price,
                    new_price: to,
                    kind: RepriceKind::Tighten,
                    subsidy_consumed: Decimal::ZERO,
                    needed: Decimal::ZERO,
                    full: true,
                });
                continue;
            }
        }
        if !cfg.subsidized || band < cfg.auto_band {
            out.skips.push(skip(SkipReason::BandNotEligible));
            continue;
        }
        let fillable = fillable_price(inp.engine_cfg, side, entry, market, fee_floor);
        let needed = subsidy_needed(side, c.price, fillable, volume);
        if needed <= Decimal::ZERO {
            out.skips.push(skip(SkipReason::NoFillableDelta));
            continue;
        }
        *out.pending_need.entry(c.slot).or_default() += needed;
        if inp.subsidy_halted.contains(&c.slot) {
            out.skips.push(skip(SkipReason::SubsidyHalted));
            continue;
        }
        if c.heal
            .last_subsidy_reprice_at
            .is_some_and(|at| inp.now - at < cfg.interval_sec)
        {
            out.skips.push(skip(SkipReason::Cooldown));
            continue;
        }
        let bal = balance.get(&c.slot).copied().unwrap_or_default();
        let Some((new_price, consumed)) =
            subsidized_move(inp.engine_cfg, side, c.price, fillable, volume, bal)
        else {
            out.skips.push(skip(SkipReason::InsufficientBalance));
            continue;
        };
        if out.decisions.len() >= inp.max_decisions {
            out.skips.push(skip(SkipReason::Budget));
            continue;
        }
        let breakeven = match side {
            Side::Sell => entry * (Decimal::ONE + cfg.round_trip_fee_pct / HUNDRED),
            Side::Buy => entry * (Decimal::ONE - cfg.round_trip_fee_pct / HUNDRED),
        };
        let below_breakeven = match side {
            Side::Sell => new_price < breakeven,
            Side::Buy => new_price > breakeven,
        };
        balance.insert(c.slot, bal - consumed);
        if let Some(n) = out.pending_need.get_mut(&c.slot) {
            *n -= consumed;
        }
        out.decisions.push(RepriceDecision {
            exit: c.exit,
            slot: c.slot,
            trade: c.trade,
            band,
            old_price: c.price,
            new_price,
            kind: if below_breakeven {
                RepriceKind::LossFunded
            } else {
                RepriceKind::Subsidy
            },
            subsidy_consumed: consumed,
            needed,
            full: new_price == fillable,
        });
    }
    out
}

#[cfg(test)]
mod tests;
