//! The churner's state: per slot stage and counters, the shared reserve,
//! and lifetime figures. Plain serde data, persisted by the runtime with
//! the engine state in one commit, so a restart resumes exactly.

use std::collections::{BTreeMap, VecDeque};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::engine::{FillTotals, HealFacts, MarketClose, PendingReprice, SlotId, TradeId};
use crate::healing::throughput::{ChurnerProfit, ETA_WINDOW_SEC, eta_sec, net_in_window};
use crate::pair::Side;

/// Everything the churner remembers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChurnBook {
    /// Per slot.
    pub slots: BTreeMap<SlotId, SlotChurn>,
    /// The shared reserve's loans.
    pub reserve: Reserve,
    /// Lifetime counters.
    pub stats: ChurnStats,
    /// Recent outcomes and the cool-off they imposed.
    pub hits: super::HitRecord,
}

impl ChurnBook {
    /// Slots whose churner has an entry or an exit of its own working (a
    /// handed-over round trip belongs to the slot and does not count).
    #[must_use]
    pub fn active(&self) -> usize {
        self.slots
            .values()
            .filter(|s| matches!(s.stage, ChurnStage::Entry { .. } | ChurnStage::Exit { .. }))
            .count()
    }

    /// Open keys of the round trips that are open positions (entry filled,
    /// exit working).
    pub fn open_keys(&self) -> impl Iterator<Item = &str> {
        self.slots.values().filter_map(|s| match &s.stage {
            ChurnStage::Exit { position, .. } | ChurnStage::HandedOver { position, .. } => {
                Some(position.open_key.as_str())
            }
            _ => None,
        })
    }

    /// Records the ledger's id of the open round trip `open_key`; false
    /// when no open round trip has that key (closed since, or not ours).
    pub fn set_position_id(&mut self, open_key: &str, position_id: &str) -> bool {
        for s in self.slots.values_mut() {
            if let ChurnStage::Exit { position, .. } | ChurnStage::HandedOver { position, .. } =
                &mut s.stage
                && position.open_key == open_key
            {
                position.position_id = Some(position_id.to_owned());
                return true;
            }
        }
        false
    }

    /// Open keys of the open round trips whose ledger id is not known yet.
    pub fn open_keys_without_id(&self) -> impl Iterator<Item = &str> {
        self.slots.values().filter_map(|s| match &s.stage {
            ChurnStage::Exit { position, .. } | ChurnStage::HandedOver { position, .. }
                if position.position_id.is_none() =>
            {
                Some(position.open_key.as_str())
            }
            _ => None,
        })
    }

    /// What closing every open round trip at `price` would add: gross
    /// against its entry, less its entry fee, the fees already paid on its
    /// exit, and an exit fee at `maker_pct` (a backtest's mark-to-market).
    #[must_use]
    pub fn unrealized(&self, price: Decimal, maker_pct: Decimal) -> Decimal {
        self.slots
            .values()
            .filter_map(|s| match &s.stage {
                ChurnStage::Exit {
                    order, position, ..
                }
                | ChurnStage::HandedOver {
                    order, position, ..
                } => {
                    let open = position.volume - order.fills.volume;
                    let done = match order.side {
                        Side::Sell => {
                            order.fills.notional - position.entry_price * order.fills.volume
                        }
                        Side::Buy => {
                            position.entry_price * order.fills.volume - order.fills.notional
                        }
                    };
                    let gross = match order.side {
                        Side::Sell => (price - position.entry_price) * open,
                        Side::Buy => (position.entry_price - price) * open,
                    };
                    Some(
                        gross + done
                            - position.entry_fee
                            - order.fills.fee
                            - price * open * maker_pct / Decimal::ONE_HUNDRED,
                    )
                }
                _ => None,
            })
            .sum()
    }

    /// Every churner order, with its slot.
    pub fn orders(&self) -> impl Iterator<Item = &ChurnOrder> {
        self.slots.values().filter_map(|s| s.stage.order())
    }

    /// Filled churner inventory (base volume) with neither a working exit
    /// (placed, being placed, or due again) nor a closed position: always
    /// zero (the property the tests check after every loop).
    #[must_use]
    pub fn naked_inventory(&self) -> Decimal {
        self.slots
            .values()
            .map(|s| match &s.stage {
                ChurnStage::Entry { order, .. } => {
                    // A partly filled entry still working covers itself:
                    // it will complete or be given an exit when it leaves.
                    if order.txid.is_some() || order.sending {
                        Decimal::ZERO
                    } else {
                        order.fills.volume
                    }
                }
                ChurnStage::Exit {
                    order, position, ..
                }
                | ChurnStage::HandedOver {
                    order, position, ..
                } => {
                    let open = position.volume - order.fills.volume;
                    if open > Decimal::ZERO && order.volume < open {
                        open - order.volume
                    } else {
                        Decimal::ZERO
                    }
                }
                ChurnStage::Idle => Decimal::ZERO,
            })
            .sum()
    }
}

/// One slot's churner.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SlotChurn {
    /// Where the churner is.
    pub stage: ChurnStage,
    /// Round trips started (the churner's own cycle numbers: they never
    /// meet the slot's trade cycles, and the ledger tells them apart by
    /// `slot_mode = churner` and the `churn:` open key).
    pub cycle: u64,
    /// Client id sequence (unique per slot).
    pub seq: u64,
    /// Profit compounded into this slot's churner order size, USD.
    pub compounded_usd: Decimal,
    /// Why the churner is not running, when it is not.
    pub paused: Option<PauseReason>,
    /// The last thing that went wrong, for the status.
    pub last_error: Option<String>,
    /// An operator's spawn or kill in force.
    pub manual: Option<super::ManualCommand>,
}

/// Stage of a slot's churner.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum ChurnStage {
    /// Nothing working.
    #[default]
    Idle,
    /// The entry rests (or is being placed or cancelled).
    Entry {
        /// The order.
        order: ChurnOrder,
        /// The position it works for.
        parent: ParentRef,
        /// Who pays for it.
        funding: Funding,
        /// A cancel in flight and why.
        cancel: Option<CancelWhy>,
    },
    /// The entry filled; the exit rests.
    Exit {
        /// The exit.
        order: ChurnOrder,
        /// The round trip.
        position: ChurnPosition,
        /// The position it works for.
        parent: ParentRef,
        /// Who paid for the entry.
        funding: Funding,
    },
    /// The exit outlived its timeout: the slot holds the round trip like
    /// any position; the exit stays and the churner pauses until it fills.
    HandedOver {
        /// The exit.
        order: ChurnOrder,
        /// The round trip.
        position: ChurnPosition,
        /// The position it worked for.
        parent: ParentRef,
        /// Who paid for the entry (a loan stays out until it closes).
        funding: Funding,
        /// When it was handed over.
        at: i64,
        /// Healing facts (tighten done, last paid reprice, reprice count),
        /// as a slot's exit keeps them.
        #[serde(default)]
        heal: HealFacts,
        /// A reprice decided by healing whose cancel is not confirmed yet.
        #[serde(default)]
        reprice: Option<PendingReprice>,
        /// An operator's close at market in progress (SPEC §8), as a
        /// slot's exit keeps it: the exit is being cancelled, or the
        /// remainder's market order is the working order.
        #[serde(default)]
        close: Option<MarketClose>,
    },
}

impl ChurnStage {
    /// The order working in this stage.
    #[must_use]
    pub fn order(&self) -> Option<&ChurnOrder> {
        match self {
            Self::Idle => None,
            Self::Entry { order, .. }
            | Self::Exit { order, .. }
            | Self::HandedOver { order, .. } => Some(order),
        }
    }

    /// The exit working filled inventory in this stage (not an entry).
    #[must_use]
    pub fn exit(&self) -> Option<&ChurnOrder> {
        match self {
            Self::Exit { order, .. } | Self::HandedOver { order, .. } => Some(order),
            Self::Idle | Self::Entry { .. } => None,
        }
    }

    /// Mutable access to the working order.
    pub fn order_mut(&mut self) -> Option<&mut ChurnOrder> {
        match self {
            Self::Idle => None,
            Self::Entry { order, .. }
            | Self::Exit { order, .. }
            | Self::HandedOver { order, .. } => Some(order),
        }
    }

    /// Short name for logs and the status.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Entry { .. } => "entry",
            Self::Exit { .. } => "exit",
            Self::HandedOver { .. } => "handed_over",
        }
    }

    /// The parent this stage works for.
    #[must_use]
    pub fn parent(&self) -> Option<&ParentRef> {
        match self {
            Self::Idle => None,
            Self::Entry { parent, .. }
            | Self::Exit { parent, .. }
            | Self::HandedOver { parent, .. } => Some(parent),
        }
    }

    /// Whether a cancel of the working order was decided: an entry's, or
    /// a handed-over exit's being repriced (its remainder is placed again
    /// at the new price once the cancel is confirmed) or closed at market
    /// (its remainder goes out as a market order then).
    #[must_use]
    pub fn cancel_requested(&self) -> bool {
        match self {
            Self::Entry { cancel, .. } => cancel.is_some(),
            Self::HandedOver { reprice, close, .. } => {
                reprice.is_some() || close.is_some_and(|c| !c.market_order)
            }
            Self::Idle | Self::Exit { .. } => false,
        }
    }

    /// Whether the working order is the market order of a close at market.
    #[must_use]
    pub fn market_close(&self) -> bool {
        matches!(self, Self::HandedOver { close: Some(c), .. } if c.market_order)
    }
}

/// One churner order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChurnOrder {
    /// Client id (`ch:slot:cycle:en|ex:seq`).
    pub id: String,
    /// Slot.
    pub slot: SlotId,
    /// Buy or sell.
    pub side: Side,
    /// Limit price (tick grid).
    pub price: Decimal,
    /// Volume of this placement (lot grid).
    pub volume: Decimal,
    /// Exchange id once placed.
    pub txid: Option<String>,
    /// Write-ahead: a placement was sent (or is about to be) and its
    /// outcome is not known; the runtime looks it up by client id before
    /// it may place again.
    pub sending: bool,
    /// When this order was decided (timeouts run from here).
    pub created_at: i64,
    /// Not placed before this time (a refused or vanished exit).
    pub retry_at: Option<i64>,
    /// Executions across placements of this order.
    pub fills: FillTotals,
    /// Executions of the current placement (what the exchange's cumulative
    /// figures of `txid` are compared with).
    #[serde(default)]
    pub current: FillTotals,
}

impl ChurnOrder {
    /// Whether the runtime should place it now.
    #[must_use]
    pub fn wants_placement(&self, now: i64) -> bool {
        self.txid.is_none() && !self.sending && self.retry_at.is_none_or(|t| now >= t)
    }
}

/// The position a churner works for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentRef {
    /// Its ledger open key (credits are journaled on it).
    pub open_key: String,
    /// Its trade.
    pub trade: TradeId,
    /// Its cycle.
    pub cycle: u64,
}

/// A churner round trip as a ledger position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChurnPosition {
    /// `churn:<entry txid>`.
    pub open_key: String,
    /// The slot's churner cycle.
    pub cycle: u64,
    /// Direction (B buys then sells, A sells then buys).
    pub trade: TradeId,
    /// Volume-weighted entry price.
    pub entry_price: Decimal,
    /// Entry cost as reported.
    pub entry_cost: Decimal,
    /// Entry fee as reported.
    pub entry_fee: Decimal,
    /// Filled volume.
    pub volume: Decimal,
    /// When the entry filled.
    pub entry_time: i64,
    /// First exit price.
    pub exit_price: Decimal,
    /// Profit target, percent.
    pub target_profit_pct: Decimal,
    /// The ledger's id of the round trip once it acknowledged the open:
    /// what an operator names it by (cleanup queue, hold) once it is
    /// handed over to its slot.
    #[serde(default)]
    pub position_id: Option<String>,
}

/// Who pays for a churner entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Funding {
    /// The slot's idle capital.
    Idle,
    /// A loan of this many USD from the reserve.
    Reserve(Decimal),
}

/// Why an entry is being cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelWhy {
    /// Unfilled past `CHURNER_TIMEOUT_SEC`: re-entered at the current price.
    Timeout,
    /// A gate closed.
    Deactivated(PauseReason),
}

/// Why a slot's churner does not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseReason {
    /// `CHURNER_ENABLED=false`.
    Disabled,
    /// No open position in band aging or worse (or the parent's exit filled).
    NoStuckPosition,
    /// The regime is not ranging (or the detector is not ready).
    NotRanging,
    /// Open-order headroom below `CHURNER_MIN_HEADROOM`.
    NoHeadroom,
    /// Neither idle capital nor the reserve can fund a minimum order.
    NoCapital,
    /// The order size misses the pair minimum.
    BelowMinimum,
    /// The parent was fully repriced by subsidy.
    ParentRepriced,
    /// A handed-over round trip of this slot is still open.
    HandedOverOpen,
    /// Too many recent round trips were handed over: cooling off.
    LowHitRate,
    /// An operator killed it.
    Killed,
}

impl PauseReason {
    /// Snake-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::NoStuckPosition => "no_stuck_position",
            Self::NotRanging => "not_ranging",
            Self::NoHeadroom => "no_headroom",
            Self::NoCapital => "no_capital",
            Self::BelowMinimum => "below_minimum",
            Self::ParentRepriced => "parent_repriced",
            Self::HandedOverOpen => "handed_over_open",
            Self::LowHitRate => "low_hit_rate",
            Self::Killed => "killed",
        }
    }
}

/// The shared reserve's loans (SPEC §6 "Capital").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reserve {
    /// USD lent per slot (at most one base order size each).
    pub lent: BTreeMap<SlotId, Decimal>,
    /// Most ever lent at once.
    pub peak: Decimal,
}

impl Reserve {
    /// USD lent now.
    #[must_use]
    pub fn total(&self) -> Decimal {
        self.lent.values().copied().sum()
    }

    /// Whether `amount` more fits in a reserve of `limit`.
    #[must_use]
    pub fn can_lend(&self, limit: Decimal, amount: Decimal) -> bool {
        self.total() + amount <= limit
    }

    /// Records a loan (one per slot).
    pub fn lend(&mut self, slot: SlotId, amount: Decimal) {
        self.lent.insert(slot, amount);
        self.peak = self.peak.max(self.total());
    }
}

/// Lifetime counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChurnStats {
    /// Round trips completed.
    pub cycles: u64,
    /// Of those, with a negative net.
    pub losing_cycles: u64,
    /// Sum of their net, USD.
    pub net_usd: Decimal,
    /// Net credited to parents as `churner_profit`.
    pub credited_usd: Decimal,
    /// Round trips handed over to their slot.
    pub handed_over: u64,
    /// Entries cancelled unfilled on timeout.
    pub entry_timeouts: u64,
    /// UTC day (unix seconds / 86400) of the `*_today` counters.
    pub day: i64,
    /// Round trips completed that day.
    pub cycles_today: u64,
    /// Their net, USD.
    pub net_today_usd: Decimal,
    /// Round trips closed in the last [`ETA_WINDOW_SEC`] before the newest,
    /// oldest first: the rolling rate the subsidy ETA is taken from
    /// (SPEC §7). Bounded by the window, not by a count.
    pub last_window: VecDeque<ChurnerProfit>,
}

impl ChurnStats {
    /// Net of the round trips closed in the [`ETA_WINDOW_SEC`] up to `now`.
    #[must_use]
    pub fn net_in_window(&self, now: i64) -> Decimal {
        net_in_window(&self.last_window, now)
    }

    /// Time to earn `pending_need` at the churner's rate of the last
    /// [`ETA_WINDOW_SEC`] ([`eta_sec`]); `None` when that rate is not
    /// positive.
    #[must_use]
    pub fn eta_sec(&self, pending_need: Decimal, now: i64) -> Option<i64> {
        eta_sec(pending_need, &self.last_window, now)
    }

    /// Counts a completed round trip closed at `at`.
    pub fn count_cycle(&mut self, net: Decimal, at: i64) {
        let day = at.div_euclid(86_400);
        if day != self.day {
            self.day = day;
            self.cycles_today = 0;
            self.net_today_usd = Decimal::ZERO;
        }
        self.cycles += 1;
        self.cycles_today += 1;
        self.net_usd += net;
        self.net_today_usd += net;
        if net < Decimal::ZERO {
            self.losing_cycles += 1;
        }
        self.last_window.push_back(ChurnerProfit { at, net });
        let newest = self.last_window.iter().map(|c| c.at).max().unwrap_or(at);
        while self
            .last_window
            .front()
            .is_some_and(|c| newest - c.at >= ETA_WINDOW_SEC)
        {
            self.last_window.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    /// Proves: the ETA's rate is the net of the last 24 h only; older
    /// round trips leave the window (and the stored list), so the ETA turns
    /// unknown a day after the last profitable round trip.
    #[test]
    fn the_eta_rate_is_the_net_of_the_last_day() {
        let mut s = ChurnStats::default();
        s.count_cycle(dec!(0.02), 1_000);
        s.count_cycle(dec!(0.01), 50_000);
        assert_eq!(s.net_in_window(50_000), dec!(0.03));
        // 0.03 a day pays 0.06 in two days.
        assert_eq!(s.eta_sec(dec!(0.06), 50_000), Some(172_800));
        assert_eq!(s.eta_sec(Decimal::ZERO, 50_000), Some(0));
        // A day after the first: only the second counts.
        assert_eq!(s.net_in_window(87_400), dec!(0.01));
        s.count_cycle(dec!(-0.005), 87_400);
        assert_eq!(s.last_window.len(), 2, "the first left the window");
        assert_eq!(s.net_in_window(87_400), dec!(0.005));
        // A day after the last: nothing earned, the ETA is unknown.
        assert_eq!(s.net_in_window(87_400 + 86_400), Decimal::ZERO);
        assert_eq!(s.eta_sec(dec!(0.06), 87_400 + 86_400), None);
        assert_eq!((s.cycles, s.losing_cycles), (3, 1));
    }
}
