//! The trader's operator views as JSON: the cleanup queue
//! (`ListCleanupQueue`), the churner section of the status, the price bars
//! (`GetCandles`) and the answer of an operator action. Pure conversions;
//! decimals stay strings.

use healgrid_proto::trader::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::status::SlotMode;
use super::{non_empty, rfc3339};

/// One position of the cleanup queue (SPEC §8): open, band `write_off`,
/// not on hold.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CleanupEntry {
    /// Ledger position id.
    pub position_id: String,
    /// Slot.
    pub slot_id: u32,
    /// `a` (short leg: buy exit) or `b` (long leg: sell exit).
    pub trade: String,
    /// Decimal string.
    pub entry_price: String,
    /// Current exit price (decimal string).
    pub exit_price: String,
    /// Remaining volume (decimal string).
    pub volume: String,
    /// Seconds since entry.
    pub age_seconds: i64,
    /// |exit - market| / market x 100 (decimal string).
    pub distance_pct: String,
    /// Distance-weighted age, seconds (decimal string).
    pub effective_age_seconds: String,
    /// Subsidy needed to bring the exit to its fillable price, USD.
    pub subsidy_needed: String,
    /// What the capital it ties up costs in lost trading, USD (SPEC §7).
    pub opportunity_cost: String,
    /// Actions available now: `reprice_to_breakeven`, `close_at_market`,
    /// `keep_holding`.
    pub actions: Vec<String>,
    /// `sticky` (the slot's own trade cycle) or `churner` (a churner round
    /// trip handed over to its slot: closing it ends a churner cycle), as
    /// the trader reports it; `unknown` from a trader that does not.
    pub slot_mode: SlotMode,
}

/// The cleanup queue, oldest effective age first.
#[must_use]
pub fn cleanup_queue(r: &pb::ListCleanupQueueResponse) -> Vec<CleanupEntry> {
    r.positions
        .iter()
        .map(|p| CleanupEntry {
            position_id: p.position_id.clone(),
            slot_id: p.slot_id,
            trade: p.trade.to_lowercase(),
            entry_price: p.entry_price.clone(),
            exit_price: p.exit_price.clone(),
            volume: p.volume.clone(),
            age_seconds: p.age_seconds,
            distance_pct: p.distance_pct.clone(),
            effective_age_seconds: p.effective_age_seconds.clone(),
            subsidy_needed: p.subsidy_needed.clone(),
            opportunity_cost: p.opportunity_cost.clone(),
            actions: p.actions.clone(),
            slot_mode: SlotMode::from_wire(p.slot_mode),
        })
        .collect()
}

/// One slot's churner.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChurnerSlot {
    /// Slot.
    pub slot_id: u32,
    /// `idle`, `entry`, `exit` or `handed_over`.
    pub stage: String,
    /// Open key of the position it works for.
    pub parent_open_key: Option<String>,
    /// Round trip number.
    pub cycle: u64,
    /// Side of the working order.
    pub side: Option<String>,
    /// Client id of the working order.
    pub order_id: Option<String>,
    /// Exchange id of the working order.
    pub txid: Option<String>,
    /// Why it does not run (e.g. `killed`, `not_ranging`).
    pub paused_reason: Option<String>,
    /// Last error it met.
    pub last_error: Option<String>,
    /// Profit compounded into its order size, USD.
    pub compounded_usd: String,
}

/// The churner's activity (SPEC §6).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Churners {
    /// Whether the trader runs churners at all.
    pub enabled: bool,
    /// Churners running now.
    pub active: u32,
    /// Round trips completed today (UTC) and their profit, USD.
    pub cycles_today: u64,
    /// Decimal string.
    pub profit_today_usd: String,
    /// Lifetime round trips, of which losing, and their net, USD.
    pub cycles: u64,
    /// Losing round trips.
    pub losing_cycles: u64,
    /// Decimal string.
    pub net_usd: String,
    /// Round trips handed over to their slot.
    pub handed_over: u64,
    /// Reserve lent now, USD.
    pub reserve_earmarked_usd: String,
    /// Reserve still available, USD.
    pub reserve_available_usd: String,
    /// Most ever lent at once, USD.
    pub reserve_peak_usd: String,
    /// Per slot.
    pub slots: Vec<ChurnerSlot>,
}

/// The churner section of a status; `None` when the trader reports no
/// healing section (one that predates it).
#[must_use]
pub fn churners(r: &pb::GetStatusResponse) -> Option<Churners> {
    let c = r.healing.as_ref()?.churner.clone().unwrap_or_default();
    Some(Churners {
        enabled: c.enabled,
        active: c.active,
        cycles_today: c.cycles_today,
        profit_today_usd: c.profit_today_usd,
        cycles: c.cycles,
        losing_cycles: c.losing_cycles,
        net_usd: c.net_usd,
        handed_over: c.handed_over,
        reserve_earmarked_usd: c.reserve_earmarked_usd,
        reserve_available_usd: c.reserve_available_usd,
        reserve_peak_usd: c.reserve_peak_usd,
        slots: c
            .slots
            .iter()
            .map(|s| ChurnerSlot {
                slot_id: s.slot_id,
                stage: s.stage.clone(),
                parent_open_key: non_empty(&s.parent_open_key),
                cycle: s.cycle,
                side: non_empty(&s.side),
                order_id: non_empty(&s.order_id),
                txid: non_empty(&s.txid),
                paused_reason: non_empty(&s.paused_reason),
                last_error: non_empty(&s.last_error),
                compounded_usd: s.compounded_usd.clone(),
            })
            .collect(),
    })
}

/// One 5-minute bar of the prices the trader observed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Candle {
    /// Bar start, unix seconds.
    pub start: i64,
    /// Decimal strings.
    pub open: String,
    /// Highest.
    pub high: String,
    /// Lowest.
    pub low: String,
    /// Last.
    pub close: String,
    /// Prices observed in the bar.
    pub samples: u32,
}

/// The price bars for the chart.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Candles {
    /// Bar length, seconds.
    pub bar_seconds: i64,
    /// Oldest first; the open bar last. Kept by the trader in memory for a
    /// day: empty after a trader restart until it has seen prices again.
    pub candles: Vec<Candle>,
}

/// The bars of a `GetCandles` answer.
#[must_use]
pub fn candles(r: &pb::GetCandlesResponse) -> Candles {
    Candles {
        bar_seconds: r.bar_seconds,
        candles: r
            .bars
            .iter()
            .map(|b| Candle {
                start: b.start_unix,
                open: b.open.clone(),
                high: b.high.clone(),
                low: b.low.clone(),
                close: b.close.clone(),
                samples: b.samples,
            })
            .collect(),
    }
}

/// What an accepted operator action did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ActionAnswer {
    /// `reprice_to_breakeven`, `close_at_market`, `keep_holding`,
    /// `release_hold`, `spawn_churner`, `kill_churner`,
    /// `set_churner_reserve` or `set_regime_override`.
    pub action: String,
    /// The position acted on, if any.
    pub position_id: Option<String>,
    /// What happened, in words.
    pub message: String,
    /// When the trader accepted it (RFC 3339).
    pub at: Option<String>,
    /// True when the trader had already done this under the same key (a
    /// retry after a gateway restart): nothing was done again.
    pub replayed: bool,
}

/// The answer of an operator RPC.
#[must_use]
pub fn action_answer(r: &pb::OperatorActionResponse) -> ActionAnswer {
    ActionAnswer {
        action: r.action.clone(),
        position_id: non_empty(&r.position_id),
        message: r.message.clone(),
        at: rfc3339(r.at.as_ref()),
        replayed: r.replayed,
    }
}
