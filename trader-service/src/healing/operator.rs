//! Operator decisions (SPEC §8) as pure functions: the cleanup queue, the
//! move to breakeven, and the hold window. The runtime carries them out in
//! its loop, between steps, so they are serialized with its own repricing.
//!
//! Every refusal is an [`OperatorRefusal`] whose message a person can act
//! on (not open, exit missing, nothing to do, on hold, ...); the caller maps
//! its [`RefusalKind`] to a gRPC code once.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::engine::{
    AgeBand, EngineConfig, EngineState, ExitOrder, HealFacts, PositionAge, SlotId, TradeId,
    classify_all,
};
use crate::healing::churner::{ChurnBook, HandedOverView};
use crate::healing::reprice::{RepriceConfig, fillable_price, subsidy_needed};
use crate::healing::throughput::{OpenSample, PositionCost, ThroughputSizer};
use crate::healing::vocab::Regime;
use crate::pair::Side;

/// Shortest operator hold, seconds (SPEC §8).
pub const HOLD_MIN_SEC: i64 = 60;
/// Longest operator hold, seconds (30 days).
pub const HOLD_MAX_SEC: i64 = 30 * 86_400;
/// Hold when the operator gives none, seconds (96 h).
pub const HOLD_DEFAULT_SEC: i64 = 96 * 3_600;

/// Which status code a refusal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// Malformed request (bad id, hold out of range, ...).
    InvalidArgument,
    /// No such open position of this trader.
    NotFound,
    /// The position's state does not allow it now.
    FailedPrecondition,
}

/// A refused operator action; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct OperatorRefusal {
    /// Status code class.
    pub kind: RefusalKind,
    /// In words an operator understands.
    pub message: String,
}

impl OperatorRefusal {
    /// A [`RefusalKind::FailedPrecondition`] refusal.
    #[must_use]
    pub fn precondition(message: impl Into<String>) -> Self {
        Self {
            kind: RefusalKind::FailedPrecondition,
            message: message.into(),
        }
    }

    /// A [`RefusalKind::InvalidArgument`] refusal.
    #[must_use]
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            kind: RefusalKind::InvalidArgument,
            message: message.into(),
        }
    }

    /// A [`RefusalKind::NotFound`] refusal.
    #[must_use]
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            kind: RefusalKind::NotFound,
            message: message.into(),
        }
    }
}

/// The hold window an operator asked for: `0` means the default (96 h);
/// anything outside 60 s .. 30 d is refused.
///
/// # Errors
/// [`RefusalKind::InvalidArgument`] out of range.
pub fn hold_window(requested_sec: i64) -> Result<i64, OperatorRefusal> {
    if requested_sec == 0 {
        return Ok(HOLD_DEFAULT_SEC);
    }
    if !(HOLD_MIN_SEC..=HOLD_MAX_SEC).contains(&requested_sec) {
        return Err(OperatorRefusal::invalid(format!(
            "hold of {requested_sec} s is out of range: {HOLD_MIN_SEC} s to {HOLD_MAX_SEC} s \
             (30 days), or 0 for the default {HOLD_DEFAULT_SEC} s"
        )));
    }
    Ok(requested_sec)
}

/// Whether an operator hold is in force on `exit` at `now`.
#[must_use]
pub fn on_hold(exit: &ExitOrder, now: i64) -> bool {
    exit.heal.held(now)
}

/// A move of an exit to breakeven (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakevenMove {
    /// Current price.
    pub old_price: Decimal,
    /// Breakeven, never crossing the market (tick grid).
    pub new_price: Decimal,
    /// What the full move is worth: `|old - new| x remaining volume`.
    pub moved: Decimal,
    /// Subsidy it spends: `min(balance, moved)`; the rest is profit given up.
    pub subsidy: Decimal,
}

/// Whether an exit, whoever holds it, may be acted on now: the facts
/// [`unavailable`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitBusy<'a> {
    /// Its client id (for the message).
    pub id: &'a str,
    /// A close at market of it is in progress.
    pub closing: bool,
    /// A reprice of it is in progress.
    pub repricing: bool,
    /// It rests on the exchange (placed, not being placed again).
    pub live: bool,
}

/// Why an exit cannot be acted on now (a close or a reprice in progress,
/// not live), or `None` when it may be.
#[must_use]
pub fn unavailable(exit: ExitBusy<'_>) -> Option<OperatorRefusal> {
    let id = exit.id;
    if exit.closing {
        return Some(OperatorRefusal::precondition(format!(
            "a close at market of exit {id} is in progress"
        )));
    }
    if exit.repricing {
        return Some(OperatorRefusal::precondition(format!(
            "a reprice of exit {id} is in progress (its cancel is not confirmed yet); \
             try again after the next loop"
        )));
    }
    if !exit.live {
        return Some(OperatorRefusal::precondition(format!(
            "exit {id} is not live on the exchange (pending or refused placement)"
        )));
    }
    None
}

/// Why a slot's exit cannot be acted on now ([`unavailable`]).
#[must_use]
pub fn exit_unavailable(exit: &ExitOrder) -> Option<OperatorRefusal> {
    unavailable(ExitBusy {
        id: &exit.id.to_string(),
        closing: exit.close.is_some(),
        repricing: exit.reprice.is_some(),
        live: exit.txid().is_some(),
    })
}

/// Why a handed-over churner round trip's exit cannot be acted on now
/// ([`unavailable`]).
#[must_use]
pub fn round_trip_unavailable(h: &HandedOverView<'_>) -> Option<OperatorRefusal> {
    unavailable(ExitBusy {
        id: &h.order.id,
        closing: h.closing,
        repricing: h.repricing,
        live: h.order.txid.is_some() && !h.order.sending,
    })
}

/// The move to breakeven of `exit`: target `entry x (1 + f/100)` for a sell
/// exit (mirrored for a buy), never crossing the market (`market x (1 +
/// e/100)`), on the tick grid; subsidy pays what `balance` covers.
///
/// # Errors
/// A [`RefusalKind::FailedPrecondition`] when the exit is not live, is
/// being repriced, is on hold, the market is unknown, or the exit already
/// sits at or inside the target (nothing to do).
pub fn breakeven_move(
    engine: &EngineState,
    engine_cfg: &EngineConfig,
    cfg: &RepriceConfig,
    exit: &ExitOrder,
    balance: Decimal,
    now: i64,
) -> Result<BreakevenMove, OperatorRefusal> {
    if let Some(r) = exit_unavailable(exit) {
        return Err(r);
    }
    let facts = ExitFacts {
        side: exit.id.trade.exit_side(),
        entry_price: exit.entry.price,
        price: exit.price,
        volume: exit.remaining(),
        heal: &exit.heal,
    };
    breakeven_of(engine.market, engine_cfg, cfg, &facts, balance, now)
}

/// A live exit as the move to breakeven reads it, whoever holds it.
#[derive(Debug, Clone, Copy)]
pub struct ExitFacts<'a> {
    /// Its side.
    pub side: Side,
    /// The position's entry price.
    pub entry_price: Decimal,
    /// Its current price.
    pub price: Decimal,
    /// Volume still open.
    pub volume: Decimal,
    /// Its healing facts (the hold).
    pub heal: &'a HealFacts,
}

impl<'a> From<&HandedOverView<'a>> for ExitFacts<'a> {
    /// A handed-over churner round trip's exit.
    fn from(h: &HandedOverView<'a>) -> Self {
        Self {
            side: h.order.side,
            entry_price: h.position.entry_price,
            price: h.order.price,
            volume: h.remaining(),
            heal: h.heal,
        }
    }
}

/// The move to breakeven of a live exit (see [`breakeven_move`]), at
/// `market`.
///
/// # Errors
/// A [`RefusalKind::FailedPrecondition`] when the exit is on hold, the
/// market is unknown, or the exit already sits at or inside the target.
pub fn breakeven_of(
    market: Option<Decimal>,
    engine_cfg: &EngineConfig,
    cfg: &RepriceConfig,
    exit: &ExitFacts<'_>,
    balance: Decimal,
    now: i64,
) -> Result<BreakevenMove, OperatorRefusal> {
    if exit.heal.held(now) {
        return Err(OperatorRefusal::precondition(format!(
            "position is on hold until {} (unix seconds); release the hold first",
            exit.heal.hold_until.unwrap_or_default()
        )));
    }
    let Some(market) = market else {
        return Err(OperatorRefusal::precondition(
            "no market price yet: the target cannot be placed safely",
        ));
    };
    let target = fillable_price(
        engine_cfg,
        exit.side,
        exit.entry_price,
        market,
        Some(cfg.round_trip_fee_pct),
    );
    let moved = subsidy_needed(exit.side, exit.price, target, exit.volume);
    if moved <= Decimal::ZERO || target == exit.price {
        return Err(OperatorRefusal::precondition(format!(
            "nothing to do: the exit at {} is already at or inside breakeven-or-market {}",
            exit.price, target
        )));
    }
    Ok(BreakevenMove {
        old_price: exit.price,
        new_price: target,
        moved,
        subsidy: moved.min(balance.max(Decimal::ZERO)),
    })
}

/// One position of the cleanup queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupEntry {
    /// Ledger position id.
    pub position_id: String,
    /// Slot.
    pub slot_id: u32,
    /// Trade.
    pub trade: crate::engine::TradeId,
    /// Entry price.
    pub entry_price: Decimal,
    /// Current exit price.
    pub exit_price: Decimal,
    /// Remaining volume.
    pub volume: Decimal,
    /// `now - entry_time`, seconds.
    pub age_sec: i64,
    /// `|exit - market| / market x 100`.
    pub distance_pct: Decimal,
    /// Distance-weighted age, seconds.
    pub effective_age_sec: Decimal,
    /// Subsidy needed to bring it to its fillable price.
    pub subsidy_needed: Decimal,
    /// SPEC §7 opportunity cost, USD.
    pub opportunity_cost: Decimal,
    /// What the operator can do with it now (`reprice_to_breakeven`,
    /// `close_at_market`, `keep_holding`).
    pub actions: Vec<String>,
    /// A churner round trip handed over to its slot (slot mode churner),
    /// not the slot's own trade cycle: closing it ends a churner cycle.
    /// Carried here so readers of the queue need not look the position up
    /// in the status.
    #[serde(default)]
    pub churner: bool,
}

/// What [`cleanup_queue`] reads.
#[derive(Debug, Clone, Copy)]
pub struct QueueInputs<'a> {
    /// The engine.
    pub engine: &'a EngineState,
    /// Its configuration.
    pub engine_cfg: &'a EngineConfig,
    /// Repricing settings (fee floor).
    pub cfg: &'a RepriceConfig,
    /// Throughput statistics.
    pub sizer: &'a ThroughputSizer,
    /// The churner (its handed-over round trips are slot positions too).
    pub churn: &'a ChurnBook,
    /// Regime in force.
    pub regime: Regime,
    /// The bot's total capital, USD.
    pub total_capital: Decimal,
    /// Current time.
    pub now: i64,
}

impl QueueInputs<'_> {
    /// SPEC §7 opportunity cost of an open position of `trade`, `age_sec`
    /// old, whose entry cost `entry_cost`, given the open exits as
    /// censored samples (`open`, see [`open_samples`]).
    #[must_use]
    pub fn opportunity_cost(
        &self,
        trade: TradeId,
        age_sec: i64,
        entry_cost: Decimal,
        open: &[OpenSample],
    ) -> Decimal {
        self.sizer.opportunity_cost(
            &PositionCost {
                regime: self.regime,
                trade,
                age_sec,
                entry_cost,
                total_capital: self.total_capital,
            },
            open,
        )
    }
}

/// Open sticky exits as censored throughput samples.
#[must_use]
pub fn open_samples(engine: &EngineState, regime: Regime, now: i64) -> Vec<OpenSample> {
    engine
        .open_exits()
        .map(|x| OpenSample {
            regime,
            trade: x.id.trade,
            age_sec: now - x.entry.time,
        })
        .collect()
}

/// One open position as the queue and the status read it, whoever holds
/// its exit (the engine, or the slot for a handed-over churner round trip).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenPosition<'a> {
    /// Ledger position id, once acknowledged.
    pub position_id: Option<&'a str>,
    /// Slot.
    pub slot: SlotId,
    /// Trade.
    pub trade: TradeId,
    /// The slot's trade cycle, or the churner's round trip number.
    pub cycle: u64,
    /// Client id of its exit.
    pub exit_order_id: String,
    /// A churner round trip handed over to its slot (`slot_mode =
    /// churner`), not a sticky position.
    pub churner: bool,
    /// Age facts and band.
    pub age: PositionAge,
    /// Healing facts (the hold).
    pub heal: &'a HealFacts,
    /// Entry price.
    pub entry_price: Decimal,
    /// Entry cost (the capital it ties up).
    pub entry_cost: Decimal,
    /// Current exit price.
    pub exit_price: Decimal,
    /// Position volume.
    pub volume: Decimal,
    /// Volume still open.
    pub remaining: Decimal,
    /// What the operator can do with it now.
    pub actions: Vec<String>,
}

/// What the operator can do with an exit now: a move to breakeven when it
/// would move, a close at market while it is live, a hold always.
fn actions_of(breakeven: bool, unavailable: Option<OperatorRefusal>) -> Vec<String> {
    let mut actions = Vec::new();
    if breakeven {
        actions.push("reprice_to_breakeven".to_owned());
    }
    if unavailable.is_none() {
        actions.push("close_at_market".to_owned());
    }
    actions.push("keep_holding".to_owned());
    actions
}

/// Every open position with its band at `market`: the engine's exits,
/// then the handed-over churner round trips.
#[must_use]
pub fn open_positions<'a>(inp: &QueueInputs<'a>, market: Decimal) -> Vec<OpenPosition<'a>> {
    let slots = classify_all(inp.engine, inp.now, &inp.engine_cfg.bands)
        .into_iter()
        .filter_map(|b| {
            let x = inp.engine.open_exits().find(|x| x.id == b.exit_order_id)?;
            let breakeven = breakeven_move(
                inp.engine,
                inp.engine_cfg,
                inp.cfg,
                x,
                Decimal::ZERO,
                inp.now,
            )
            .is_ok();
            Some(OpenPosition {
                position_id: x.position_id.as_deref(),
                slot: b.slot,
                trade: b.trade,
                cycle: b.cycle,
                exit_order_id: x.id.to_string(),
                churner: false,
                age: b.age,
                heal: &x.heal,
                entry_price: x.entry.price,
                entry_cost: x.entry.cost,
                exit_price: x.price,
                volume: x.volume,
                remaining: x.remaining(),
                actions: actions_of(breakeven, exit_unavailable(x)),
            })
        })
        .collect::<Vec<_>>();
    let churn = inp
        .churn
        .handed_over(inp.now, market, &inp.engine_cfg.bands)
        .into_iter()
        .map(|h| {
            let facts = ExitFacts::from(&h);
            let breakeven = h.live()
                && breakeven_of(
                    Some(market),
                    inp.engine_cfg,
                    inp.cfg,
                    &facts,
                    Decimal::ZERO,
                    inp.now,
                )
                .is_ok();
            OpenPosition {
                position_id: h.position.position_id.as_deref(),
                slot: h.slot,
                trade: h.position.trade,
                cycle: h.position.cycle,
                exit_order_id: h.order.id.clone(),
                churner: true,
                age: h.age,
                heal: h.heal,
                entry_price: h.position.entry_price,
                entry_cost: h.position.entry_cost,
                exit_price: h.order.price,
                volume: h.position.volume,
                remaining: h.remaining(),
                actions: actions_of(breakeven, round_trip_unavailable(&h)),
            }
        });
    slots.into_iter().chain(churn).collect()
}

/// The cleanup queue (SPEC §8): open positions in band write_off (a
/// handed-over churner round trip as any slot position) that are not on
/// hold and are known to the ledger, oldest effective age first.
#[must_use]
pub fn cleanup_queue(inp: QueueInputs<'_>) -> Vec<CleanupEntry> {
    let Some(market) = inp.engine.market else {
        return Vec::new();
    };
    let open = open_samples(inp.engine, inp.regime, inp.now);
    let mut out: Vec<CleanupEntry> = open_positions(&inp, market)
        .into_iter()
        .filter(|c| c.age.band == AgeBand::WriteOff && !c.heal.held(inp.now))
        .filter_map(|c| {
            let position_id = c.position_id?.to_owned();
            let side = c.trade.exit_side();
            let fillable = fillable_price(
                inp.engine_cfg,
                side,
                c.entry_price,
                market,
                (!inp.cfg.allow_loss).then_some(inp.cfg.round_trip_fee_pct),
            );
            Some(CleanupEntry {
                position_id,
                slot_id: c.slot,
                trade: c.trade,
                entry_price: c.entry_price,
                exit_price: c.exit_price,
                volume: c.remaining,
                age_sec: c.age.age_sec,
                distance_pct: c.age.distance_pct.round_dp(4),
                effective_age_sec: c.age.effective_age_sec.round_dp(0),
                subsidy_needed: subsidy_needed(side, c.exit_price, fillable, c.remaining),
                opportunity_cost: inp.opportunity_cost(c.trade, c.age.age_sec, c.entry_cost, &open),
                actions: c.actions,
                churner: c.churner,
            })
        })
        .collect();
    out.sort_by_key(|e| std::cmp::Reverse(e.effective_age_sec));
    out
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;
    use crate::engine::FillTotals;
    use crate::engine::test_support::cfg;
    use crate::healing::churner::{
        ChurnOrder, ChurnPosition, ChurnStage, Funding, ParentRef, SlotChurn,
    };
    use crate::pair::Side;

    const D: i64 = 86_400;
    const NOW: i64 = 10_000_000;

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

    /// A churner round trip of slot 0 handed over to its slot: bought 20
    /// at 0.1000 ten days ago, its exit selling at 0.1020 (2 % from the
    /// market 0.1000: band write_off), known to the ledger as `id`.
    fn handed_over(id: Option<&str>, hold_until: Option<i64>) -> ChurnBook {
        let order = ChurnOrder {
            id: "ch:0:3:ex:7".into(),
            slot: 0,
            side: Side::Sell,
            price: dec!(0.1020),
            volume: dec!(20),
            txid: Some("X-CH".into()),
            sending: false,
            created_at: NOW - 10 * D,
            retry_at: None,
            fills: FillTotals::default(),
            current: FillTotals::default(),
        };
        let position = ChurnPosition {
            open_key: "churn:E-CH".into(),
            cycle: 3,
            trade: crate::engine::TradeId::B,
            entry_price: dec!(0.1000),
            entry_cost: dec!(2),
            entry_fee: Decimal::ZERO,
            volume: dec!(20),
            entry_time: NOW - 10 * D,
            exit_price: dec!(0.1020),
            target_profit_pct: dec!(2),
            position_id: id.map(str::to_owned),
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
                        trade: crate::engine::TradeId::B,
                        cycle: 1,
                    },
                    funding: Funding::Idle,
                    at: NOW - 10 * D,
                    heal: HealFacts {
                        hold_until,
                        ..HealFacts::default()
                    },
                    reprice: None,
                    close: None,
                },
                ..SlotChurn::default()
            },
        );
        churn
    }

    fn queue(churn: &ChurnBook) -> Vec<CleanupEntry> {
        let mut engine = EngineState::new(1);
        engine.market = Some(dec!(0.1000));
        engine.now = NOW;
        cleanup_queue(QueueInputs {
            engine: &engine,
            engine_cfg: &cfg(),
            cfg: &rcfg(),
            sizer: &ThroughputSizer::default(),
            churn,
            regime: Regime::Ranging,
            total_capital: dec!(100),
            now: NOW,
        })
    }

    /// Proves: a handed-over churner round trip in band write_off is in the
    /// cleanup queue like a slot position (its ledger id, age, distance,
    /// the subsidy to bring it to fillable 0.1005: 0.0015 x 20), marked as
    /// a churner round trip, with keep_holding as its action; on hold, or
    /// unknown to the ledger yet, it is not.
    #[test]
    fn a_handed_over_round_trip_in_write_off_is_queued_unless_held() {
        let q = queue(&handed_over(Some("42"), None));
        assert_eq!(q.len(), 1, "{q:?}");
        let e = &q[0];
        assert_eq!(e.position_id, "42");
        assert_eq!((e.slot_id, e.trade), (0, crate::engine::TradeId::B));
        assert_eq!(
            (e.entry_price, e.exit_price, e.volume),
            (dec!(0.1000), dec!(0.1020), dec!(20))
        );
        assert_eq!(e.age_sec, 10 * D);
        assert_eq!(e.distance_pct, dec!(2));
        assert_eq!(e.subsidy_needed, dec!(0.0300));
        assert!(e.churner, "{e:?}");
        assert_eq!(
            e.actions,
            ["reprice_to_breakeven", "close_at_market", "keep_holding"]
        );
        let mut closing = handed_over(Some("42"), None);
        crate::healing::churner::request_close(&mut closing, "ch:0:3:ex:7", NOW).unwrap();
        assert_eq!(
            queue(&closing)[0].actions,
            ["keep_holding"],
            "a close in progress: no move, no second close"
        );
        assert!(queue(&handed_over(Some("42"), Some(NOW + 60))).is_empty());
        assert_eq!(
            queue(&handed_over(Some("42"), Some(NOW))).len(),
            1,
            "expired"
        );
        assert!(queue(&handed_over(None, None)).is_empty());
    }

    /// Proves: the hold window's default, bounds (inclusive) and refusals.
    #[test]
    fn hold_window_bounds() {
        assert_eq!(hold_window(0), Ok(HOLD_DEFAULT_SEC));
        assert_eq!(hold_window(60), Ok(60));
        assert_eq!(hold_window(HOLD_MAX_SEC), Ok(HOLD_MAX_SEC));
        for bad in [1, 59, -5, HOLD_MAX_SEC + 1] {
            let e = hold_window(bad).unwrap_err();
            assert_eq!(e.kind, RefusalKind::InvalidArgument);
            assert!(e.message.contains("out of range"), "{}", e.message);
        }
    }
}
