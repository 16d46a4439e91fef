//! Slot invariants, checked after every transition.
//!
//! The shape rules of SPEC §2 (one buy and one sell entry in S0, exit +
//! opposite entry in S1, two exits in S2) are mostly guaranteed by the types:
//! a trade holds exactly one of idle/entry/exit, so S2 can have no entries
//! and no trade can hold both. What remains to check are the numbers and
//! identities inside the orders. A trade with no order is legal only with an
//! [`IdleReason`](crate::engine::types::IdleReason) - the degraded shapes
//! (one-sided for lack of balance, waiting for minimum size, bootstrap,
//! cooldown) - and the type forces that reason to exist.
//!
//! The check does not allocate on the happy path: it is run on every price
//! tick of every slot.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::engine::config::EngineConfig;
use crate::engine::types::{OrderId, OrderRole, SlotState, TradeId, TradeState, TradeWork};

/// A real violation: the slot that shows it is halted.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum Violation {
    /// An order's id names another slot, trade, cycle or role than where it
    /// is held.
    #[error("order {id} is held by slot {slot} trade {trade:?} as {role:?} in cycle {cycle}")]
    MisfiledOrder {
        /// The order.
        id: OrderId,
        /// Holding slot.
        slot: u32,
        /// Holding trade.
        trade: TradeId,
        /// Role it is held as.
        role: OrderRole,
        /// The trade's cycle.
        cycle: u64,
    },
    /// An order id was issued twice (its seq is not below the slot's counter).
    #[error("order {id} has a sequence number not below the slot counter {next_seq}")]
    SeqNotMonotonic {
        /// The order.
        id: OrderId,
        /// The slot's counter.
        next_seq: u64,
    },
    /// A price is not positive or off the tick grid.
    #[error("order {id}: price {price} is not positive or off the tick grid")]
    BadPrice {
        /// The order.
        id: OrderId,
        /// Its price.
        price: Decimal,
    },
    /// A volume is not positive or off the lot grid.
    #[error("order {id}: volume {volume} is not positive or off the lot grid")]
    BadVolume {
        /// The order.
        id: OrderId,
        /// Its volume.
        volume: Decimal,
    },
    /// Executions exceed the order's volume (volume invented by the exchange
    /// or delivered twice).
    #[error("order {id}: filled {filled} exceeds volume {volume}")]
    Overfill {
        /// The order.
        id: OrderId,
        /// Filled so far (including the offending execution).
        filled: Decimal,
        /// Order volume.
        volume: Decimal,
    },
    /// A fully executed order is still held (it must have become an exit or
    /// been booked).
    #[error("order {id} is fully filled but still held")]
    FilledOrderLingering {
        /// The order.
        id: OrderId,
    },
    /// An exit's volume differs from its entry's filled volume, or its entry
    /// facts are not positive.
    #[error(
        "exit {id}: volume {volume} does not match entry volume {entry_volume} or entry facts invalid"
    )]
    ExitEntryMismatch {
        /// The exit.
        id: OrderId,
        /// Exit volume.
        volume: Decimal,
        /// Entry filled volume.
        entry_volume: Decimal,
    },
    /// An exit has a non-positive profit target.
    #[error("exit {id}: target profit {pct} is not positive")]
    BadTarget {
        /// The exit.
        id: OrderId,
        /// The target.
        pct: Decimal,
    },
}

/// Checks every invariant of a slot; the first violation found is returned.
pub fn check_slot(slot: &SlotState, cfg: &EngineConfig) -> Result<(), Violation> {
    for t in TradeId::ALL {
        check_trade(slot, slot.trade(t), cfg)?;
    }
    Ok(())
}

fn check_trade(slot: &SlotState, t: &TradeState, cfg: &EngineConfig) -> Result<(), Violation> {
    let (id, role, price, volume, filled) = match &t.work {
        TradeWork::Idle(_) => return Ok(()),
        TradeWork::Entry(e) => (e.id, OrderRole::Entry, e.price, e.volume, e.fills.volume),
        TradeWork::Exit(x) => {
            let ok_entry = x.entry.volume == x.volume && x.entry.price > Decimal::ZERO;
            if !ok_entry {
                return Err(Violation::ExitEntryMismatch {
                    id: x.id,
                    volume: x.volume,
                    entry_volume: x.entry.volume,
                });
            }
            if x.target_profit_pct <= Decimal::ZERO {
                return Err(Violation::BadTarget {
                    id: x.id,
                    pct: x.target_profit_pct,
                });
            }
            (x.id, OrderRole::Exit, x.price, x.volume, x.fills.volume)
        }
    };
    if id.slot != slot.slot_id || id.trade != t.trade || id.role != role || id.cycle != t.cycle {
        return Err(Violation::MisfiledOrder {
            id,
            slot: slot.slot_id,
            trade: t.trade,
            role,
            cycle: t.cycle,
        });
    }
    if id.seq >= slot.next_seq {
        return Err(Violation::SeqNotMonotonic {
            id,
            next_seq: slot.next_seq,
        });
    }
    if price <= Decimal::ZERO || price.round_dp(cfg.pair.price_decimals) != price {
        return Err(Violation::BadPrice { id, price });
    }
    if volume <= Decimal::ZERO || volume.round_dp(cfg.pair.lot_decimals) != volume {
        return Err(Violation::BadVolume { id, volume });
    }
    if filled > volume {
        return Err(Violation::Overfill { id, filled, volume });
    }
    if filled == volume {
        return Err(Violation::FilledOrderLingering { id });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_support::cfg;
    use crate::engine::types::{EntryOrder, FillTotals, IdleReason};
    use rust_decimal_macros::dec;

    fn slot_with_entry(price: Decimal, volume: Decimal) -> SlotState {
        let mut s = SlotState::new(0);
        let id = s.issue_id(TradeId::B, OrderRole::Entry);
        s.trade_b.work = TradeWork::Entry(EntryOrder {
            id,
            price,
            volume,
            txid: None,
            placed_at: 0,
            fills: FillTotals::default(),
            cancel_requested: false,
        });
        s
    }

    #[test]
    fn degraded_idle_shapes_are_legal() {
        let c = cfg();
        let mut s = SlotState::new(0);
        assert_eq!(check_slot(&s, &c), Ok(()));
        s.trade_a.work = TradeWork::Idle(IdleReason::BelowMinimum);
        s.trade_b.work = TradeWork::Idle(IdleReason::Cooldown { until: 9 });
        assert_eq!(check_slot(&s, &c), Ok(()));
    }

    #[test]
    fn off_grid_and_non_positive_numbers_are_violations() {
        let c = cfg();
        assert_eq!(
            check_slot(&slot_with_entry(dec!(0.1), dec!(100)), &c),
            Ok(())
        );
        assert!(matches!(
            check_slot(&slot_with_entry(dec!(0.12345678), dec!(100)), &c),
            Err(Violation::BadPrice { .. })
        ));
        assert!(matches!(
            check_slot(&slot_with_entry(dec!(0.1), dec!(0.000000001)), &c),
            Err(Violation::BadVolume { .. })
        ));
        assert!(matches!(
            check_slot(&slot_with_entry(dec!(0), dec!(100)), &c),
            Err(Violation::BadPrice { .. })
        ));
    }

    #[test]
    fn misfiled_and_reused_ids_are_violations() {
        let c = cfg();
        let mut s = slot_with_entry(dec!(0.1), dec!(100));
        s.next_seq = 1;
        assert!(matches!(
            check_slot(&s, &c),
            Err(Violation::SeqNotMonotonic { .. })
        ));
        let mut s = slot_with_entry(dec!(0.1), dec!(100));
        s.trade_b.cycle = 2;
        assert!(matches!(
            check_slot(&s, &c),
            Err(Violation::MisfiledOrder { .. })
        ));
    }

    #[test]
    fn a_fully_filled_entry_must_not_linger() {
        let c = cfg();
        let mut s = slot_with_entry(dec!(0.1), dec!(100));
        if let TradeWork::Entry(e) = &mut s.trade_b.work {
            e.fills.add(dec!(0.1), dec!(100), dec!(10), dec!(0), 1);
        }
        assert!(matches!(
            check_slot(&s, &c),
            Err(Violation::FilledOrderLingering { .. })
        ));
    }
}
