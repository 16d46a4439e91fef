//! Operator decisions (SPEC §8) as pure functions: the cleanup queue, the
//! move to breakeven, and the hold window. The runtime carries them out in
//! its loop, between steps, so they are serialized with its own repricing.
//!
//! Every refusal is an [`OperatorRefusal`] whose message a person can act
//! on (not open, exit missing, nothing to do, on hold, ...); the caller maps
//! its [`RefusalKind`] to a gRPC code once.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::engine::{AgeBand, EngineConfig, EngineState, ExitOrder, PositionBand, classify_all};
use crate::healing::reprice::{RepriceConfig, fillable_price, subsidy_needed};
use crate::healing::throughput::{OpenSample, PositionCost, ThroughputSizer};
use crate::healing::vocab::Regime;

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
    exit.heal.hold_until.is_some_and(|until| now < until)
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

/// Why an exit cannot be acted on now, or `None` when it is live and not
/// being repriced.
#[must_use]
pub fn exit_unavailable(exit: &ExitOrder) -> Option<OperatorRefusal> {
    if exit.close.is_some() {
        return Some(OperatorRefusal::precondition(format!(
            "a close at market of exit {} is in progress",
            exit.id
        )));
    }
    if exit.reprice.is_some() {
        return Some(OperatorRefusal::precondition(format!(
            "a reprice of exit {} is in progress (its cancel is not confirmed yet); \
             try again after the next loop",
            exit.id
        )));
    }
    if exit.txid().is_none() {
        return Some(OperatorRefusal::precondition(format!(
            "exit {} is not live on the exchange (pending or refused placement)",
            exit.id
        )));
    }
    None
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
    if on_hold(exit, now) {
        return Err(OperatorRefusal::precondition(format!(
            "position is on hold until {} (unix seconds); release the hold first",
            exit.heal.hold_until.unwrap_or_default()
        )));
    }
    let Some(market) = engine.market else {
        return Err(OperatorRefusal::precondition(
            "no market price yet: the target cannot be placed safely",
        ));
    };
    let side = exit.id.trade.exit_side();
    let target = fillable_price(
        engine_cfg,
        side,
        exit.entry.price,
        market,
        Some(cfg.round_trip_fee_pct),
    );
    let volume = exit.remaining();
    let moved = subsidy_needed(side, exit.price, target, volume);
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
    /// Regime in force.
    pub regime: Regime,
    /// The bot's total capital, USD.
    pub total_capital: Decimal,
    /// Current time.
    pub now: i64,
}

impl QueueInputs<'_> {
    /// SPEC §7 opportunity cost of the open position `x` (classified as
    /// `b`), given the open exits as censored samples (`open`, see
    /// [`open_samples`]).
    #[must_use]
    pub fn opportunity_cost(
        &self,
        b: &PositionBand,
        x: &ExitOrder,
        open: &[OpenSample],
    ) -> Decimal {
        self.sizer.opportunity_cost(
            &PositionCost {
                regime: self.regime,
                trade: b.trade,
                age_sec: b.age.age_sec,
                entry_cost: x.entry.cost,
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

/// The cleanup queue (SPEC §8): open positions in band write_off that are
/// not on hold and are known to the ledger, oldest effective age first.
#[must_use]
pub fn cleanup_queue(inp: QueueInputs<'_>) -> Vec<CleanupEntry> {
    let Some(market) = inp.engine.market else {
        return Vec::new();
    };
    let open = open_samples(inp.engine, inp.regime, inp.now);
    let mut out: Vec<CleanupEntry> = classify_all(inp.engine, inp.now, &inp.engine_cfg.bands)
        .into_iter()
        .filter(|b| b.age.band == AgeBand::WriteOff)
        .filter_map(|b| {
            let x = inp.engine.open_exits().find(|x| x.id == b.exit_order_id)?;
            let position_id = x.position_id.clone()?;
            if on_hold(x, inp.now) {
                return None;
            }
            let side = b.trade.exit_side();
            let fillable = fillable_price(
                inp.engine_cfg,
                side,
                x.entry.price,
                market,
                (!inp.cfg.allow_loss).then_some(inp.cfg.round_trip_fee_pct),
            );
            let cost = inp.opportunity_cost(&b, x, &open);
            let mut actions = Vec::new();
            if breakeven_move(
                inp.engine,
                inp.engine_cfg,
                inp.cfg,
                x,
                Decimal::ZERO,
                inp.now,
            )
            .is_ok()
            {
                actions.push("reprice_to_breakeven".to_owned());
            }
            if exit_unavailable(x).is_none() {
                actions.push("close_at_market".to_owned());
            }
            actions.push("keep_holding".to_owned());
            Some(CleanupEntry {
                position_id,
                slot_id: b.slot,
                trade: b.trade,
                entry_price: x.entry.price,
                exit_price: x.price,
                volume: x.remaining(),
                age_sec: b.age.age_sec,
                distance_pct: b.age.distance_pct.round_dp(4),
                effective_age_sec: b.age.effective_age_sec.round_dp(0),
                subsidy_needed: subsidy_needed(side, x.price, fillable, x.remaining()),
                opportunity_cost: cost,
                actions,
            })
        })
        .collect();
    out.sort_by_key(|e| std::cmp::Reverse(e.effective_age_sec));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
