//! The trader's status as JSON, and what is derived from it: positions per
//! band and the band x slot heat map.

use std::collections::BTreeMap;

use healgrid_proto::convert::format_decimal;
use healgrid_proto::trader::v1 as pb;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{decimal, non_empty, rfc3339};

/// Trading mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Placing, cancelling and processing fills.
    Running,
    /// Operator pause.
    Paused,
    /// Stopped by the trader itself; see `mode_reason`.
    Halted,
    /// The trader sent a value this gateway does not know.
    Unknown,
}

/// Age band of an open position (SPEC §4).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    /// Young.
    Fresh,
    /// Getting old.
    Aging,
    /// Old.
    Stale,
    /// Very old.
    Stuck,
    /// Candidate for the cleanup queue.
    WriteOff,
    /// The trader sent a value this gateway does not know.
    Unknown,
}

/// Every real band, best first.
pub const BANDS: [Band; 5] = [
    Band::Fresh,
    Band::Aging,
    Band::Stale,
    Band::Stuck,
    Band::WriteOff,
];

impl Band {
    fn from_wire(v: i32) -> Self {
        match pb::AgeBand::try_from(v) {
            Ok(pb::AgeBand::Fresh) => Self::Fresh,
            Ok(pb::AgeBand::Aging) => Self::Aging,
            Ok(pb::AgeBand::Stale) => Self::Stale,
            Ok(pb::AgeBand::Stuck) => Self::Stuck,
            Ok(pb::AgeBand::WriteOff) => Self::WriteOff,
            _ => Self::Unknown,
        }
    }

    /// The query-string and JSON name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::Aging => "aging",
            Self::Stale => "stale",
            Self::Stuck => "stuck",
            Self::WriteOff => "write_off",
            Self::Unknown => "unknown",
        }
    }
}

/// Whose an open position is: the slot's own trade cycle, or a churner
/// round trip handed over to its slot (SPEC §6). The operator tells them
/// apart before acting on one in the cleanup queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlotMode {
    /// A slot's trade cycle.
    Sticky,
    /// A churner round trip handed over to its slot.
    Churner,
    /// The trader sent no value or one this gateway does not know.
    Unknown,
}

impl SlotMode {
    /// From the trader's wire value (a status position's or a cleanup
    /// queue entry's): the one conversion of it.
    #[must_use]
    pub fn from_wire(v: i32) -> Self {
        match pb::PositionSlotMode::try_from(v) {
            Ok(pb::PositionSlotMode::Sticky) => Self::Sticky,
            Ok(pb::PositionSlotMode::Churner) => Self::Churner,
            _ => Self::Unknown,
        }
    }

    /// The JSON name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sticky => "sticky",
            Self::Churner => "churner",
            Self::Unknown => "unknown",
        }
    }
}

/// Last market price and its age.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Market {
    /// Decimal string; absent before the first ticker.
    pub price: Option<String>,
    /// Seconds since it was read.
    pub age_seconds: Option<i64>,
}

/// Ledger outbox of the trader.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Outbox {
    /// Writes not yet acknowledged by the ledger.
    pub depth: u64,
    /// Writes the ledger rejected for good (need an operator).
    pub parked: u64,
}

/// Private-call budget of the last loop.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Budget {
    /// Calls made.
    pub used: u32,
    /// Budget per loop.
    pub limit: u32,
    /// Placements and cancels left for the next loop.
    pub deferred: u32,
}

/// One order of a slot.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Order {
    /// Local id, also the exchange client order id.
    pub order_id: String,
    /// `entry` or `exit`.
    pub role: String,
    /// `buy` or `sell`.
    pub side: String,
    /// Limit price (decimal string).
    pub price: String,
    /// Volume (decimal string).
    pub volume: String,
    /// Exchange id; absent while the placement is pending.
    pub txid: Option<String>,
}

/// One grid slot.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Slot {
    /// Slot id (0 included).
    pub slot_id: u32,
    /// `s0`, `s1a`, `s1b`, `s2` or `unknown`.
    pub phase: String,
    /// Why the engine halted this slot; absent when it trades.
    pub halted_reason: Option<String>,
    /// Its orders.
    pub orders: Vec<Order>,
}

/// One open position as the trader sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OpenPosition {
    /// Slot.
    pub slot_id: u32,
    /// `a` (short leg) or `b` (long leg).
    pub trade: String,
    /// Cycle of the trade.
    pub cycle: u64,
    /// Local id of the exit order.
    pub exit_order_id: String,
    /// Ledger position id; absent until the ledger acknowledged the open.
    pub position_id: Option<String>,
    /// Decimal string.
    pub entry_price: String,
    /// Current exit price (decimal string).
    pub exit_price: String,
    /// Decimal string.
    pub volume: String,
    /// Age band.
    pub band: Band,
    /// Sticky (the slot's trade cycle) or churner (a handed-over churner
    /// round trip).
    pub slot_mode: SlotMode,
    /// Seconds since entry.
    pub age_seconds: i64,
    /// |exit - market| / market x 100 (decimal string).
    pub distance_pct: String,
    /// Distance-weighted age, seconds (decimal string).
    pub effective_age_seconds: String,
    /// SPEC §7 opportunity cost of the capital it ties up, USD (decimal
    /// string; "0" while the trader knows no profit rate).
    pub opportunity_cost: String,
}

/// Open positions of one band.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BandCount {
    /// The band.
    pub band: Band,
    /// Open positions in it.
    pub count: usize,
    /// Sum of entry price x volume (decimal string, quote currency).
    pub capital: String,
}

/// The trader's self-healing section (absent from traders that predate it).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Healing {
    /// Rollout stage in force, `A`..`E`.
    pub stage: String,
    /// Regime label: bearish, ranging, bullish or unknown.
    pub regime: String,
    /// Posterior of that label (0..1).
    pub regime_confidence: f64,
    /// Whether the regime detector has enough data.
    pub regime_ready: bool,
    /// Profit target new exits are placed with, percent (decimal string).
    pub profit_target_pct: String,
    /// Entries held back against a steady move: none, sells or buys.
    pub entry_hold: String,
    /// Subsidy still needed per slot to bring its eligible positions to
    /// their fillable price (decimal strings), by slot id. JSON object keys
    /// are strings, so the schema says so (an integer key type would make
    /// every answer fail validation).
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub pending_need: std::collections::BTreeMap<u32, String>,
    /// Reprices that took effect: tighten, subsidized (full + partial),
    /// loss-funded.
    pub reprices: [u64; 3],
    /// Sum of the pending need of every slot (decimal string, USD).
    pub pending_need_total: String,
    /// Churner net of the last 24 h (decimal string, USD): the ETA's rate.
    pub churner_net_24h_usd: String,
    /// Seconds to earn the pending need at that rate; absent (unknown)
    /// while the rate is not positive, 0 when nothing is needed.
    pub eta_seconds: Option<i64>,
}

/// The healing section of a trader status.
#[must_use]
pub fn healing(h: &pb::Healing) -> Healing {
    let r = h.regime.clone().unwrap_or_default();
    let c = h.reprices.clone().unwrap_or_default();
    Healing {
        stage: h.stage.clone(),
        regime: non_empty(&r.state).unwrap_or_else(|| "unknown".into()),
        regime_confidence: r.confidence,
        regime_ready: r.ready,
        profit_target_pct: h.profit_target_pct.clone(),
        entry_hold: non_empty(&h.entry_hold).unwrap_or_else(|| "none".into()),
        pending_need: h
            .subsidy
            .iter()
            .map(|s| (s.slot_id, s.pending_need.clone()))
            .collect(),
        reprices: [
            c.tighten,
            c.subsidized_full + c.subsidized_partial,
            c.loss_funded,
        ],
        pending_need_total: h.pending_need_total.clone(),
        churner_net_24h_usd: h.churner_net_24h_usd.clone(),
        eta_seconds: h.eta_seconds,
    }
}

/// The trader's status.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Status {
    /// The ledger's bot id.
    pub bot_id: String,
    /// Exchange pair symbol.
    pub pair: String,
    /// Running, paused or halted.
    pub mode: Mode,
    /// Why the trader halted.
    pub mode_reason: Option<String>,
    /// Market price and age.
    pub market: Market,
    /// Loops since start.
    pub loops: u64,
    /// End of the last loop (RFC 3339); absent before the first loop.
    pub last_loop_at: Option<String>,
    /// Ledger outbox.
    pub outbox: Outbox,
    /// Private-call budget.
    pub budget: Budget,
    /// Every slot.
    pub slots: Vec<Slot>,
    /// Every open position.
    pub positions: Vec<OpenPosition>,
    /// Open positions per band (every band listed).
    pub bands: Vec<BandCount>,
    /// Self-healing: stage, regime, profit target, pending need, reprices.
    pub healing: Option<Healing>,
}

fn mode(v: i32) -> Mode {
    match pb::Mode::try_from(v) {
        Ok(pb::Mode::Running) => Mode::Running,
        Ok(pb::Mode::Paused) => Mode::Paused,
        Ok(pb::Mode::Halted) => Mode::Halted,
        _ => Mode::Unknown,
    }
}

fn phase(v: i32) -> &'static str {
    match pb::Phase::try_from(v) {
        Ok(pb::Phase::S0) => "s0",
        Ok(pb::Phase::S1a) => "s1a",
        Ok(pb::Phase::S1b) => "s1b",
        Ok(pb::Phase::S2) => "s2",
        _ => "unknown",
    }
}

fn order(o: &pb::Order) -> Order {
    Order {
        order_id: o.order_id.clone(),
        role: match pb::OrderRole::try_from(o.role) {
            Ok(pb::OrderRole::Entry) => "entry",
            Ok(pb::OrderRole::Exit) => "exit",
            _ => "unknown",
        }
        .into(),
        side: match pb::Side::try_from(o.side) {
            Ok(pb::Side::Buy) => "buy",
            Ok(pb::Side::Sell) => "sell",
            _ => "unknown",
        }
        .into(),
        price: o.price.clone(),
        volume: o.volume.clone(),
        txid: non_empty(&o.txid),
    }
}

fn position(p: &pb::Position) -> OpenPosition {
    OpenPosition {
        slot_id: p.slot_id,
        trade: match pb::Trade::try_from(p.trade) {
            Ok(pb::Trade::A) => "a",
            Ok(pb::Trade::B) => "b",
            _ => "unknown",
        }
        .into(),
        cycle: p.cycle,
        exit_order_id: p.exit_order_id.clone(),
        position_id: non_empty(&p.position_id),
        entry_price: p.entry_price.clone(),
        exit_price: p.exit_price.clone(),
        volume: p.volume.clone(),
        band: Band::from_wire(p.band),
        slot_mode: SlotMode::from_wire(p.slot_mode),
        age_seconds: p.age_seconds,
        distance_pct: p.distance_pct.clone(),
        effective_age_seconds: p.effective_age_seconds.clone(),
        opportunity_cost: p.opportunity_cost.clone(),
    }
}

/// Capital of a position: entry price x volume (zero when either is not a
/// number, so one bad value never hides the rest).
#[must_use]
pub fn capital(p: &OpenPosition) -> Decimal {
    match (decimal(&p.entry_price), decimal(&p.volume)) {
        (Some(price), Some(volume)) => price.checked_mul(volume).unwrap_or_default(),
        _ => Decimal::ZERO,
    }
}

/// Count and capital per band, every band listed.
#[must_use]
pub fn band_counts(positions: &[OpenPosition]) -> Vec<BandCount> {
    BANDS
        .iter()
        .map(|b| {
            let of_band = positions.iter().filter(|p| p.band == *b);
            BandCount {
                band: *b,
                count: of_band.clone().count(),
                capital: format_decimal(of_band.map(capital).sum()),
            }
        })
        .collect()
}

/// The JSON view of a trader status.
#[must_use]
pub fn status(r: &pb::GetStatusResponse) -> Status {
    let positions: Vec<OpenPosition> = r.positions.iter().map(position).collect();
    Status {
        bot_id: r.bot_id.clone(),
        pair: r.pair.clone(),
        mode: mode(r.mode),
        mode_reason: non_empty(&r.mode_reason),
        market: Market {
            price: non_empty(&r.market_price),
            age_seconds: r.market_price_age_seconds,
        },
        loops: r.loops,
        last_loop_at: rfc3339(r.last_loop_at.as_ref()),
        outbox: r.outbox.as_ref().map_or(
            Outbox {
                depth: 0,
                parked: 0,
            },
            |o| Outbox {
                depth: o.depth,
                parked: o.parked,
            },
        ),
        budget: r.budget.as_ref().map_or(
            Budget {
                used: 0,
                limit: 0,
                deferred: 0,
            },
            |b| Budget {
                used: b.used,
                limit: b.limit,
                deferred: b.deferred,
            },
        ),
        slots: r
            .slots
            .iter()
            .map(|s| Slot {
                slot_id: s.slot_id,
                phase: phase(s.phase).into(),
                halted_reason: non_empty(&s.halted_reason),
                orders: s.orders.iter().map(order).collect(),
            })
            .collect(),
        bands: band_counts(&positions),
        healing: r.healing.as_ref().map(healing),
        positions,
    }
}

/// One cell of the band x slot heat map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeatCell {
    /// Open positions.
    pub count: usize,
    /// Their capital.
    pub capital: Decimal,
}

/// Open positions by (slot, band): count and capital. Slots without open
/// positions are absent.
#[must_use]
pub fn heatmap(positions: &[OpenPosition]) -> BTreeMap<(u32, Band), HeatCell> {
    let mut cells: BTreeMap<(u32, Band), HeatCell> = BTreeMap::new();
    for p in positions {
        let cell = cells.entry((p.slot_id, p.band)).or_insert(HeatCell {
            count: 0,
            capital: Decimal::ZERO,
        });
        cell.count += 1;
        cell.capital += capital(p);
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(slot: u32, band: pb::AgeBand, price: &str, volume: &str, age: i64) -> pb::Position {
        pb::Position {
            slot_id: slot,
            trade: pb::Trade::B as i32,
            band: band as i32,
            entry_price: price.into(),
            exit_price: price.into(),
            volume: volume.into(),
            age_seconds: age,
            ..Default::default()
        }
    }

    /// Proves: an empty status (trader before its first loop) converts
    /// with absent fields as `None`, and bands and heat map are derived
    /// with exact decimal capital.
    #[test]
    fn converts_and_derives() {
        let empty = status(&pb::GetStatusResponse::default());
        assert_eq!(empty.mode, Mode::Unknown);
        assert!(empty.market.price.is_none() && empty.last_loop_at.is_none());
        assert_eq!(empty.bands.len(), 5);

        let r = pb::GetStatusResponse {
            mode: pb::Mode::Paused as i32,
            market_price: "0.1".into(),
            positions: vec![
                pos(0, pb::AgeBand::Fresh, "0.1", "100", 10),
                pos(0, pb::AgeBand::WriteOff, "0.1", "50", 99),
                pos(2, pb::AgeBand::WriteOff, "0.2", "50", 500),
                pos(2, pb::AgeBand::Unspecified, "junk", "1", 1),
            ],
            ..Default::default()
        };
        let s = status(&r);
        assert_eq!(s.mode, Mode::Paused);
        let wo = s.bands.iter().find(|b| b.band == Band::WriteOff).unwrap();
        assert_eq!((wo.count, wo.capital.as_str()), (2, "15"));
        let heat = heatmap(&s.positions);
        assert_eq!(heat[&(0, Band::Fresh)].capital, Decimal::TEN);
        assert_eq!(heat[&(2, Band::Unknown)].capital, Decimal::ZERO);
    }

    /// Proves: the wire slot mode of a status position converts (an unset
    /// one is `unknown`) and is `slot_mode` in its JSON.
    #[test]
    fn positions_carry_their_slot_mode() {
        let with = |id: &str, mode: pb::PositionSlotMode| pb::Position {
            position_id: id.into(),
            slot_mode: mode as i32,
            ..pos(1, pb::AgeBand::WriteOff, "0.1", "1", 1)
        };
        let s = status(&pb::GetStatusResponse {
            positions: vec![
                with("11", pb::PositionSlotMode::Sticky),
                with("12", pb::PositionSlotMode::Churner),
                with("13", pb::PositionSlotMode::Unspecified),
            ],
            ..Default::default()
        });
        let modes: Vec<SlotMode> = s.positions.iter().map(|p| p.slot_mode).collect();
        assert_eq!(
            modes,
            [SlotMode::Sticky, SlotMode::Churner, SlotMode::Unknown]
        );
        assert_eq!(modes[2].as_str(), "unknown");
        assert_eq!(
            serde_json::to_value(&s.positions[1]).unwrap()["slot_mode"],
            "churner"
        );
    }
}
