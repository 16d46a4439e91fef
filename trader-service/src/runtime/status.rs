//! What the runtime shows the outside world: a read-only [`StatusSnapshot`]
//! published after every loop, the [`ControlCommand`]s an operator may send,
//! and the cheaply clonable [`RuntimeHandle`] that carries both.
//!
//! The control API (gRPC) and the gateway are built on this module only:
//! they never touch the engine state or the store, so a slow dashboard can
//! never stall the trading loop. The snapshot is an `Arc` behind a
//! `tokio::sync::watch`, so publishing is one pointer swap and readers see
//! a consistent view of one loop.

use std::collections::BTreeMap;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};

use crate::engine::{AgeBand, OrderRole, Phase, SlotId, TradeId};
use crate::pair::Side;
use crate::runtime::control::{ActionReply, ActionRequest, ControlMessage};

/// Whether the runtime is trading, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum RuntimeMode {
    /// Placing, cancelling and processing fills.
    Running,
    /// Operator pause: no new placements or cancels; fills are still
    /// processed and journaled so the ledger never falls behind the exchange.
    Paused,
    /// Trading stopped by the runtime itself (e.g. the exchange rejected
    /// authentication); fills are still processed. Needs an operator.
    Halted {
        /// Why, in words an operator can act on.
        reason: String,
    },
}

/// One order the engine holds, as the exchange should see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderStatusView {
    /// Local id (`slot:A|B:cycle:en|ex:seq`), also the exchange `cl_ord_id`.
    pub order_id: String,
    /// Entry or exit.
    pub role: OrderRole,
    /// Buy or sell.
    pub side: Side,
    /// Limit price.
    pub price: Decimal,
    /// Ordered volume (remaining volume for a re-placed exit).
    pub volume: Decimal,
    /// Exchange id; `None` while the order is pending placement.
    pub txid: Option<String>,
}

/// One slot of the grid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotStatusView {
    /// Slot index.
    pub slot_id: SlotId,
    /// Phase derived from its orders (S0, S1a, S1b, S2).
    pub phase: Phase,
    /// `Some(reason)` when the engine halted this slot (only this slot);
    /// reported, never fatal for the others.
    pub halted: Option<String>,
    /// Orders of both trades (0 to 2).
    pub orders: Vec<OrderStatusView>,
    /// Trades without an order and why (waiting for the first price, the
    /// pair minimum, a cooldown, a placement retry).
    pub idle: Vec<(TradeId, String)>,
}

/// One open position (an exit working a filled entry, or a churner round
/// trip handed over to its slot), with its SPEC §4 age facts recomputed
/// this loop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionStatusView {
    /// Slot.
    pub slot_id: SlotId,
    /// Trade A or B.
    pub trade: TradeId,
    /// Cycle of the trade.
    pub cycle: u64,
    /// Local id of the current exit.
    pub exit_order_id: String,
    /// Ledger position id, `None` until the ledger acknowledged the open
    /// (e.g. during a ledger outage).
    pub position_id: Option<String>,
    /// `sticky` for a slot's position, `churner` for a handed-over churner
    /// round trip (its cycle is the churner's round trip number).
    #[serde(default = "sticky")]
    pub slot_mode: crate::runtime::writes::SlotModeKind,
    /// Entry price.
    pub entry_price: Decimal,
    /// Current exit price.
    pub exit_price: Decimal,
    /// Position volume.
    pub volume: Decimal,
    /// Age band (fresh ... write_off).
    pub band: AgeBand,
    /// `now - entry_time`, seconds.
    pub age_sec: i64,
    /// `|exit - market| / market x 100`.
    pub distance_pct: Decimal,
    /// Distance-weighted age, seconds.
    pub effective_age_sec: Decimal,
    /// End of an operator hold in force (unix seconds).
    #[serde(default)]
    pub hold_until: Option<i64>,
    /// SPEC §7 opportunity cost of the capital it ties up, USD (zero while
    /// no profit rate is known).
    #[serde(default)]
    pub opportunity_cost: Decimal,
}

/// What a stored snapshot without a slot mode held.
fn sticky() -> crate::runtime::writes::SlotModeKind {
    crate::runtime::writes::SlotModeKind::Sticky
}

/// Outbox health: how far the ledger lags behind the trader.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxStatusView {
    /// Ledger writes not yet acknowledged.
    pub depth: u64,
    /// Writes the ledger rejected for good (need an operator).
    pub parked: u64,
}

/// The regime detector as the status shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegimeStatusView {
    /// `bearish`, `ranging`, `bullish` or `unknown`.
    pub state: String,
    /// Posterior of that state.
    pub confidence: f64,
    /// Enough data for a label.
    pub ready: bool,
    /// Operator override expiry (unix seconds), when one is in force.
    pub override_until: Option<i64>,
}

/// One slot's subsidy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotSubsidyView {
    /// Slot.
    pub slot_id: SlotId,
    /// Spendable balance (trader's view).
    pub balance: Decimal,
    /// Still needed to bring its eligible positions to fillable.
    pub pending_need: Decimal,
    /// Subsidized repricing stopped after a refused debit.
    pub halted: bool,
}

/// The self-healing section of the status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealingStatusView {
    /// Rollout stage in force (`A`..`E`).
    pub stage: String,
    /// Regime detector.
    pub regime: RegimeStatusView,
    /// Profit target new exits are placed with.
    pub profit_target_pct: Decimal,
    /// Entries held back against a steady move (`none`, `sells`, `buys`).
    #[serde(default)]
    pub entry_hold: String,
    /// Per-slot subsidy.
    pub subsidy: Vec<SlotSubsidyView>,
    /// Repricing counters.
    pub reprices: crate::healing::RepriceStats,
    /// Lifetime credits by source.
    pub earned_by_source: BTreeMap<String, Decimal>,
    /// Lifetime subsidy spent.
    pub spent: Decimal,
    /// Closes at market by operator and by policy, with their losses.
    #[serde(default)]
    pub write_offs: crate::runtime::book::WriteOffStats,
    /// The churner.
    #[serde(default)]
    pub churner: ChurnerStatusView,
    /// Sum of every slot's pending need.
    #[serde(default)]
    pub pending_need_total: Decimal,
    /// Churner net of the last 24 h: the rate the ETA is taken from.
    #[serde(default)]
    pub churner_net_24h: Decimal,
    /// Seconds to earn `pending_need_total` at that rate (SPEC §7); `None`
    /// (unknown) while the rate is not positive.
    #[serde(default)]
    pub eta_sec: Option<i64>,
}

/// One slot's churner as the status shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChurnerSlotView {
    /// Slot.
    pub slot_id: SlotId,
    /// `idle`, `entry`, `exit` or `handed_over`.
    pub stage: String,
    /// The position it works for.
    pub parent_open_key: Option<String>,
    /// Round trip number.
    pub cycle: u64,
    /// Side of the working order.
    pub side: Option<String>,
    /// Client id of the working order.
    pub order_id: Option<String>,
    /// Exchange id of the working order.
    pub txid: Option<String>,
    /// Why it does not run.
    pub paused_reason: Option<String>,
    /// The last thing that went wrong.
    pub last_error: Option<String>,
    /// Profit compounded into its order size.
    pub compounded_usd: Decimal,
}

/// The churner's totals and slots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChurnerStatusView {
    /// `CHURNER_ENABLED`.
    pub enabled: bool,
    /// Slots with a churner entry or exit working.
    pub active: u32,
    /// Lifetime counters (with today's).
    pub stats: crate::healing::churner::ChurnStats,
    /// Reserve lent now.
    pub reserve_earmarked: Decimal,
    /// Reserve still available.
    pub reserve_available: Decimal,
    /// Most ever lent at once.
    pub reserve_peak: Decimal,
    /// Per slot (slots that ever ran a churner).
    pub slots: Vec<ChurnerSlotView>,
}

/// A ledger write the ledger refused for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedWriteView {
    /// Outbox sequence number (delivery order).
    pub seq: i64,
    /// Idempotency key of the write.
    pub key: String,
    /// Which ledger call (`OpenPosition`, `ClosePosition`, ...).
    pub kind: String,
    /// The ledger's reason.
    pub reason: String,
    /// When the step that produced it was committed, unix milliseconds.
    pub created_at_ms: i64,
}

/// Private exchange calls of the last loop against the per-loop budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetStatusView {
    /// Private calls made (queries, placements, cancels, lookups).
    pub used: u32,
    /// The configured budget per loop.
    pub limit: u32,
    /// Placements/cancels left for the next loop because the budget ran out.
    pub deferred: u32,
}

/// A consistent picture of the runtime after one loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusSnapshot {
    /// Which bot (also the ledger's `bot_id`).
    pub bot_id: String,
    /// Exchange pair symbol.
    pub pair: String,
    /// Last market price seen, `None` before the first ticker.
    pub market_price: Option<Decimal>,
    /// Seconds since that price was read (grows while the ticker fails, in
    /// which case the loop does not trade).
    pub market_price_age_sec: Option<i64>,
    /// Running, paused or halted.
    pub mode: RuntimeMode,
    /// Every slot, by id.
    pub slots: Vec<SlotStatusView>,
    /// Every open position with its band: the slots' and the churner
    /// round trips handed over to their slot.
    pub positions: Vec<PositionStatusView>,
    /// Outbox depth and parked count.
    pub outbox: OutboxStatusView,
    /// Every parked ledger write, each with why the ledger refused it: an
    /// alarm for the operator, who fixes the cause and retries them
    /// ([`ControlCommand::RetryParked`]).
    pub parked_writes: Vec<ParkedWriteView>,
    /// Self-healing: stage, regime, profit target, subsidy, reprices.
    pub healing: HealingStatusView,
    /// Unix milliseconds of the end of the last loop (0 before the first).
    pub last_loop_at_ms: i64,
    /// Loops run since start.
    pub loops: u64,
    /// Private-call budget use of the last loop.
    pub budget: BudgetStatusView,
    /// Open positions in band write_off not on hold, for the operator
    /// (SPEC §8).
    #[serde(default)]
    pub cleanup_queue: Vec<crate::healing::operator::CleanupEntry>,
    /// The 5-minute price bars of the last day (the dashboard's chart).
    #[serde(default)]
    pub price_bars: Vec<crate::healing::price_bars::PriceBar>,
}

impl StatusSnapshot {
    /// The snapshot published before the first loop ran.
    #[must_use]
    pub fn starting(bot_id: &str, pair: &str) -> Self {
        Self {
            bot_id: bot_id.to_owned(),
            pair: pair.to_owned(),
            market_price: None,
            market_price_age_sec: None,
            mode: RuntimeMode::Running,
            slots: Vec::new(),
            positions: Vec::new(),
            outbox: OutboxStatusView::default(),
            parked_writes: Vec::new(),
            healing: HealingStatusView::default(),
            last_loop_at_ms: 0,
            loops: 0,
            budget: BudgetStatusView::default(),
            cleanup_queue: Vec::new(),
            price_bars: Vec::new(),
        }
    }

    /// Open positions per band (every band present, zeros included), for
    /// dashboards and backtest reports.
    #[must_use]
    pub fn positions_by_band(&self) -> Vec<(AgeBand, usize)> {
        ALL_BANDS
            .iter()
            .map(|b| (*b, self.positions.iter().filter(|p| p.band == *b).count()))
            .collect()
    }
}

/// Every band, best first, so per-band counts are listed deterministically.
pub const ALL_BANDS: [AgeBand; 5] = [
    AgeBand::Fresh,
    AgeBand::Aging,
    AgeBand::Stale,
    AgeBand::Stuck,
    AgeBand::WriteOff,
];

/// What an operator can ask the running loop to do. Applied between loops,
/// never in the middle of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlCommand {
    /// Stop placing and cancelling (fills still processed and journaled).
    Pause,
    /// Resume trading after a pause (also clears an operator-clearable
    /// halt).
    Resume,
    /// Send every parked ledger write again (after the operator fixed why
    /// the ledger refused it). A write the ledger refuses again parks again.
    RetryParked,
}

/// Why a command could not be handed to the runtime.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ControlError {
    /// The runtime loop has stopped (shutdown); nothing will apply it.
    #[error("the trader runtime is not running")]
    Stopped,
}

/// Handle to a running runtime: read its status, send it commands. Clone it
/// freely (one per gRPC connection); every clone talks to the same loop.
#[derive(Debug, Clone)]
pub struct RuntimeHandle {
    status: watch::Receiver<Arc<StatusSnapshot>>,
    commands: mpsc::Sender<ControlMessage>,
}

/// The runtime's side of a [`RuntimeHandle`]: where it publishes snapshots
/// and receives commands.
#[derive(Debug)]
pub struct HandleEnds {
    /// Publishes a new snapshot after every loop.
    pub status: watch::Sender<Arc<StatusSnapshot>>,
    /// Commands and actions from every handle clone, serviced between
    /// loops.
    pub commands: mpsc::Receiver<ControlMessage>,
}

/// Commands queued at most; a full queue makes [`RuntimeHandle::send`] wait
/// for the loop, which is fine for operator actions.
const COMMAND_QUEUE: usize = 32;

impl RuntimeHandle {
    /// A connected handle and the runtime's ends, starting from `initial`.
    #[must_use]
    pub fn channel(initial: StatusSnapshot) -> (Self, HandleEnds) {
        let (status_tx, status_rx) = watch::channel(Arc::new(initial));
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
        (
            Self {
                status: status_rx,
                commands: cmd_tx,
            },
            HandleEnds {
                status: status_tx,
                commands: cmd_rx,
            },
        )
    }

    /// The latest published snapshot (cheap: an `Arc` clone).
    #[must_use]
    pub fn status(&self) -> Arc<StatusSnapshot> {
        self.status.borrow().clone()
    }

    /// A receiver that wakes on every new snapshot (for streaming APIs).
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<Arc<StatusSnapshot>> {
        self.status.clone()
    }

    /// Queues a command; it takes effect before the next loop.
    ///
    /// # Errors
    /// [`ControlError::Stopped`] when the runtime loop is gone.
    pub async fn send(&self, command: ControlCommand) -> Result<(), ControlError> {
        self.commands
            .send(ControlMessage::Switch(command))
            .await
            .map_err(|_| ControlError::Stopped)
    }

    /// Hands an operator action to the loop and waits for its answer (the
    /// loop runs it between two steps).
    ///
    /// # Errors
    /// [`ControlError::Stopped`] when the runtime loop is gone (or went
    /// away before answering).
    pub async fn request(&self, request: ActionRequest) -> Result<ActionReply, ControlError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(ControlMessage::Action(request, tx))
            .await
            .map_err(|_| ControlError::Stopped)?;
        rx.await.map_err(|_| ControlError::Stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves: a handle sees what the runtime publishes, and commands sent on
    /// any clone arrive at the runtime's end in order.
    #[tokio::test]
    async fn handle_round_trip() {
        let (handle, mut ends) = RuntimeHandle::channel(StatusSnapshot::starting("bot", "XDGUSD"));
        assert_eq!(handle.status().loops, 0);
        let mut next = StatusSnapshot::starting("bot", "XDGUSD");
        next.loops = 3;
        ends.status.send_replace(Arc::new(next));
        assert_eq!(handle.status().loops, 3);
        let other = handle.clone();
        handle.send(ControlCommand::Pause).await.unwrap();
        other.send(ControlCommand::Resume).await.unwrap();
        for want in [ControlCommand::Pause, ControlCommand::Resume] {
            match ends.commands.recv().await {
                Some(ControlMessage::Switch(c)) => assert_eq!(c, want),
                other => panic!("unexpected {other:?}"),
            }
        }
        drop(ends);
        assert_eq!(
            handle.send(ControlCommand::Pause).await,
            Err(ControlError::Stopped)
        );
    }

    /// Proves: the snapshot serialises (the gateway exposes it as JSON) and
    /// per-band counts list every band.
    #[test]
    fn snapshot_serialises_and_counts_bands() {
        let s = StatusSnapshot::starting("bot", "XDGUSD");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["mode"]["mode"], "running");
        assert_eq!(s.positions_by_band().len(), 5);
    }
}
