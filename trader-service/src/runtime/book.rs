//! The runtime's own durable bookkeeping, persisted *with* the engine state
//! in every commit (one JSON document), plus the per-loop call budget.
//!
//! Everything the runtime must remember across a crash lives here: what it
//! already delivered per txid, which placements it intended but has not seen
//! acknowledged (write-ahead), which positions are open under which open
//! key, and the legacy exits it imported.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::engine::types::ExitPlacement;
use crate::engine::{EngineState, OrderId, OrderRole, TradeId, TradeWork};
use crate::pair::Side;
use crate::runtime::fills::Executed;
use crate::runtime::intents::PlacementIntent;
use crate::runtime::writes::{OpenWrite, RepriceWrite, TrackedPosition};

/// Layout version of [`PersistedState`].
pub const STATE_VERSION: u32 = 1;

/// An exit imported from a pre-ledger run, tracked by the runtime (not the
/// engine) until it fills or vanishes, so its ledger position is closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyOrder {
    /// Ledger open key (`legacy:<txid>`).
    pub open_key: String,
    /// Exit side.
    pub side: Side,
    /// Best-effort entry price.
    pub entry_price: Decimal,
    /// Exit limit price.
    pub exit_price: Decimal,
    /// What was already seen of its executions.
    pub seen: Executed,
}

/// The runtime's durable bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeBook {
    /// Executions already delivered, per txid of a live engine order.
    pub seen: BTreeMap<String, Executed>,
    /// Open positions by `slot:trade:cycle`.
    pub positions: BTreeMap<String, TrackedPosition>,
    /// Write-ahead: placements committed as intended (order id -> intent)
    /// whose outcome is not known yet. They are looked up by `cl_ord_id`
    /// (open and closed orders) and placed again only under the rule of
    /// [`crate::runtime::intents`], also after a crash.
    pub placing: BTreeMap<String, PlacementIntent>,
    /// Imported legacy exits by txid.
    pub legacy: BTreeMap<String, LegacyOrder>,
    /// Counter giving imported legacy positions distinct cycles.
    pub legacy_seq: u64,
    /// Operator pause (survives restarts; an operator decision, not a
    /// feature flag).
    pub paused: bool,
    /// `OpenPosition` writes waiting for their exit to reach the exchange,
    /// by the exit's local id: the ledger records a position with the txid
    /// of the exit working it, so the write is queued when the exit is
    /// placed (or, without a txid, when the exchange refuses it).
    #[serde(default)]
    pub opens_awaiting_exit: BTreeMap<String, OpenWrite>,
    /// `RepricePosition` writes waiting for their replacement exit to reach
    /// the exchange, by the replacement's local id, for the same reason:
    /// the ledger then records the exit that really works the position.
    /// The subsidy view is debited when the reprice takes effect, so the
    /// view is never synced from the ledger while one waits.
    #[serde(default)]
    pub reprices_awaiting_exit: BTreeMap<String, RepriceWrite>,
    /// The trader's per-slot subsidy view (SPEC §6), committed with the
    /// writes that move the ledger's balance.
    #[serde(default)]
    pub subsidy: crate::healing::SubsidyView,
    /// Repricing counters.
    #[serde(default)]
    pub heal_stats: crate::healing::RepriceStats,
    /// Txids of our orders the runtime has tracked (placed, adopted, or
    /// handled as strays), with the unix ms they were last live or handled:
    /// an order carrying one of our client ids whose txid is not here is a
    /// stray. Pruned after a retention well beyond the stray scan's
    /// lookback.
    #[serde(default)]
    pub known: BTreeMap<String, i64>,
    /// Exits for adopted stray fills, by their client order id, while their
    /// placement is pending or unresolved (write-ahead, like `placing`).
    #[serde(default)]
    pub stray_exits: BTreeMap<String, StrayExit>,
    /// The churner's state (SPEC §6): committed with the engine step, so a
    /// restart resumes every round trip exactly.
    #[serde(default)]
    pub churn: crate::healing::ChurnBook,
    /// Write-ahead intents of churner placements whose outcome is not known
    /// yet, by client id.
    #[serde(default)]
    pub churn_intents: BTreeMap<String, PlacementIntent>,
    /// The operator's regime override (SPEC §12), restored into the
    /// detector on start so a restart does not drop it before its expiry.
    #[serde(default)]
    pub regime_override: Option<crate::healing::RegimeOverride>,
    /// The churner reserve an operator set (`SetChurnerReserve`), in force
    /// over `CHURNER_RESERVE_USD` and restored on start.
    #[serde(default)]
    pub churner_reserve_usd: Option<Decimal>,
    /// Positions closed at market, by operator and by policy.
    #[serde(default)]
    pub write_offs: WriteOffStats,
    /// Why each handed-over churner round trip being closed at market is
    /// closed, by its open key (a slot position keeps its note on its
    /// [`TrackedPosition`]); the ledger's close event carries it.
    #[serde(default)]
    pub round_trip_closes: BTreeMap<String, crate::runtime::writes::CloseNote>,
}

/// Lifetime counts of closes at market (SPEC §8) and their losses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WriteOffStats {
    /// Closed by an operator.
    pub operator: u64,
    /// Their realized loss, USD (positive).
    pub operator_loss_usd: Decimal,
    /// Closed by a policy (`SUBSIDY_WRITE_OFF_AUTO`, or a leg of a locked
    /// pair released by `HEAL_RELEASE_LOCKED_PAIRS`).
    pub auto: u64,
    /// Their realized loss, USD (positive).
    pub auto_loss_usd: Decimal,
    /// Locked pairs released (both legs closed at market).
    #[serde(default)]
    pub pairs_released: u64,
}

/// The exit of an adopted stray fill, before its placement is known: the
/// position's ledger write (sent once the exit's fate is known) and the
/// order to place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrayExit {
    /// The position's `OpenPosition` (exit txid filled in when placed).
    pub open: OpenWrite,
    /// Exit side.
    pub side: Side,
    /// Exit limit price.
    pub price: Decimal,
    /// Exit volume (the stray's executed volume).
    pub volume: Decimal,
    /// The exit's placement intent.
    pub intent: PlacementIntent,
}

/// What goes into the store's snapshot column. A commit serializes it
/// from borrowed state (every loop commits, and copying the engine and
/// the book first was a tenth of a stage-D backtest); a load owns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedState<'a> {
    /// Layout version.
    pub version: u32,
    /// The pure engine's state.
    pub engine: std::borrow::Cow<'a, EngineState>,
    /// The runtime's bookkeeping.
    pub book: std::borrow::Cow<'a, RuntimeBook>,
}

/// Decodes a stored snapshot into the engine state and the book: what a
/// restart resumes with, and what `store-audit` shows.
///
/// # Errors
/// The decoder's message when the state does not fit this build.
pub fn decode_state(
    snap: crate::runtime::store::Snapshot,
) -> Result<(EngineState, RuntimeBook), String> {
    let st: PersistedState = serde_json::from_value(snap.state).map_err(|e| e.to_string())?;
    Ok((st.engine.into_owned(), st.book.into_owned()))
}

/// Key of a position in [`RuntimeBook::positions`].
#[must_use]
pub fn position_key(slot: u32, trade: TradeId, cycle: u64) -> String {
    format!("{slot}:{}:{cycle}", trade.as_str())
}

/// One order the engine holds, flattened for the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldOrder {
    /// Local id.
    pub id: OrderId,
    /// Entry or exit.
    pub role: OrderRole,
    /// Buy or sell.
    pub side: Side,
    /// Limit price.
    pub price: Decimal,
    /// Volume to place (remaining volume for exits).
    pub volume: Decimal,
    /// Exchange id when placed.
    pub txid: Option<String>,
    /// The engine asked for a cancel (refresh) not yet confirmed.
    pub cancel_requested: bool,
    /// Not yet on the exchange: to be placed.
    pub pending_placement: bool,
    /// To be placed as a market order (an operator's close at market).
    pub market: bool,
}

/// Whether the churner waits for the exchange (a placement to make or
/// resolve, a cancel to confirm).
#[must_use]
pub fn churn_pending(book: &RuntimeBook) -> bool {
    book.churn
        .orders()
        .any(|o| o.txid.is_none() && o.retry_at.is_none())
        || book
            .churn
            .slots
            .values()
            .any(|s| s.stage.cancel_requested())
}

/// Every order of the non-halted slots, in deterministic order.
#[must_use]
pub fn held_orders(state: &EngineState) -> Vec<HeldOrder> {
    let mut out = Vec::new();
    for slot in state.slots.values().filter(|s| !s.is_halted()) {
        for t in [&slot.trade_a, &slot.trade_b] {
            match &t.work {
                TradeWork::Entry(e) => out.push(HeldOrder {
                    id: e.id,
                    role: OrderRole::Entry,
                    side: t.trade.entry_side(),
                    price: e.price,
                    volume: e.remaining(),
                    txid: e.txid.clone(),
                    cancel_requested: e.cancel_requested,
                    pending_placement: e.txid.is_none() && !e.cancel_requested,
                    market: false,
                }),
                TradeWork::Exit(x) => out.push(HeldOrder {
                    id: x.id,
                    role: OrderRole::Exit,
                    side: t.trade.exit_side(),
                    price: x.price,
                    volume: x.remaining(),
                    txid: x.txid().map(str::to_owned),
                    cancel_requested: x.cancel_wanted(),
                    pending_placement: matches!(x.placement, ExitPlacement::Pending),
                    market: x.is_market_close(),
                }),
                TradeWork::Idle(_) => {}
            }
        }
    }
    out
}

/// The engine's current order with exactly this id, if it still holds it:
/// its role and whether a cancel was requested. A map lookup, no scan.
#[must_use]
pub fn find_held(state: &EngineState, id: OrderId) -> Option<(OrderRole, bool)> {
    let slot = state.slots.get(&id.slot).filter(|s| !s.is_halted())?;
    match &slot.trade(id.trade).work {
        TradeWork::Entry(e) if e.id == id => Some((OrderRole::Entry, e.cancel_requested)),
        TradeWork::Exit(x) if x.id == id => Some((OrderRole::Exit, x.cancel_wanted())),
        _ => None,
    }
}

/// The engine order currently placed under `txid` (scan without
/// allocating).
#[must_use]
pub fn find_by_txid(state: &EngineState, txid: &str) -> Option<OrderId> {
    state
        .slots
        .values()
        .filter(|s| !s.is_halted())
        .find_map(|slot| {
            [&slot.trade_a, &slot.trade_b]
                .iter()
                .find_map(|t| match &t.work {
                    TradeWork::Entry(e) if e.txid.as_deref() == Some(txid) => Some(e.id),
                    TradeWork::Exit(x) if x.txid() == Some(txid) => Some(x.id),
                    _ => None,
                })
        })
}

/// Whether any order waits for the exchange (placement or cancel), without
/// allocating: the backtest asks this on every quiet candle.
#[must_use]
pub fn any_pending(state: &EngineState) -> bool {
    state.slots.values().filter(|s| !s.is_halted()).any(|slot| {
        [&slot.trade_a, &slot.trade_b]
            .iter()
            .any(|t| match &t.work {
                TradeWork::Entry(e) => e.txid.is_none() || e.cancel_requested,
                TradeWork::Exit(x) => matches!(x.placement, ExitPlacement::Pending),
                TradeWork::Idle(_) => false,
            })
    })
}

/// The per-loop budget of private exchange calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallBudget {
    limit: u32,
    used: u32,
}

impl CallBudget {
    /// A fresh budget of `limit` calls.
    #[must_use]
    pub fn new(limit: u32) -> Self {
        Self { limit, used: 0 }
    }

    /// Takes `n` calls if they fit; `false` (and nothing taken) otherwise.
    pub fn try_take(&mut self, n: u32) -> bool {
        if self.used.saturating_add(n) > self.limit {
            return false;
        }
        self.used += n;
        true
    }

    /// Records calls that are made regardless of the budget (order polls:
    /// fills must never wait).
    pub fn force(&mut self, n: u32) {
        self.used = self.used.saturating_add(n);
    }

    /// Calls made.
    #[must_use]
    pub fn used(&self) -> u32 {
        self.used
    }

    /// Configured limit.
    #[must_use]
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Calls still available.
    #[must_use]
    pub fn left(&self) -> u32 {
        self.limit.saturating_sub(self.used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves: the budget refuses what does not fit (nothing partially
    /// taken), forced calls count against it, and `left` never underflows.
    #[test]
    fn budget_defers_what_does_not_fit() {
        let mut b = CallBudget::new(3);
        assert!(b.try_take(2));
        assert!(!b.try_take(2));
        assert_eq!(b.used(), 2);
        assert!(b.try_take(1));
        assert!(!b.try_take(1));
        b.force(2);
        assert_eq!((b.used(), b.left()), (5, 0));
    }

    /// Proves: a fresh engine holds no orders; after a price tick every
    /// entry is pending placement (no txid yet).
    #[test]
    fn held_orders_flags_pending_placements() {
        use crate::engine::{EngineConfig, Event, transition};
        use crate::pair::PairSpec;
        let pair = PairSpec {
            symbol: "XDGUSD".into(),
            price_decimals: 7,
            lot_decimals: 8,
            ordermin: Decimal::new(5, 0),
            costmin: Decimal::new(5, 1),
        };
        let mut cfg = EngineConfig::defaults(pair);
        cfg.slots = 2;
        let mut st = EngineState::new(2);
        assert!(held_orders(&st).is_empty());
        let _ = transition(
            &mut st,
            &Event::PriceTick {
                price: Decimal::new(1, 1),
                now: 1_700_000_000,
            },
            &cfg,
        );
        let held = held_orders(&st);
        assert_eq!(held.len(), 4);
        assert!(held.iter().all(|h| h.pending_placement && h.txid.is_none()));
    }
}
